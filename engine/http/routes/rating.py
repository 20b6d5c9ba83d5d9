"""Rating over HTTP: a quote (one account-month) and a bill preview (a posted usage file)."""

from __future__ import annotations

import io
import json
import re
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..common import READ, Endpoint, Server, field, json_body, only_members, rules_now
from ..problems import BODY_NAME, bad_request, read_body, read_json

if TYPE_CHECKING:
    from ...usage.records import Rejected

_COUNT_MAX = 10 ** 18 - 1
_OUTCOME = re.compile(r"[^\x00-\x1f\x7f]{1,200}")


def _calls(value, where: str) -> int:
    if type(value) is not int or not 0 <= value <= _COUNT_MAX:
        raise bad_request(f"request body: {where} must be a whole number of calls from 0 to {_COUNT_MAX:,}",
                          "bad-body", "Bad request body")
    return value


def _amount(value, where: str):
    """A usage item's transaction amount (percentage-priced categories): exact decimal text, or absent."""
    from ...usage_values import amount

    if value is None:
        return None
    return amount({"amount": value}, lambda code, reason: bad_request(f"request body: {where}: {reason}", "bad-body",
                                                                      "Bad request body"))


def usage_items(usage) -> list:
    """`{"API": calls, "API:OUTCOME": calls}` (the words of `ratecard quote`) or a list of
    `{"api", "calls", "outcome"}` objects → usage items, in the order given."""
    from ...rating import UsageItem

    items = []
    if isinstance(usage, dict):
        for key, calls in usage.items():
            api, _, outcome = key.partition(":")
            if not api or not _OUTCOME.fullmatch(key):
                raise bad_request(f"request body: usage key {key!r}: expected API or API:OUTCOME", "bad-body",
                                  "Bad request body")
            items.append(UsageItem(api, _calls(calls, f"usage[{key!r}]"), outcome or None))
    elif isinstance(usage, list):
        for i, item in enumerate(usage):
            where = f"usage[{i}]"
            if not isinstance(item, dict) or not isinstance(item.get("api"), str) or not item["api"] \
                    or set(item) - {"api", "calls", "outcome", "amount"}:
                raise bad_request(f"request body: {where} must be an object with api, calls and optionally outcome "
                                  "and amount", "bad-body", "Bad request body")
            outcome = item.get("outcome")
            if outcome is not None and not (isinstance(outcome, str) and _OUTCOME.fullmatch(outcome)):
                raise bad_request(f"request body: {where}.outcome must be a string", "bad-body", "Bad request body")
            items.append(UsageItem(item["api"], _calls(item.get("calls"), f"{where}.calls"), outcome,
                                   _amount(item.get("amount"), f"{where}.amount")))
    else:
        raise bad_request("request body: usage must be an object of API → calls or an array of {api, calls, outcome}",
                          "bad-body", "Bad request body")
    return items


def pack_balances(packs) -> list:
    from ...rating import PackBalance

    if not isinstance(packs, dict):
        raise bad_request("request body: packs must be an object of category → units", "bad-body", "Bad request body")
    return [PackBalance(f"what-if-{i}", category, _calls(units, f"packs[{category!r}]"))
            for i, (category, units) in enumerate(packs.items(), 1)]


async def quote(request: Request, server: Server) -> Response:
    """The same document, byte for byte, as `ratecard quote --format json` for the same question."""
    from ...quote import dumps, quote_document

    body = await read_json(request, server.max_body, server.max_depth)
    only_members(body, ("rules", "period", "usage", "packs", "suspended", "explain"))
    loaded = (await rules_now(server)).get(field(body, "rules", str))
    rules = loaded.rules
    period = field(body, "period", str) or _default_period(rules)
    items = usage_items(field(body, "usage", (dict, list), required=True))
    packs = pack_balances(field(body, "packs", dict, default={}))
    document = quote_document(rules, items, period, packs=packs, suspended=field(body, "suspended", bool, default=False),
                              explain=field(body, "explain", bool, default=False))
    return json_body(dumps(document), fingerprint=document["rules_fingerprint"])


def _default_period(rules) -> str:
    from datetime import datetime, timezone

    from ...periods import period_of

    return period_of(datetime.now(timezone.utc), rules.latest[2].time_zone)


def _preview(rules, raw: bytes, period, fmt, kind, keep_going: bool) -> dict:
    from ...usage import UsageReader
    from ...rating import rate

    rejected: list[Rejected] = []
    reader = UsageReader(rules, period=period, on_reject=rejected.append if keep_going else None)
    reader.read("-", stdin=io.BytesIO(raw), format=fmt, kind=kind, name=BODY_NAME)
    reconciliation = reader.reconciliation.check()
    if not keep_going:
        reader.raise_for_rejects()
    bills = [rate(rules, use.items, use.period, account=use.account).to_dict() for use in reader.accounts()]
    return {"rules": {"name": rules.name, "fingerprint": rules.fingerprint}, "bills": bills,
            "reconciliation": reconciliation.to_dict(),
            "rejected": [{"file": r.file, "row": r.line, "reason": r.reason, "code": r.code} for r in rejected]}


async def bill_preview(request: Request, server: Server) -> Response:
    """A usage file (as `ratecard bill --usage` reads it) posted as the body; every bill as JSON."""
    from ...periods import parse_period

    q = request.query_params
    loaded = (await rules_now(server)).get(q.get("rules"))
    period = q.get("period")
    if period is not None:
        parse_period(period)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fmt = {"text/csv": "csv", "application/x-ndjson": "jsonl", "application/jsonl": "jsonl"}.get(media)
    if media and fmt is None and media != "text/plain":
        raise bad_request(f"send the usage file as text/csv or application/x-ndjson, not {media}",
                          "unsupported-media-type", "Unsupported media type")
    kind = q.get("kind")
    rejects = q.get("rejects", "refuse")
    if rejects not in ("refuse", "report"):
        raise bad_request("rejects must be refuse (bad rows bill nothing) or report (list them, bill the rest)")
    raw = await read_body(request, server.max_body)
    result = await run_in_threadpool(_preview, loaded.rules, raw, period, fmt, kind, rejects == "report")
    return json_body(json.dumps(result, indent=2, ensure_ascii=False) + "\n", fingerprint=loaded.rules.fingerprint)


_RULES_PARAM = {"name": "rules", "in": "query", "schema": {"type": "string"},
                "description": "a served rule set's name (default: the first served)"}

QUOTE_REQUEST = {
    "type": "object", "required": ["usage"], "additionalProperties": False,
    "properties": {
        "rules": {"type": "string", "description": "a served rule set's name (default: the first served)"},
        "period": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$",
                   "description": "YYYY-MM (default: the current month in the policy's time zone)"},
        "usage": {"oneOf": [
            {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0},
             "description": "API (or API:OUTCOME) → calls, as the words of `ratecard quote`"},
            {"type": "array", "items": {"type": "object", "required": ["api", "calls"], "additionalProperties": False,
                                        "properties": {"api": {"type": "string"}, "calls": {"type": "integer", "minimum": 0},
                                                       "outcome": {"type": ["string", "null"]}}}}]},
        "packs": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0},
                  "description": "what-if resource pack units per category (as --pack)"},
        "suspended": {"type": "boolean"}, "explain": {"type": "boolean"},
    },
}

ENDPOINTS = [
    Endpoint("/v1/quote", "POST", READ, quote, "Price one month of usage for one account", {
        "description": "The response is byte for byte what `ratecard quote --format json` prints.",
        "requestBody": {"required": True, "content": {"application/json": {"schema": QUOTE_REQUEST}}},
        "responses": {"200": {"description": "the bill", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Bill"}}}}}}),
    Endpoint("/v1/bills/preview", "POST", READ, bill_preview, "Bill a posted usage file (nothing is recorded)", {
        "parameters": [_RULES_PARAM,
                       {"name": "period", "in": "query", "schema": {"type": "string"}},
                       {"name": "kind", "in": "query", "schema": {"enum": ["aggregated", "calls"]}},
                       {"name": "rejects", "in": "query", "schema": {"enum": ["refuse", "report"]},
                        "description": "refuse (default): any bad row bills nothing; report: list them, bill the rest"}],
        "requestBody": {"required": True, "content": {
            "text/csv": {"schema": {"type": "string"}}, "application/x-ndjson": {"schema": {"type": "string"}}}},
        "responses": {"200": {"description": "one bill per account and period, and the reconciliation", "content": {
            "application/json": {"schema": {"type": "object", "properties": {
                "bills": {"type": "array", "items": {"$ref": "#/components/schemas/Bill"}}}}}}}}}),
]
