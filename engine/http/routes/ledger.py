"""The ledger over HTTP: stored invoices and credit notes (read) and the changes a console makes (write scope).

A stored document is given as `ratecard invoice show` gives it (`ratecard.reprint`): ``text`` is the
recorded document itself; the other formats are rendered from what the ledger recorded with it, so
they do not depend on the rules served today.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ...errors import RatecardError
from ..common import READ, WRITE, Endpoint, Server, choice, field, json_body, only_members, text_body
from ..problems import bad_request, not_found, read_json

INVOICE_FORMATS = ("text", "markdown", "html", "json", "pdf")
_MEDIA = {"text": "text/plain", "markdown": "text/markdown", "html": "text/html", "json": "application/json",
          "pdf": "application/pdf"}


def _invoice(server: Server, account: str, ref: str, fmt: str):
    from ...reprint import rendered

    try:
        number, document, data, text = server.ledger.read(lambda ledger: ledger.document(account, ref))
    except RatecardError as exc:
        if type(exc).__name__ == "UnknownAccount" or "has no invoice or credit note" in str(exc):
            raise not_found(str(exc), "no-invoice") from None
        raise
    bill = data.get("bill") or {}
    fingerprint = bill.get("rules_fingerprint") if isinstance(bill, dict) else None
    out = text if fmt == "text" else rendered(number, document, data, fmt)
    return out, fingerprint


async def invoice(request: Request, server: Server) -> Response:
    p, q = request.path_params, request.query_params
    fmt = choice(q.get("format"), "format", INVOICE_FORMATS, "text")
    out, fingerprint = await run_in_threadpool(_invoice, server, p["account"], p["ref"], fmt)
    if fmt == "json":
        return json_body(out, fingerprint=fingerprint)
    if fmt == "pdf":
        headers = {"Content-Disposition": f'inline; filename="{p["ref"]}.pdf"'}
        if fingerprint:
            headers["Ratecard-Rules-Fingerprint"] = fingerprint
        return Response(out, media_type="application/pdf", headers=headers)
    return text_body(out, _MEDIA[fmt], fingerprint=fingerprint)


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


def _applied(written) -> dict:
    """A write's result as JSON; `written` is (Applied, the account's currency)."""
    from ...formatting import money_text

    applied, currency = written
    return {"account": applied.account, "changed": applied.changed, "note": applied.note or None,
            "balance": money_text(applied.balance, currency), "frozen": money_text(applied.frozen, currency),
            "suspended": list(applied.suspended), "entries": [e.to_dict(currency) for e in applied.entries]}


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
    written = await run_in_threadpool(server.ledger.write, lambda ledger: (
        ledger.activate(account, service, terms, at), ledger.account(account).currency))
    return _answer(_applied(written))


async def top_up(request: Request, server: Server) -> Response:
    from decimal import Decimal

    body = await read_json(request, server.max_body, server.max_depth)
    only_members(body, ("amount", "reference", "at"))
    account = request.path_params["account"]
    amount = field(body, "amount", (str, int, Decimal), required=True)
    reference = field(body, "reference", str)
    at = _at(body)
    written = await run_in_threadpool(server.ledger.write, lambda ledger: (
        ledger.top_up(account, str(amount), at, reference=reference), ledger.account(account).currency))
    return _answer(_applied(written))


_ACCOUNT = {"name": "account", "in": "path", "required": True, "schema": {"type": "string"}}
_AT = {"type": "string", "format": "date-time", "description": "when it happens (default: now)"}
_APPLIED = {"200": {"description": "what the write did (changed: false when it was done before)",
                    "content": {"application/json": {}}}}

ENDPOINTS = [
    Endpoint("/v1/accounts/{account}/invoices/{ref}", "GET", READ, invoice,
             "A stored invoice or credit note, in any format (as `ratecard invoice show`)", {
                 "parameters": [_ACCOUNT, {"name": "ref", "in": "path", "required": True, "schema": {"type": "string"},
                                           "description": "a document number, or a period (YYYY-MM) for its invoice"},
                                {"name": "format", "in": "query", "schema": {"enum": list(INVOICE_FORMATS)}}],
                 "responses": {"200": {"description": "the document", "content": {
                     "text/plain": {"schema": {"type": "string"}}, "text/markdown": {"schema": {"type": "string"}},
                     "text/html": {"schema": {"type": "string"}},
                     "application/json": {"schema": {"$ref": "#/components/schemas/Document"}},
                     "application/pdf": {"schema": {"type": "string", "format": "binary"}}}},
                     "404": {"$ref": "#/components/responses/Problem"}}}, page=True),
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
