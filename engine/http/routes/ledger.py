"""The ledger over HTTP: stored invoices (read) and the changes a console makes (write scope).

A stored invoice is given as it was recorded: ``text`` is the recorded document itself, ``json`` the
recorded bill; ``markdown`` and ``html`` are rendered again from the recorded bill with the served
rule set's versions that priced it, and refused (409) when the served rules no longer have them.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...errors import RatecardError
from ..common import READ, WRITE, Endpoint, Server, choice, field, json_body, only_members, rules_now, text_body
from ..problems import HttpProblem, bad_request, not_found, read_json

INVOICE_FORMATS = ("text", "markdown", "html", "json")


def _invoice(server: Server, snapshot, account: str, service: str, period: str, fmt: str):
    from ...bill import Bill
    from ...periods import parse_period
    from ...render import render_invoice
    from ...versions import versions_of

    parse_period(period)
    found = server.ledger.read(lambda ledger: ledger.invoice(account, service, period))
    if found is None:
        raise not_found(f"no invoice of {account} for {service} in {period} is recorded in the ledger", "no-invoice")
    text, bill_json = found
    fingerprint = bill_json.get("rules_fingerprint")
    if fmt == "text":
        return text, "text/plain", fingerprint
    if fmt == "json":
        return json.dumps(bill_json, indent=2, ensure_ascii=False) + "\n", "application/json", fingerprint
    bill = Bill.from_dict(bill_json)
    loaded = snapshot.sets.get(service)
    if loaded is None:
        raise HttpProblem(409, "rules-not-served", "The rules of this invoice are not served",
                          f"the invoice was priced by rule set {service!r}, which this server does not serve; "
                          "its text and json formats are available")
    try:
        _, _, policy = versions_of(loaded.rules, bill)
    except RatecardError as exc:
        raise HttpProblem(409, "rules-changed", "The served rules no longer price this invoice", str(exc)) from None
    media = "text/html" if fmt == "html" else "text/markdown"
    return render_invoice(bill, policy, fmt), media, fingerprint


async def invoice(request: Request, server: Server) -> Response:
    p, q = request.path_params, request.query_params
    fmt = choice(q.get("format"), "format", INVOICE_FORMATS, "text")
    service = q.get("service") or server.default_service
    snapshot = await rules_now(server)
    text, media, fingerprint = await run_in_threadpool(_invoice, server, snapshot, p["account"],
                                                       service, p["period"], fmt)
    if media == "application/json":
        return json_body(text, fingerprint=fingerprint)
    return text_body(text, media, fingerprint=fingerprint)


def _at(body) -> datetime:
    text = field(body, "at", str)
    if text is None:
        return datetime.now(timezone.utc)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.utcoffset() is None or not 1970 <= moment.year <= 9998:
        raise bad_request(f"at {text!r}: expected an ISO 8601 date and time with a UTC offset, e.g. "
                          "2024-04-05T09:00:00+02:00", "bad-body", "Bad request body")
    return moment


def _applied(applied) -> dict:
    return {"account": applied.account, "changed": applied.changed, "note": applied.note or None,
            "balance": format(applied.balance, "f"), "frozen": format(applied.frozen, "f"),
            "suspended": list(applied.suspended), "entries": [e.to_dict() for e in applied.entries]}


def _answer(document: dict, status: int = 200) -> Response:
    return json_body(json.dumps(document, indent=2, ensure_ascii=False) + "\n", status=status)


async def create_account(request: Request, server: Server) -> Response:
    body = await read_json(request, server.max_body, server.max_depth)
    only_members(body, ("account", "name", "currency", "at"))
    account = field(body, "account", str, required=True)
    name = field(body, "name", str) or account
    currency = field(body, "currency", str, required=True)
    at = _at(body)

    def create(ledger):
        applied = ledger.create_account(account, name, currency, at)
        return applied, ledger.account(account)

    applied, record = await run_in_threadpool(server.ledger.write, create)
    return _answer({"account": record.to_dict(), "changed": applied.changed}, 201 if applied.changed else 200)


async def activate(request: Request, server: Server) -> Response:
    body = await read_json(request, server.max_body, server.max_depth)
    only_members(body, ("service", "terms", "at"))
    account = request.path_params["account"]
    service = field(body, "service", str) or server.default_service
    terms = field(body, "terms", str, required=True)
    at = _at(body)
    applied = await run_in_threadpool(server.ledger.write, lambda ledger: ledger.activate(account, service, terms, at))
    return _answer(_applied(applied))


async def top_up(request: Request, server: Server) -> Response:
    from decimal import Decimal

    body = await read_json(request, server.max_body, server.max_depth)
    only_members(body, ("amount", "reference", "at"))
    account = request.path_params["account"]
    amount = field(body, "amount", (str, int, Decimal), required=True)
    reference = field(body, "reference", str)
    at = _at(body)
    applied = await run_in_threadpool(server.ledger.write,
                                      lambda ledger: ledger.top_up(account, str(amount), at, reference=reference))
    return _answer(_applied(applied))


_ACCOUNT = {"name": "account", "in": "path", "required": True, "schema": {"type": "string"}}
_AT = {"type": "string", "format": "date-time", "description": "when it happens (default: now)"}
_APPLIED = {"200": {"description": "what the write did (changed: false when it was done before)",
                    "content": {"application/json": {}}}}

ENDPOINTS = [
    Endpoint("/v1/accounts/{account}/invoices/{period}", "GET", READ, invoice, "A stored invoice, in any format", {
        "parameters": [_ACCOUNT, {"name": "period", "in": "path", "required": True, "schema": {"type": "string"}},
                       {"name": "service", "in": "query", "schema": {"type": "string"}},
                       {"name": "format", "in": "query", "schema": {"enum": list(INVOICE_FORMATS)}}],
        "responses": {"200": {"description": "the invoice", "content": {
            "text/plain": {"schema": {"type": "string"}}, "text/markdown": {"schema": {"type": "string"}},
            "text/html": {"schema": {"type": "string"}},
            "application/json": {"schema": {"$ref": "#/components/schemas/Bill"}}}},
            "404": {"$ref": "#/components/responses/Problem"},
            "409": {"$ref": "#/components/responses/Problem"}}}, page=True),
    Endpoint("/v1/accounts", "POST", WRITE, create_account, "Create an account (and the ledger, if new)", {
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["account", "currency"], "additionalProperties": False,
            "properties": {"account": {"type": "string"}, "name": {"type": "string"}, "currency": {"type": "string"},
                           "at": _AT}}}}},
        "responses": {"201": {"description": "created", "content": {"application/json": {}}}, **_APPLIED}}),
    Endpoint("/v1/accounts/{account}/activation", "POST", WRITE, activate, "Activate a service: accept its terms", {
        "parameters": [_ACCOUNT],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["terms"], "additionalProperties": False,
            "properties": {"service": {"type": "string"}, "terms": {"type": "string"}, "at": _AT}}}}},
        "responses": _APPLIED}),
    Endpoint("/v1/accounts/{account}/topups", "POST", WRITE, top_up, "Credit an account; resumes its service when "
             "the policy allows", {
                 "parameters": [_ACCOUNT],
                 "requestBody": {"required": True, "content": {"application/json": {"schema": {
                     "type": "object", "required": ["amount"], "additionalProperties": False,
                     "properties": {"amount": {"$ref": "#/components/schemas/Decimal"},
                                    "reference": {"type": "string", "description": "the payment's id: "
                                                  "recorded twice, credited once"}, "at": _AT}}}}},
                 "responses": _APPLIED}),
]
