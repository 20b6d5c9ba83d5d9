"""Problem documents (RFC 9457) and the guarded reading of request bodies.

Every refusal is ``application/problem+json``: `type`, `title`, `status`, `detail`, `instance`, and
two extensions: `messages`, the lines the CLI prints for the same error (``FILE:LINE:COL: ...``),
and, for errors that list problems, `problems`, each as `ratecard.Problem.to_dict` gives it. An
unexpected exception becomes a 500 whose document says only that, with a reference to the
server's log line; its traceback stays in the server's log.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

from starlette.requests import Request
from starlette.responses import Response

from ..errors import (NoRulesInForce, PeriodError, ProblemsError, RatecardError, RuleSetInvalid, UnknownApi,
                      UsageInvalid)

TYPE_BASE = "https://ratecard.dev/problems/"
MEDIA_TYPE = "application/problem+json"
BODY_NAME = "request body"


class HttpProblem(Exception):
    def __init__(self, status: int, slug: str, title: str, detail: str, *, messages=None, problems=(),
                 headers=None):
        super().__init__(detail)
        self.status, self.slug, self.title, self.detail = status, slug, title, detail
        self.messages = list(messages) if messages is not None else [detail]
        self.problems = [p.to_dict() for p in problems]
        self.headers = dict(headers or {})

    def document(self, instance: str) -> dict:
        doc = {"type": TYPE_BASE + self.slug if self.slug else "about:blank", "title": self.title,
               "status": self.status, "detail": self.detail, "instance": instance, "messages": self.messages}
        if self.problems:
            doc["problems"] = self.problems
        return doc

    def body(self, instance: str) -> bytes:
        return (json.dumps(self.document(instance), indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def problem_response(problem: HttpProblem, instance: str) -> Response:
    response = Response(problem.body(instance), status_code=problem.status, media_type=MEDIA_TYPE)
    for name, value in problem.headers.items():
        for one in (value if isinstance(value, list) else [value]):  # a list: the header once per value
            response.headers.append(name, one)
    return response


_KINDS = (  # the most specific first
    (RuleSetInvalid, "rule-set-invalid", "The rule set is invalid"),
    (UsageInvalid, "usage-invalid", "The usage has bad rows"),
    (UnknownApi, "unknown-api", "The usage names an API the rules do not list"),
    (NoRulesInForce, "no-rules-in-force", "No rules are in force for the period"),
    (PeriodError, "bad-period", "Bad period"),
)


def from_error(exc: RatecardError) -> HttpProblem:
    """A library error as a 4xx problem, with the CLI's lines for it."""
    if type(exc).__name__ == "UnknownAccount":  # the ledger's own error; its module is not imported here
        return HttpProblem(404, "unknown-account", "Unknown account", str(exc), messages=exc.lines())
    for cls, slug, title in _KINDS:
        if isinstance(exc, cls):
            break
    else:
        slug, title = "bad-input", "The request cannot be carried out"
    problems = exc.problems if isinstance(exc, ProblemsError) else ()
    return HttpProblem(422, slug, title, str(exc), messages=exc.lines(), problems=problems)


def bad_request(detail: str, slug: str = "bad-request", title: str = "Bad request") -> HttpProblem:
    return HttpProblem(400, slug, title, detail)


def not_found(detail: str, slug: str = "not-found") -> HttpProblem:
    return HttpProblem(404, slug, "Not found", detail)


# -- bodies ------------------------------------------------------------------------------------------


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, refused with 413 past `limit` bytes, whether it says its length or not."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise bad_request("the Content-Length header is not a number")
        if int(declared) > limit:
            raise _too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> HttpProblem:
    return HttpProblem(413, "body-too-large", "Request body too large",
                       f"the request body is larger than {limit:,} bytes, the server's limit (--max-body)")


_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth(raw: bytes) -> int:
    """How deeply a JSON text nests arrays and objects, counted without parsing it (strings removed),
    so that a hostile nesting is refused before the parser recurses into it."""
    brackets = _STRINGS.sub(b'""', raw).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        if byte in b"[{":  # iterating bytes gives ints; `in` on bytes accepts them
            depth += 1
            if depth > deepest:
                deepest = depth
        else:
            depth -= 1
    return deepest


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number; write a number or a string")


def _pairs(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        twice = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"the key {twice[0]!r} is given twice in one object")
    return dict(pairs)


def parse_json(raw: bytes, max_depth: int, *, name: str = BODY_NAME):
    """JSON with numbers as exact Decimals (integers stay int), no NaN or Infinity, no key given twice."""
    if not raw.strip():
        raise bad_request(f"{name}: empty; expected a JSON object", "malformed-json", "Malformed JSON")
    depth = json_depth(raw)
    if depth > max_depth:
        raise bad_request(f"{name}: nested {depth} levels deep; the server accepts at most {max_depth} (--max-depth)",
                          "json-too-deep", "JSON nested too deeply")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise bad_request(f"{name}:{line}: not UTF-8 text; send JSON as UTF-8", "malformed-json",
                          "Malformed JSON") from None
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_no_constant, object_pairs_hook=_pairs)
    except json.JSONDecodeError as exc:
        raise bad_request(f"{name}:{exc.lineno}:{exc.colno}: {exc.msg}", "malformed-json", "Malformed JSON") from None
    except (ValueError, RecursionError) as exc:
        raise bad_request(f"{name}: {exc}", "malformed-json", "Malformed JSON") from None


async def read_json(request: Request, limit: int, max_depth: int):
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise HttpProblem(415, "unsupported-media-type", "Unsupported media type",
                          f"expected a JSON body (Content-Type: application/json), got {media or 'no content type'}")
    return parse_json(await read_body(request, limit), max_depth)
