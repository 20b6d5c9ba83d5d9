"""Bearer tokens for `ratecard serve`: where they come from, and how a request's token is checked.

Tokens are entries ``SCOPE:TOKEN``: in a file (``--tokens FILE``, one entry a line, ``#`` starts a
comment) or in the environment variable ``RATECARD_TOKENS`` (entries separated by white space or
commas). A scope is ``read`` (status, quotes, previews, rate cards, validate, diff, invoices) or
``write`` (also the ledger changes: accounts, activations, top-ups). A token is at least 16
characters of printable ASCII without spaces.

Only SHA-256 digests of the tokens are kept; a presented token's digest is compared with every one
of them by `hmac.compare_digest`, all of them every time, so the time taken says nothing about
which token, or how much of one, matched.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import Location, Problem, ProblemsError

READ, WRITE = "read", "write"
SCOPES = (READ, WRITE)
ENV = "RATECARD_TOKENS"
MIN_LENGTH = 16
_TOKEN = re.compile(r"[\x21-\x7e]{%d,512}" % MIN_LENGTH)


class TokensInvalid(ProblemsError):
    """The token file or variable cannot be used; each problem names its line."""


@dataclass(frozen=True)
class Token:
    scope: str
    digest: bytes
    source: str  # where it was defined, FILE:LINE: for the log, never the token itself


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


class Tokens:
    def __init__(self, tokens):
        self.tokens = tuple(tokens)
        if not self.tokens:
            raise TokensInvalid([Problem(Location("tokens"), f"no token given; pass --tokens FILE or set {ENV}, with "
                                         f"entries SCOPE:TOKEN (scope read or write)")],
                                "ratecard serve needs at least one bearer token")

    @classmethod
    def parse(cls, entries, source: str) -> Tokens:
        """`entries` are (line number, text) pairs; `source` names the file or variable in problems."""
        problems, tokens, seen = [], [], set()
        for line, text in entries:
            scope, sep, secret = text.partition(":")
            where = Location(source, line, 0)
            if not sep or scope not in SCOPES:
                problems.append(Problem(where, "expected SCOPE:TOKEN with scope read or write"))
            elif not _TOKEN.fullmatch(secret):
                problems.append(Problem(where, f"a token must be {MIN_LENGTH} to 512 printable ASCII characters "
                                        "without spaces"))
            elif secret in seen:
                problems.append(Problem(where, "this token is given twice; give each token once, with one scope"))
            else:
                seen.add(secret)
                tokens.append(Token(scope, _digest(secret), f"{source}:{line}"))
        if problems:
            raise TokensInvalid(problems, f"{source}: {len(problems)} bad token entr{'y' if len(problems) == 1 else 'ies'}")
        return cls(tokens)

    @classmethod
    def from_file(cls, path) -> Tokens:
        shown = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise TokensInvalid([Problem(Location(shown), f"cannot read the token file: "
                                         f"{getattr(exc, 'strerror', None) or exc}")], "no tokens") from None
        entries = [(n, line.split("#", 1)[0].strip()) for n, line in enumerate(text.splitlines(), 1)]
        return cls.parse([(n, t) for n, t in entries if t], shown)

    @classmethod
    def from_env(cls, environ=None) -> Tokens:
        text = (environ if environ is not None else os.environ).get(ENV, "")
        return cls.parse([(i, e) for i, e in enumerate(re.split(r"[\s,]+", text.strip()), 1) if e], f"${ENV}")

    @classmethod
    def load(cls, file=None, environ=None) -> Tokens:
        """From `file` when given, else from the environment."""
        return cls.from_file(file) if file else cls.from_env(environ)

    def scope_of(self, presented: str | None) -> str | None:
        """The scope of the presented token, or None. Constant time in the token's content."""
        if not presented:
            return None
        digest = _digest(presented)
        found = None
        for token in self.tokens:  # no early exit
            if hmac.compare_digest(digest, token.digest):
                found = token.scope
        return found


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header (RFC 6750), or None."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def basic_password(header: str | None) -> str | None:
    """The password of an ``Authorization: Basic`` header (RFC 7617): how a browser, prompted by the
    server, sends a token for the pages it opens (the user name is ignored)."""
    import base64
    import binascii

    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        text = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, sep, password = text.partition(":")
    return password or None if sep else None


def allows(granted: str | None, needed: str) -> bool:
    """A write token may do whatever a read token may."""
    return granted == WRITE or (granted == READ and needed == READ)
