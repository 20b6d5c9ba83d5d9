"""The gateway's question without the framework: ``GET /v1/accounts/{account}/status`` as raw ASGI.

A gateway asks before every call it lets through, so this one request is answered in front of
Starlette: the path matched by one regular expression, the same token check (`auth`), the same
answer from the same status cache (`state.LedgerAccess.status`), the same problem documents. What it
saves is the router, the request object and the middleware stack, most of the time a status
request used to take. Anything else (another method, any other path) goes on to the application.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs

from .auth import READ, allows, bearer
from .problems import MEDIA_TYPE, HttpProblem, from_error
from .common import internal_error_document

_STATUS = re.compile(r"/v1/accounts/([^/]+)/status")
_JSON = [(b"content-type", b"application/json")]
_PROBLEM = [(b"content-type", MEDIA_TYPE.encode())]
_SECURITY = [(b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store"),
             (b"referrer-policy", b"no-referrer")]


class StatusFastPath:
    def __init__(self, app, server):
        self.app, self.server = app, server
        self.state = app.state  # `app.state.ratecard` stays reachable on what create_app returns

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "GET":
            found = _STATUS.fullmatch(scope["path"])
            if found is not None:
                return await self._status(scope, send, found.group(1))
        return await self.app(scope, receive, send)

    async def _status(self, scope, send, account: str) -> None:
        server = self.server
        path = scope["path"]
        try:
            header = None
            for name, value in scope["headers"]:
                if name == b"authorization":
                    header = value.decode("latin-1")
                    break
            _authorize(server.tokens, header)
            service = server.default_service
            if scope.get("query_string"):
                given = parse_qs(scope["query_string"].decode("latin-1")).get("service")
                if given and given[0]:
                    service = given[0]
            answer = server.ledger.status(account, service)
            status, body, headers = answer.status, answer.body, (_JSON if answer.status == 200 else _PROBLEM)
        except HttpProblem as problem:
            status, body = problem.status, problem.body(path)
            headers = _PROBLEM + [(k.lower().encode(), v.encode()) for k, v in problem.headers.items()
                                  if isinstance(v, str)]
        except Exception as exc:  # noqa: BLE001 - as every endpoint: a problem, never a traceback
            from ..errors import RatecardError

            if isinstance(exc, RatecardError):
                refused = from_error(exc)
                status, body, headers = refused.status, refused.body(path), _PROBLEM
            else:
                status, body, headers = 500, internal_error_document(scope["method"], path), _PROBLEM
        await send({"type": "http.response.start", "status": status,
                    "headers": headers + [(b"content-length", str(len(body)).encode())] + _SECURITY})
        await send({"type": "http.response.body", "body": body})


def _authorize(tokens, header) -> None:
    from .common import unauthorized

    token = bearer(header)
    granted = tokens.scope_of(token) if token is not None else None
    if not allows(granted, READ):
        raise unauthorized(token is not None)
