"""The ledger's vocabulary: its errors, how times and amounts are stored and parsed, and the seam
fault-injection tests use to stop a write between two steps."""

from __future__ import annotations

import functools
import os
import re
import sys
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path

from ..counts import CountError, parse_count
from ..currencies import minor_units
from ..errors import RatecardError
from ..displaytext import unsafe_character
from ..exact import EXACT, decimal_places

DB_ENV = "RATECARD_DB"
DEFAULT_DB = "ratecard.db"
APPLICATION_ID = 0x52434C44  # "RCLD": marks an SQLite file as a ratecard ledger
BUSY_TIMEOUT_S = 60.0  # how long a writer waits for another one (a concurrent settle) to commit

ACTIVE, SUSPENDED, NOT_ACTIVATED = "active", "suspended", "not-activated"


class LedgerError(RatecardError):
    """A ledger operation that cannot be done; nothing was changed."""


class SettleInterrupted(LedgerError):
    """A settlement that stopped part-way (a full disk, a lost lock): the accounts settled before
    the failure are recorded, and stay so; the rest are not. Settling again records the rest."""

    def __init__(self, period: str, service: str, cause: Exception, done: tuple, left: tuple,
                 stopped_at: str | None = None, *, recorded=None):
        # `done`: the results of the accounts settled before the failure (empty when they were streamed
        # to the caller as they were settled: `recorded` then names those whose bill is recorded).
        self.period, self.service, self.done, self.left = period, service, done, left
        reason = str(cause)
        for tail in ("; nothing was changed", "; Nothing was changed"):
            reason = reason.removesuffix(tail)
        if recorded is None:
            recorded = [r.account for r in done if getattr(r, "outcome", "") != "failed"]
        self.recorded = tuple(recorded)
        super().__init__(
            f"settling {period} of {service} stopped at account {stopped_at or left[0]}: {reason}. Recorded before "
            "it, and "
            f"kept: {_some(recorded) or 'no account'}. Not recorded: {_some(left) or 'no account'}. Settle again once the "
            "cause is fixed: it records what is missing and changes nothing already recorded")


def _some(names, shown: int = 10) -> str:
    names = list(names)
    if not names:
        return ""
    head = ", ".join(names[:shown])
    return f"{len(names):,} account(s): {head}" + (f" and {len(names) - shown:,} more" if len(names) > shown else "")


class NotALedger(LedgerError):
    """The database file is not a ratecard ledger (or one this release cannot read)."""


class UnknownAccount(LedgerError):
    def __init__(self, account: str):
        self.account = account
        super().__init__(f"unknown account {account!r}: no such account in the ledger; create it with "
                         "`ratecard account create`")


@functools.cache
def settlement():
    """`ratecard.settlement`, imported on first use (``ratecard status`` does not load it) and then
    without the import machinery: the settlement's per-account paths ask for it several times an account."""
    from .. import settlement as S

    return S


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


# Money in the ledger stays below 10**15 (a quadrillion) in any currency: with a currency's few
# decimals that is at most 19 significant digits, which every sum, difference and display of two
# amounts holds exactly even in Python's default 28-digit decimal context (and a JSON reader that
# takes numbers as binary doubles still reads whole units exactly).
MAX_AMOUNT = Decimal(10) ** 15


def parse_amount(text, currency: str | None = None) -> Decimal:
    """A positive amount of money written as plain decimal digits, e.g. 100 or 25.50, below MAX_AMOUNT."""
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
    if value >= MAX_AMOUNT:
        raise LedgerError(f"bad amount {raw!r}: amounts in the ledger are below {MAX_AMOUNT:,f}; "
                          "expected an amount such as 100 or 25.50")
    if currency is not None:
        places = minor_units(currency)
        if decimal_places(value) > places and value != round(value, places):
            raise LedgerError(f"bad amount {raw!r}: {currency} has {places} decimal place{'' if places == 1 else 's'}")
    return value


# Differences of exact amounts stay exact, whatever the caller's decimal context.
subtract = EXACT.subtract

ACCOUNT_ID = re.compile(r"^[^\x00-\x20\x7f]{1,200}$")


def check_reference(reference: str | None, what: str) -> None:
    """A reference (a payment's or purchase's id) is what makes recording twice change nothing: an
    empty one would make every later empty reference "the same" payment."""
    if reference is not None and (not isinstance(reference, str) or not reference.strip()):
        raise LedgerError(f"the {what} reference is empty; give the payment's or purchase's id, or no "
                          "reference at all; nothing was changed")
    bad = unsafe_character(reference) if reference else ""
    if bad:
        raise LedgerError(f"the {what} reference holds {bad}; expected printable text; nothing was changed")

def parse_pack_size(size) -> int:
    """A pack size: a whole number of units, written as `ratecard.counts` says (1000000, 1,000,000, 1M)."""
    if isinstance(size, int) and not isinstance(size, bool):
        return size
    try:
        return parse_count(str(size).strip())
    except CountError as exc:
        raise LedgerError(f"bad pack size: {exc}") from None
