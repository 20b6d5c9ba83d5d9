"""Health and the gateway's question: may this account call the service now?"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response

from ... import __version__
from ..common import READ, Endpoint, Server, json_body
from ..problems import MEDIA_TYPE


async def health(request: Request, server: Server) -> Response:
    """No token, no detail: that the process answers, and its version."""
    return json_body(json.dumps({"status": "ok", "version": __version__}) + "\n")


async def account_status(request: Request, server: Server) -> Response:
    """From the ledger (one indexed query, or the status cache), never by rating: see `state.LedgerAccess`."""
    account = request.path_params["account"]
    service = request.query_params.get("service") or server.default_service
    answer = server.ledger.status(account, service)
    media = "application/json" if answer.status == 200 else MEDIA_TYPE
    return Response(answer.body, status_code=answer.status, media_type=media)


ENDPOINTS = [
    Endpoint("/health", "GET", None, health, "Liveness: the server answers (no token needed)", {
        "responses": {"200": {"description": "the server is up", "content": {"application/json": {"schema": {
            "type": "object", "properties": {"status": {"const": "ok"}, "version": {"type": "string"}}}}}}}}),
    Endpoint("/v1/accounts/{account}/status", "GET", READ, account_status,
             "May this account use the service now? (the gateway's question)", {
                 "description": "Answered from the ledger without rating, through a bounded cache emptied when "
                                "the ledger file changes; a cached answer is never older than the server's "
                                "--status-ttl (default 1 s). Same document as `ratecard status --format json`.",
                 "parameters": [{"name": "account", "in": "path", "required": True, "schema": {"type": "string"}},
                                {"name": "service", "in": "query", "schema": {"type": "string"},
                                 "description": "a served rule set's name (default: the first served)"}],
                 "responses": {"200": {"description": "the account's standing", "content": {
                     "application/json": {"schema": {"$ref": "#/components/schemas/Status"}}}},
                     "404": {"$ref": "#/components/responses/Problem"}}}),
]
