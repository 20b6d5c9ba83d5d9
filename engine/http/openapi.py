"""The OpenAPI 3.1 document of `ratecard serve`, generated from the routes and from the same JSON
Schemas (schemas/*.json) the CLI validates rule files with and describes bills by."""

from __future__ import annotations

from .. import __version__
from .common import Endpoint
from .problems import MEDIA_TYPE

_PROBLEM = {
    "type": "object", "description": "RFC 9457 problem details, with the CLI's lines for the same error",
    "required": ["type", "title", "status", "detail", "messages"],
    "properties": {
        "type": {"type": "string", "format": "uri-reference"}, "title": {"type": "string"},
        "status": {"type": "integer"}, "detail": {"type": "string"}, "instance": {"type": "string"},
        "messages": {"type": "array", "items": {"type": "string"},
                     "description": "what `ratecard` prints for this error, e.g. FILE:LINE:COL: message"},
        "problems": {"type": "array", "items": {"type": "object", "properties": {
            "file": {"type": "string"}, "line": {"type": "integer"}, "column": {"type": "integer"},
            "path": {"type": "string"}, "message": {"type": "string"}, "severity": {"enum": ["error", "warning"]},
            "code": {"type": "string"}}}},
    },
}
_REFUSALS = {
    "400": "malformed request (bad JSON, a member of the wrong type, JSON nested too deeply)",
    "401": "no bearer token, or not a valid one",
    "403": "the token's scope does not allow this endpoint",
    "413": "request body larger than the server's limit",
    "415": "unsupported content type",
    "422": "the input cannot be used (invalid rules, bad usage rows, unknown API, bad period): every problem, located",
    "500": "the server failed; its log has the details under the reference given",
}


# The documents the CLI prints and the endpoints answer, described once (schemas/*.json).
OUTPUT_SCHEMAS = {"Bill": "bill.schema.json", "Status": "status.schema.json", "Validation": "validation.schema.json",
                  "Diff": "diff.schema.json", "Document": "document.schema.json",
                  "Reconciliation": "reconciliation.schema.json"}


def document(endpoints: list[Endpoint]) -> dict:
    import json

    from .. import resources
    from ..schemas import KINDS

    def load_schema(filename: str) -> dict:
        # The files themselves, as JSON (the validator's copy holds Decimals, for exact enums).
        return json.loads((resources.schemas_dir() / filename).read_text(encoding="utf-8"))

    schemas = {name: load_schema(filename) for name, filename in OUTPUT_SCHEMAS.items()}
    schemas |= {"Problem": _PROBLEM,
                "Decimal": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$",
                            "description": "an exact decimal written as text, never a binary float (docs/json.md)"}}
    for kind, filename in KINDS.items():
        schemas["".join(part.capitalize() if part != "api" else "Api" for part in kind.split("-"))] = load_schema(filename)
    paths: dict = {}
    for e in endpoints:
        op = {"summary": e.summary, "operationId": e.handler.__name__ + ("" if e.method == "GET" else "_" + e.method.lower()),
              **e.operation}
        responses = dict(op.get("responses", {}))
        codes: tuple[str, ...] = ("400", "413", "415", "422", "500") if e.method == "POST" else ("400", "422", "500")
        if e.scope is not None:
            op["security"] = [{"bearer": [e.scope]}] + ([{"browser": []}] if e.page else [])
            op["x-ratecard-scope"] = e.scope
            codes = ("401", "403") + codes
        else:
            op["security"] = []
        for code in codes:
            responses.setdefault(code, {"description": _REFUSALS[code],
                                        "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}})
        op["responses"] = responses
        paths.setdefault(e.path, {})[e.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "ratecard", "version": __version__,
                 "description": "The billing engine over HTTP: status for gateways, quotes, bill previews, rate "
                                "cards, validate and diff of rule sets, stored invoices. Money is exact decimal "
                                "text. Every endpoint but /health needs a bearer token (scope read, or write for "
                                "ledger changes)."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": {"Problem": {"description": "a problem document (RFC 9457)",
                                      "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "tokens from --tokens FILE or $RATECARD_TOKENS"},
                                "browser": {"type": "http", "scheme": "basic",
                                            "description": "pages only (GET): any user name, a token as the "
                                                           "password, as a browser sends it when prompted"}},
        },
    }
