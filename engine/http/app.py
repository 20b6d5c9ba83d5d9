"""The ASGI application of `ratecard serve` (Starlette): routes, refusals, headers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ..errors import RatecardError
from .auth import ENV, READ, Tokens
from .common import Endpoint, Server, internal_error, json_body
from .problems import HttpProblem, problem_response
from .routes import ledger, rating, rules, status
from .state import LedgerAccess, RulesStore


@dataclass(frozen=True)
class ServeOptions:
    rules: tuple  # rule set folders; the first is the default
    db: Path | None = None
    tokens: Tokens | None = None
    usage: tuple = ()
    max_body: int = 1 << 20
    max_depth: int = 32
    reload_interval: float = 1.0
    status_ttl: float = 1.0
    status_cache: int = 10_000


def build_server(options: ServeOptions) -> Server:
    if options.tokens is None:
        raise RatecardError(f"ratecard serve needs at least one bearer token: pass --tokens FILE or set {ENV}")
    store = RulesStore(options.rules, reload_interval=options.reload_interval)
    access = LedgerAccess(Path(options.db) if options.db else None, status_ttl=options.status_ttl,
                          status_cache=options.status_cache)
    return Server(rules=store, ledger=access, tokens=options.tokens, max_body=options.max_body,
                  max_depth=options.max_depth, usage=tuple(options.usage),
                  default_service=store.current().default)


_SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store"),
                     (b"referrer-policy", b"no-referrer")]


class _Headers:
    """Pure ASGI (no per-request task): every response says nosniff and no-store."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def sending(message):
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + _SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, sending)


def create_app(server: Server):
    """The ASGI application: the status fast path in front of the Starlette application."""
    endpoints: list[Endpoint] = status.ENDPOINTS + rating.ENDPOINTS + rules.ENDPOINTS + ledger.ENDPOINTS

    async def openapi(request: Request, srv: Server) -> Response:
        from .openapi import document

        return json_body(json.dumps(document(endpoints), indent=2, ensure_ascii=False) + "\n")

    endpoints = endpoints + [Endpoint("/openapi.json", "GET", READ, openapi, "This document", {
        "responses": {"200": {"description": "the OpenAPI 3.1 document", "content": {"application/json": {}}}}})]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)  # registered for HTTPException only
        titles = {404: "Not found", 405: "Method not allowed"}
        detail = {404: f"no endpoint {request.url.path}; see /openapi.json",
                  405: f"{request.method} is not allowed on {request.url.path}"}.get(exc.status_code, str(exc.detail))
        return problem_response(HttpProblem(exc.status_code, "", titles.get(exc.status_code, "Error"), detail,
                                            headers=exc.headers), request.url.path)

    async def crash(request: Request, exc: Exception) -> Response:
        return internal_error(request)

    app = Starlette(routes=[e.route() for e in endpoints],
                    exception_handlers={HTTPException: http_error, Exception: crash})
    app.state.ratecard = server
    app.add_middleware(_Headers)
    from .fastpath import StatusFastPath

    # The gateway's request skips the framework (same checks, same answers); Starlette has the rest.
    return StatusFastPath(app, server)
