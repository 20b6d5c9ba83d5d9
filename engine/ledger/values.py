"""The ledger's vocabulary: its errors, how times and amounts are stored and parsed, and the seam
fault-injection tests use to stop a write between two steps."""

from __future__ import annotations

import os
import re
import sys
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path

from ..counts import CountError, parse_count
from ..currencies import minor_units
from ..errors import RatecardError
from ..exact import EXACT

DB_ENV = "RATECARD_DB"
DEFAULT_DB = "ratecard.db"
APPLICATION_ID = 0x52434C44  # "RCLD": marks an SQLite file as a ratecard ledger
BUSY_TIMEOUT_S = 60.0  # how long a writer waits for another one (a concurrent settle) to commit

ACTIVE, SUSPENDED, NOT_ACTIVATED = "active", "suspended", "not-activated"


class LedgerError(RatecardError):
    """A ledger operation that cannot be done; nothing was changed."""


class NotALedger(LedgerError):
    """The database file is not a ratecard ledger (or one this release cannot read)."""


class UnknownAccount(LedgerError):
    def __init__(self, account: str):
        self.account = account
        super().__init__(f"unknown account {account!r}: no such account in the ledger; create it with "
                         "`ratecard account create`")


def step(name: str) -> None:
    """Called with a step name at each point where a crash would leave a different state (e.g. between
    writing a bill and its debit). The hook is `ratecard.ledger._checkpoint_hook`, set only by
    fault-injection tests: it lives on the package so that those tests have one place to set it."""
    hook = getattr(sys.modules[__package__], "_checkpoint_hook", None)
    if hook is not None:
        hook(name)


def default_path(path=None) -> Path:
    return Path(path or os.environ.get(DB_ENV) or DEFAULT_DB)


def stamp(moment: datetime) -> str:
    """A moment as stored: UTC, fixed width, so that stored times sort as text."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"ledger times must be timezone-aware, got {moment!r}")
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def as_text(value: Decimal) -> str:
    return format(value, "f")


def as_decimal(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


_AMOUNT = re.compile(r"^[0-9]+(\.[0-9]+)?$")


def parse_amount(text, currency: str | None = None) -> Decimal:
    """A positive amount of money written as plain decimal digits, e.g. 100 or 25.50."""
    raw = str(text).strip()
    if len(raw) > 40:
        raise LedgerError(f"bad amount {raw[:20]}…: too many digits; expected an amount such as 100 or 25.50")
    if not _AMOUNT.match(raw):
        problem = "it is negative" if raw.startswith("-") else "it is not a plain decimal number"
        raise LedgerError(f"bad amount {str(text)!r}: {problem}; expected a positive amount such as 100 or 25.50")
    try:
        value = Decimal(raw)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        raise LedgerError(f"bad amount {raw!r}: expected a positive amount such as 100 or 25.50") from None
    if value <= 0:
        raise LedgerError(f"bad amount {raw!r}: a top-up must be more than zero")
    if currency is not None:
        places = minor_units(currency)
        if -value.as_tuple().exponent > places and value != round(value, places):
            raise LedgerError(f"bad amount {raw!r}: {currency} has {places} decimal place{'' if places == 1 else 's'}")
    return value


# Differences of exact amounts stay exact, whatever the caller's decimal context.
subtract = EXACT.subtract

ACCOUNT_ID = re.compile(r"^[^\x00-\x20\x7f]{1,200}$")

def parse_pack_size(size) -> int:
    """A pack size: a whole number of units, written as `ratecard.counts` says (1000000, 1,000,000, 1M)."""
    if isinstance(size, int) and not isinstance(size, bool):
        return size
    try:
        return parse_count(str(size).strip())
    except CountError as exc:
        raise LedgerError(f"bad pack size: {exc}") from None
