"""What every route shares: the server's state, the guarded endpoint, JSON responses, argument checks."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import RatecardError
from .auth import READ, WRITE, Tokens, allows, basic_password, bearer
from .problems import HttpProblem, bad_request, from_error, problem_response
from .state import LedgerAccess, RulesStore

log = logging.getLogger("ratecard.serve")
FINGERPRINT_HEADER = "Ratecard-Rules-Fingerprint"


@dataclass
class Server:
    rules: RulesStore
    ledger: LedgerAccess
    tokens: Tokens
    max_body: int = 1 << 20
    max_depth: int = 32
    usage: tuple = ()  # usage files the analyst page compares on when a request posts none
    default_service: str = ""  # the first served rule set's name: what status asks about by default


@dataclass(frozen=True)
class Endpoint:
    """A route with what the OpenAPI document says of it."""

    path: str
    method: str
    scope: str | None  # None: no token needed (health)
    handler: Callable[[Request, Server], Awaitable[Response]]
    summary: str
    operation: dict  # the OpenAPI operation object, less what is derived (security, problem responses)
    page: bool = False  # a page for a browser: the token may also come as a Basic password (see auth)

    def route(self) -> Route:
        return Route(self.path, guarded(self.handler, self.scope, self.page), methods=[self.method],
                     name=self.handler.__name__)


def guarded(handler, scope: str | None, page: bool = False):
    """The endpoint as Starlette calls it: the token checked first, every refusal a problem document,
    and nothing unexpected leaving the server but a 500 with a reference to the log."""

    async def endpoint(request: Request) -> Response:
        server: Server = request.app.state.ratecard
        try:
            if scope is not None:
                authorize(request, server.tokens, scope, page=page)
            return await handler(request, server)
        except HttpProblem as problem:
            return problem_response(problem, request.url.path)
        except RatecardError as exc:
            return problem_response(from_error(exc), request.url.path)
        except Exception:  # noqa: BLE001 - the last line of defence: no traceback leaves the server
            return internal_error(request)

    endpoint.__name__ = handler.__name__
    return endpoint


def _internal_problem(method: str, path: str) -> HttpProblem:
    """Logs the exception being handled (traceback included) under a fresh reference; the problem
    document the client gets names only that reference."""
    reference = uuid.uuid4().hex[:12]
    log.exception("internal error %s on %s %s", reference, method, path)
    return HttpProblem(500, "internal-error", "Internal server error",
                       f"the server failed to answer; its log has the details under reference {reference}")


def internal_error(request: Request) -> Response:
    return problem_response(_internal_problem(request.method, request.url.path), request.url.path)


def internal_error_document(method: str, path: str) -> bytes:
    return _internal_problem(method, path).body(path)


def unauthorized(had_token: bool, browser: bool = False) -> HttpProblem:
    bearer = 'Bearer realm="ratecard"' + (', error="invalid_token"' if had_token else "")
    challenge: str | list[str] = bearer
    if browser:  # a browser asks its user for the token (as the password) and sends it as Basic
        challenge = [bearer, 'Basic realm="ratecard", charset="UTF-8"']
    if not had_token:
        return HttpProblem(401, "unauthorized", "Unauthorized",
                           "this endpoint needs a bearer token: send Authorization: Bearer TOKEN",
                           headers={"WWW-Authenticate": challenge})
    return HttpProblem(401, "unauthorized", "Unauthorized", "the bearer token is not valid",
                       headers={"WWW-Authenticate": challenge})


def authorize(request: Request, tokens: Tokens, needed: str, *, page: bool = False) -> None:
    header = request.headers.get("authorization")
    token = bearer(header)
    if token is None and page and request.method == "GET":
        token = basic_password(header)
    granted = tokens.scope_of(token) if token is not None else None
    if granted is None:
        raise unauthorized(token is not None, page and "text/html" in request.headers.get("accept", ""))
    if not allows(granted, needed):
        raise HttpProblem(403, "insufficient-scope", "Forbidden",
                          f"this endpoint changes the ledger and needs a token with the {WRITE} scope; "
                          f"this token has {granted}",
                          headers={"WWW-Authenticate": f'Bearer realm="ratecard", error="insufficient_scope", '
                                                       f'scope="{WRITE}"'})


async def rules_now(server: Server):
    """The rule sets for this request; a due reload (file reads, YAML, schemas) runs in a worker
    thread, so that the event loop, and the status answers it serves, never wait for it."""
    if server.rules.due():
        from starlette.concurrency import run_in_threadpool

        await run_in_threadpool(server.rules.reload)
    return server.rules.current()


def json_body(text: str, *, status: int = 200, fingerprint: str | None = None, headers=None) -> Response:
    extra = dict(headers or {})
    if fingerprint:
        extra[FINGERPRINT_HEADER] = fingerprint
    return Response(text, status_code=status, media_type="application/json", headers=extra)


def text_body(text: str, media_type: str, *, fingerprint: str | None = None) -> Response:
    headers = {FINGERPRINT_HEADER: fingerprint} if fingerprint else {}
    if media_type == "text/html":
        # A page built from the rules and usage only: nothing may load from anywhere.
        headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    return Response(text, media_type=f"{media_type}; charset=utf-8", headers=headers)


def choice(value, name: str, options, default=None):
    if value is None:
        return default
    if value not in options:
        raise bad_request(f"{name} must be one of: {', '.join(options)}; got {value!r}", "bad-parameter",
                          "Bad parameter")
    return value


def field(body: dict, name: str, kinds, *, required: bool = False, default=None):
    """One member of a posted JSON object, of the expected JSON type."""
    if not isinstance(body, dict):
        raise bad_request("request body: expected a JSON object", "bad-body", "Bad request body")
    if name not in body:
        if required:
            raise bad_request(f"request body: missing member {name!r}", "bad-body", "Bad request body")
        return default
    value = body[name]
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _tuple(kinds)):
        expected = " or ".join(_JSON_NAMES.get(k, k.__name__) for k in _tuple(kinds))
        raise bad_request(f"request body: {name} must be {expected}", "bad-body", "Bad request body")
    return value


def _tuple(kinds):
    return kinds if isinstance(kinds, tuple) else (kinds,)


_JSON_NAMES = {str: "a string", int: "a whole number", bool: "true or false", dict: "an object", list: "an array"}


def only_members(body: dict, allowed) -> None:
    extra = sorted(set(body) - set(allowed)) if isinstance(body, dict) else []
    if extra:
        raise bad_request(f"request body: unknown member {extra[0]!r}; expected: {', '.join(sorted(allowed))}",
                          "bad-body", "Bad request body")


__all__ = ["READ", "WRITE", "Endpoint", "Server", "authorize", "choice", "field", "json_body", "only_members",
           "text_body", "FINGERPRINT_HEADER"]
