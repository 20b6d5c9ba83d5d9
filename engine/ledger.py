"""The ledger: accounts, their services, bills, debits, top-ups, deposits and service states, kept in
one SQLite file. `ratecard.settlement` decides what happens; this module stores it, safely.

    from ratecard.ledger import Ledger
    with Ledger("ratecard.db", readonly=True) as ledger:
        ledger.status("acct-42", "<service>").allowed      # one indexed query, no process start

How it stays right:

- **One file** (`--db PATH`, else ``$RATECARD_DB``, else ``./ratecard.db``), created and migrated by
  ratecard. Migrations are an ordered list, each applied in its own transaction and recorded in the
  `ratecard_schema` table; the file also carries an SQLite application id. A file that is not a
  ledger (not SQLite, another program's database, or a ledger written by a newer release) is
  refused before anything is written to it.
- **Money is exact**: decimal text in the database (never REAL), summed in Python with Decimal,
  never with SQL ``SUM()``.
- **Append-only history**: every change is one row of `entries` (time, kind, reason, change to the
  balance and to the deposit held, and the balance and deposit after it). Triggers refuse UPDATE and
  DELETE on entries and bills. `accounts.balance` and `accounts.frozen` are kept in step with the
  entries in the same transaction; `Ledger.verify()` re-adds every entry to prove it.
- **Nothing counted twice**: one bill per account, service and period (primary key), and one
  ``debit`` entry per account, service and period (a partial unique index). Each account is settled
  in one ``BEGIN IMMEDIATE`` transaction, so a crash leaves it wholly settled or untouched and a
  re-run settles exactly the rest; two concurrent runs serialize per account and the later one
  finds the work done.
- **Resource packs** are rows of `packs`, each paid by its own ``pack-purchase`` entry when bought.
  The units a settlement takes from them, and those lost when a pack expires, are rows of
  `pack_units` (one per pack, kind and period) written in the bill's own transaction, each with its
  ``pack-use`` or ``pack-expired`` entry: a re-run or a crash never takes a pack's units twice. A
  pack serves every period it overlaps; its units left are lost when the last of them is settled.
- **Times** are aware datetimes passed in by the caller (the CLI reads the clock), stored as UTC ISO
  8601 text of fixed width so that they sort as text. An account's entries are recorded in time
  order: a change dated before the account's latest entry is refused.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Iterable
from urllib.parse import quote

from .exact import EXACT
from .currencies import is_currency, minor_units
from .errors import RatecardError
from .formatting import format_money

# `ratecard.settlement` (and the rule model under it) is imported where it is used, not here: a status
# check, which needs neither, then starts in fewer milliseconds.
if TYPE_CHECKING:
    from . import settlement as S

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


# A seam for fault-injection tests: called with a step name at each point where a crash would leave
# a different state (e.g. between writing a bill and its debit). Never set in production.
_checkpoint_hook = None


def _step(name: str) -> None:
    if _checkpoint_hook is not None:
        _checkpoint_hook(name)


# -- schema ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


# The entry kinds of schema version 1, written out rather than read from `settlement.ENTRY_KINDS`: a
# migration is history and must not change. A later release adds kinds with a migration that
# inserts rows into `entry_kinds` (e.g. a resource pack purchase, with a `packs` table).
_KINDS_V1 = (
    ("account-opened", "the account was created"),
    ("service-activated", "a service was activated by accepting its terms of service"),
    ("terms-accepted", "a newer version of a service's terms of service was accepted"),
    ("bill-issued", "a period's bill was recorded (the fee is taken by its debit)"),
    ("debit-scheduled", "a bill's fee was scheduled for the policy's deduction window"),
    ("debit", "a bill's fee was taken from the balance"),
    ("top-up", "money was credited to the balance"),
    ("freeze", "part of the balance was held as a deposit"),
    ("freeze-failed", "a deposit could not be held for lack of available balance"),
    ("freeze-released", "a deposit was released"),
    ("suspended", "the service was stopped"),
    ("resumed", "the service was restarted"),
)


def _append_only(table: str) -> tuple[str, ...]:
    return tuple(f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
                 f"BEGIN SELECT RAISE(ABORT, '{table} are append-only: rows cannot be changed or deleted'); END"
                 for op in ("UPDATE", "DELETE"))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "accounts, services, entries, bills and debits", (
        "CREATE TABLE ratecard_schema (version INTEGER PRIMARY KEY, description TEXT NOT NULL)",
        "CREATE TABLE entry_kinds (kind TEXT PRIMARY KEY, description TEXT NOT NULL) WITHOUT ROWID",
        *(f"INSERT INTO entry_kinds VALUES ('{k}', '{d.replace(chr(39), chr(39) * 2)}')" for k, d in _KINDS_V1),
        """CREATE TABLE accounts (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            currency TEXT NOT NULL,
            created_at TEXT NOT NULL,
            balance TEXT NOT NULL,      -- the sum of the account's entries' amounts
            frozen TEXT NOT NULL,       -- the sum of their frozen changes: deposits held
            last_at TEXT NOT NULL       -- the time of the latest entry: entries are in time order
        ) WITHOUT ROWID""",
        """CREATE TABLE services (
            account TEXT NOT NULL REFERENCES accounts(id),
            service TEXT NOT NULL,
            activated_at TEXT NOT NULL,
            terms_version TEXT NOT NULL,
            terms_accepted_at TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('active', 'suspended')),
            since TEXT NOT NULL,
            reason TEXT NOT NULL,
            arrears_action TEXT,        -- the policy's terms as of the latest debit
            resume_when TEXT,
            frozen TEXT NOT NULL,       -- the deposit held for this service
            frozen_period TEXT,
            pending_freeze TEXT,        -- a deposit that could not be held, retried by top-ups
            pending_period TEXT,
            PRIMARY KEY (account, service)
        ) WITHOUT ROWID""",
        """CREATE TABLE entries (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            account TEXT NOT NULL REFERENCES accounts(id),
            at TEXT NOT NULL,
            kind TEXT NOT NULL REFERENCES entry_kinds(kind),
            service TEXT,
            period TEXT,
            amount TEXT NOT NULL,           -- added to the balance
            frozen_change TEXT NOT NULL,    -- added to the deposits held
            balance_after TEXT NOT NULL,
            frozen_after TEXT NOT NULL,
            reason TEXT NOT NULL,
            ref TEXT
        )""",
        "CREATE INDEX entries_by_account ON entries (account, seq)",
        "CREATE UNIQUE INDEX one_bill_entry ON entries (account, service, period) WHERE kind = 'bill-issued'",
        "CREATE UNIQUE INDEX one_debit ON entries (account, service, period) WHERE kind = 'debit'",
        "CREATE UNIQUE INDEX one_top_up_per_reference ON entries (account, ref) WHERE kind = 'top-up' "
        "AND ref IS NOT NULL",
        *_append_only("entries"),
        """CREATE TABLE bills (
            account TEXT NOT NULL,
            service TEXT NOT NULL,
            period TEXT NOT NULL,
            invoice_number TEXT NOT NULL UNIQUE,
            currency TEXT NOT NULL,
            total TEXT NOT NULL,
            list_cost TEXT NOT NULL,        -- every billable unit at pay-as-you-go prices
            rules_name TEXT NOT NULL,
            rules_fingerprint TEXT NOT NULL,
            bill_json TEXT NOT NULL,
            invoice_text TEXT NOT NULL,
            issued_at TEXT NOT NULL,
            PRIMARY KEY (account, service, period),
            FOREIGN KEY (account, service) REFERENCES services (account, service)
        ) WITHOUT ROWID""",
        *_append_only("bills"),
        """CREATE TABLE debits (
            account TEXT NOT NULL,
            service TEXT NOT NULL,
            period TEXT NOT NULL,
            amount TEXT NOT NULL,
            due_at TEXT NOT NULL,           -- the deduction window opens
            closes_at TEXT NOT NULL,        -- ... and closes (exclusive)
            arrears_action TEXT NOT NULL,   -- the policy's terms, so that collecting needs no rules
            resume_when TEXT NOT NULL,
            freeze TEXT,
            freeze_basis TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('scheduled', 'applied')),
            entry INTEGER REFERENCES entries (seq),
            PRIMARY KEY (account, service, period),
            FOREIGN KEY (account, service, period) REFERENCES bills (account, service, period),
            CHECK ((status = 'applied') = (entry IS NOT NULL))
        ) WITHOUT ROWID""",
        "CREATE INDEX debits_due ON debits (status, due_at)",
    )),
    # Resource packs. Units used and lost are rows of `pack_units` (one per pack, kind and period,
    # each with its entry), never a counter updated in place: a pack's units left are its units less
    # those rows, and a settlement that ran already cannot take a pack's units again.
    Migration(2, "resource packs: packs, their units used and lost", (
        *(f"INSERT INTO entry_kinds VALUES ('{k}', '{d}')" for k, d in (
            ("pack-purchase", "a resource pack was bought: its price was taken from the balance"),
            ("pack-use", "units of a resource pack were used by a period''s bill"),
            ("pack-expired", "a resource pack expired: the units left in it were lost"))),
        """CREATE TABLE packs (
            id TEXT PRIMARY KEY,
            account TEXT NOT NULL,
            service TEXT NOT NULL,
            category TEXT NOT NULL,
            units INTEGER NOT NULL CHECK (units > 0),
            unit TEXT NOT NULL,
            price TEXT NOT NULL,
            currency TEXT NOT NULL,
            bought_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,       -- exclusive: the pack serves the periods before it ends
            time_zone TEXT NOT NULL,        -- the policy's, in which its validity was counted
            rules_name TEXT NOT NULL,
            rules_fingerprint TEXT NOT NULL, -- the price book versions that sold it
            reference TEXT,                 -- the caller's id of the purchase: recorded once
            entry INTEGER NOT NULL UNIQUE REFERENCES entries (seq),
            FOREIGN KEY (account, service) REFERENCES services (account, service),
            CHECK (expires_at > bought_at)
        ) WITHOUT ROWID""",
        "CREATE INDEX packs_by_account ON packs (account, service, expires_at)",
        "CREATE UNIQUE INDEX one_pack_per_reference ON packs (account, reference) WHERE reference IS NOT NULL",
        *_append_only("packs"),
        """CREATE TABLE pack_units (
            pack TEXT NOT NULL REFERENCES packs (id),
            kind TEXT NOT NULL CHECK (kind IN ('pack-use', 'pack-expired')),
            period TEXT NOT NULL,           -- the period whose settlement used (or found expired) them
            units INTEGER NOT NULL CHECK (units > 0),
            entry INTEGER NOT NULL UNIQUE REFERENCES entries (seq),
            PRIMARY KEY (pack, kind, period)
        ) WITHOUT ROWID""",
        "CREATE UNIQUE INDEX one_expiry_per_pack ON pack_units (pack) WHERE kind = 'pack-expired'",
        *_append_only("pack_units"),
    )),
)
LATEST = MIGRATIONS[-1].version


# -- values ------------------------------------------------------------------------------------------


def default_path(path=None) -> Path:
    return Path(path or os.environ.get(DB_ENV) or DEFAULT_DB)


def stamp(moment: datetime) -> str:
    """A moment as stored: UTC, fixed width, so that stored times sort as text."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"ledger times must be timezone-aware, got {moment!r}")
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _text(value: Decimal) -> str:
    return format(value, "f")


def _dec(text: str | None) -> Decimal | None:
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
            raise LedgerError(f"bad amount {raw!r}: {currency} has {places} decimal place(s)")
    return value


# Differences of exact amounts stay exact, whatever the caller's decimal context.
_subtract = EXACT.subtract

_ACCOUNT_ID = re.compile(r"^[^\x00-\x20\x7f]{1,200}$")


# -- records read back -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    """May this account use this service now? `allowed` is the answer; `reason` says why."""

    account: str
    service: str | None
    state: str  # "active" | "suspended" | "not-activated"
    reason: str
    since: datetime | None
    currency: str
    balance: Decimal
    frozen: Decimal

    @property
    def allowed(self) -> bool:
        return self.state == ACTIVE

    def to_dict(self) -> dict:
        return {"account": self.account, "service": self.service, "state": self.state, "allowed": self.allowed,
                "reason": self.reason, "since": self.since.isoformat() if self.since else None,
                "currency": self.currency, "balance": _text(self.balance), "frozen": _text(self.frozen),
                "available": _text(_subtract(self.balance, self.frozen))}


@dataclass(frozen=True)
class ServiceInfo:
    service: str
    activated_at: datetime
    terms_version: str
    terms_accepted_at: datetime
    state: str
    since: datetime
    reason: str
    frozen: Decimal
    pending_freeze: Decimal | None

    def to_dict(self) -> dict:
        return {"service": self.service, "activated_at": self.activated_at.isoformat(),
                "terms_version": self.terms_version, "terms_accepted_at": self.terms_accepted_at.isoformat(),
                "state": self.state, "since": self.since.isoformat(), "reason": self.reason,
                "frozen": _text(self.frozen),
                "pending_freeze": None if self.pending_freeze is None else _text(self.pending_freeze)}


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    currency: str
    created_at: datetime
    balance: Decimal
    frozen: Decimal
    services: tuple[ServiceInfo, ...] = ()

    @property
    def available(self) -> Decimal:
        return _subtract(self.balance, self.frozen)

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "currency": self.currency,
                "created_at": self.created_at.isoformat(), "balance": _text(self.balance),
                "frozen": _text(self.frozen), "available": _text(self.available),
                "services": [s.to_dict() for s in self.services]}


@dataclass(frozen=True)
class Entry:
    seq: int
    account: str
    at: datetime
    kind: str
    service: str | None
    period: str | None
    amount: Decimal
    frozen_change: Decimal
    balance_after: Decimal
    frozen_after: Decimal
    reason: str
    ref: str | None

    def to_dict(self) -> dict:
        return {"seq": self.seq, "account": self.account, "at": self.at.isoformat(), "kind": self.kind,
                "service": self.service, "period": self.period, "amount": _text(self.amount),
                "frozen_change": _text(self.frozen_change), "balance_after": _text(self.balance_after),
                "frozen_after": _text(self.frozen_after), "reason": self.reason, "ref": self.ref}


@dataclass(frozen=True)
class BillRecord:
    account: str
    service: str
    period: str
    invoice_number: str
    currency: str
    total: Decimal
    list_cost: Decimal
    rules_name: str
    rules_fingerprint: str
    issued_at: datetime
    debit_status: str  # "scheduled" | "applied"
    due_at: datetime

    def to_dict(self) -> dict:
        return {"account": self.account, "service": self.service, "period": self.period,
                "invoice_number": self.invoice_number, "currency": self.currency, "total": _text(self.total),
                "list_cost": _text(self.list_cost), "rules_name": self.rules_name,
                "rules_fingerprint": self.rules_fingerprint, "issued_at": self.issued_at.isoformat(),
                "debit": self.debit_status, "due_at": self.due_at.isoformat()}


@dataclass(frozen=True)
class PackUnits:
    """Units of a pack used for one period's bill ("pack-use"), or lost at its expiry ("pack-expired")."""

    kind: str
    period: str
    units: int
    at: datetime  # when the settlement recorded them

    def to_dict(self) -> dict:
        return {"kind": self.kind, "period": self.period, "units": self.units, "at": self.at.isoformat()}


@dataclass(frozen=True)
class Pack:
    """A resource pack an account bought, with what was used and lost of it (as of some moment)."""

    id: str
    account: str
    service: str
    category: str
    units: int
    unit: str
    price: Decimal
    currency: str
    bought_at: datetime
    expires_at: datetime  # exclusive
    time_zone: str
    rules_name: str
    rules_fingerprint: str
    reference: str | None = None
    history: tuple[PackUnits, ...] = ()
    as_of: datetime | None = None  # the moment `expired` and the history refer to (None: everything recorded)

    @property
    def used(self) -> int:
        return sum(h.units for h in self.history if h.kind == "pack-use")

    @property
    def lost(self) -> int:
        return sum(h.units for h in self.history if h.kind == "pack-expired")

    @property
    def left(self) -> int:
        return self.units - self.used - self.lost

    @property
    def expired(self) -> bool:
        return self.lost > 0 or (self.as_of is not None and self.expires_at <= self.as_of)

    @property
    def state(self) -> str:
        """"expired" (past its validity), "used-up" (nothing left before it expired) or "active"."""
        return "expired" if self.expired else "used-up" if not self.left else "active"

    @property
    def last_period(self) -> str:
        """The last period the pack serves: its units left are lost when that period is settled."""
        from .settlement import last_period_served

        return last_period_served(self.expires_at, self.time_zone)

    def local(self, moment_: datetime) -> datetime:
        from zoneinfo import ZoneInfo

        return moment_.astimezone(ZoneInfo(self.time_zone))

    def to_dict(self) -> dict:
        return {"id": self.id, "account": self.account, "service": self.service, "category": self.category,
                "units": self.units, "unit": self.unit, "price": _text(self.price), "currency": self.currency,
                "bought_at": self.local(self.bought_at).isoformat(),
                "expires_at": self.local(self.expires_at).isoformat(), "last_period": self.last_period,
                "used": self.used, "lost": self.lost, "left": self.left, "state": self.state,
                "expired": self.expired, "as_of": self.as_of.isoformat() if self.as_of else None,
                "reference": self.reference, "rules_name": self.rules_name,
                "rules_fingerprint": self.rules_fingerprint, "history": [h.to_dict() for h in self.history]}


@dataclass(frozen=True)
class Charge:
    """What a period cost an account, for its statement: a pack bought in it, or its bill."""

    kind: str  # "pack-purchase" | "invoice"
    service: str
    ref: str  # the pack id or the invoice number
    description: str
    amount: Decimal

    def to_dict(self) -> dict:
        return {"kind": self.kind, "service": self.service, "ref": self.ref, "description": self.description,
                "amount": _text(self.amount)}


# -- results of writes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    """What one write did to one account: the entries appended and where the account stands."""

    account: str
    entries: tuple[Entry, ...]
    balance: Decimal
    frozen: Decimal
    suspended: tuple[str, ...]  # services suspended after the write
    note: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.entries)


@dataclass(frozen=True)
class Collected:
    account: str
    service: str
    period: str
    amount: Decimal
    currency: str
    applied: Applied | None  # None when the debit could not be applied now
    problem: str = ""


@dataclass(frozen=True)
class Settled:
    """One account's settlement of one period."""

    account: str
    outcome: str  # "settled" | "already-settled" | "failed"
    invoice: str = ""
    currency: str = ""
    total: Decimal | None = None
    debit: str = ""  # "applied" | "scheduled"
    due_at: datetime | None = None
    applied: Applied | None = None
    problem: str = ""  # why it failed, or how a re-rating differs from the recorded bill

    def to_dict(self) -> dict:
        out = {"account": self.account, "outcome": self.outcome, "invoice": self.invoice or None,
               "currency": self.currency or None, "total": None if self.total is None else _text(self.total),
               "debit": self.debit or None, "due_at": self.due_at.isoformat() if self.due_at else None,
               "problem": self.problem or None}
        if self.applied is not None:
            out |= {"balance": _text(self.applied.balance), "frozen": _text(self.applied.frozen),
                    "suspended": list(self.applied.suspended),
                    "entries": [e.to_dict() for e in self.applied.entries]}
        return out


@dataclass(frozen=True)
class Unbilled:
    """Usage of the period that was not billed, and why: it is listed, never dropped silently."""

    account: str
    calls: int
    reason: str

    def to_dict(self) -> dict:
        return {"account": self.account, "calls": self.calls, "reason": self.reason}


@dataclass(frozen=True)
class SettleReport:
    period: str
    service: str
    rules_fingerprint: str
    at: datetime
    schedule: S.Schedule
    collected: tuple[Collected, ...] = ()
    accounts: tuple[Settled, ...] = ()
    unbilled: tuple[Unbilled, ...] = ()

    @property
    def failed(self) -> tuple[Settled, ...]:
        return tuple(a for a in self.accounts if a.outcome == "failed")

    def to_dict(self) -> dict:
        return {"period": self.period, "service": self.service, "rules_fingerprint": self.rules_fingerprint,
                "at": self.at.isoformat(), "issue": self.schedule.issue.isoformat(),
                "deduction_window": [self.schedule.deduction_opens.isoformat(),
                                     self.schedule.deduction_closes.isoformat()],
                "accounts": [a.to_dict() for a in self.accounts],
                "unbilled": [u.to_dict() for u in self.unbilled],
                "collected": [{"account": c.account, "service": c.service, "period": c.period,
                               "amount": _text(c.amount), "currency": c.currency,
                               "applied": c.applied is not None, "problem": c.problem or None}
                              for c in self.collected]}


@dataclass(frozen=True)
class Statement:
    account: Account
    period: str | None
    time_zone: str
    opening_balance: Decimal
    opening_frozen: Decimal
    entries: tuple[Entry, ...]
    closing_balance: Decimal
    closing_frozen: Decimal
    bills: tuple[BillRecord, ...] = ()
    # A period's statement: what the period cost (packs bought in it, and its own bills, whenever
    # they are issued and debited), and the packs that served it, with their units as of its end.
    charges: tuple[Charge, ...] = ()
    packs: tuple[Pack, ...] = ()

    @property
    def charges_total(self) -> Decimal:
        from .settlement import add

        total = Decimal(0)
        for c in self.charges:
            total = add(total, c.amount)
        return total


@dataclass(frozen=True)
class PackBought:
    """The result of `Ledger.buy_pack`: the pack and what buying it did to the account."""

    pack: Pack
    applied: Applied


# -- the ledger --------------------------------------------------------------------------------------

_STATUS_ONE = ("SELECT a.currency, a.balance, a.frozen, s.service, s.state, s.since, s.reason, s.terms_version "
               "FROM accounts AS a LEFT JOIN services AS s ON s.account = a.id AND s.service = ? WHERE a.id = ?")
_STATUS_ANY = ("SELECT a.currency, a.balance, a.frozen, s.service, s.state, s.since, s.reason, s.terms_version "
               "FROM accounts AS a LEFT JOIN services AS s ON s.account = a.id WHERE a.id = ? ORDER BY s.service")
_ENTRY_COLUMNS = ("seq, account, at, kind, service, period, amount, frozen_change, balance_after, frozen_after, "
                  "reason, ref")
_PACK_COLUMNS = ("id, account, service, category, units, unit, price, currency, bought_at, expires_at, time_zone, "
                 "rules_name, rules_fingerprint, reference")
_SERVICE_COLUMNS = ("service, activated_at, terms_version, terms_accepted_at, state, since, reason, frozen, "
                    "frozen_period, pending_freeze, pending_period, arrears_action, resume_when")


class Ledger:
    """An open ledger file. `create` makes a new ledger when the file does not exist (or is an empty
    SQLite file); `readonly` opens it for reading only (a missing or out-of-date ledger is then an
    error rather than created or migrated). Use as a context manager, or call `close()`."""

    def __init__(self, path=None, *, create: bool = False, readonly: bool = False,
                 timeout: float = BUSY_TIMEOUT_S):
        self.path = default_path(path)
        self.readonly, self.timeout = readonly, timeout
        shown = str(self.path)
        if self.path.is_dir():
            raise NotALedger(f"{shown}: is a folder, not a ledger file")
        if not self.path.exists() and (readonly or not create):
            raise LedgerError(f"{shown}: no ledger here; create one with `ratecard account create` "
                              f"(the ledger is --db PATH, else ${DB_ENV}, else ./{DEFAULT_DB})")
        try:
            if readonly:
                db = sqlite3.connect(f"file:{quote(str(self.path.resolve()))}?mode=ro", uri=True,
                                     isolation_level=None, timeout=timeout, check_same_thread=False)
            else:
                db = sqlite3.connect(str(self.path), isolation_level=None, timeout=timeout,
                                     check_same_thread=False)
        except sqlite3.Error as exc:
            raise LedgerError(f"{shown}: cannot open the ledger: {exc}") from None
        self._db = db
        try:
            self._open(create and not readonly)
        except sqlite3.Error as exc:
            db.close()
            raise LedgerError(f"{shown}: {exc}") from None
        except BaseException:
            db.close()
            raise

    # -- opening and migrating -----------------------------------------------------------------

    def _open(self, create: bool) -> None:
        db, shown = self._db, str(self.path)
        try:
            # One read transaction: a concurrent process may be creating the ledger meanwhile, and the
            # id, the tables and the version must come from the same snapshot.
            db.execute("BEGIN")
            try:
                app_id = db.execute("PRAGMA application_id").fetchone()[0]
                tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                version = self.version
            finally:
                db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorname", "") != "SQLITE_NOTADB":
                raise LedgerError(f"{shown}: cannot read the ledger: {exc}") from None
            raise NotALedger(f"{shown}: not a ratecard ledger ({exc}); nothing was changed") from None
        if "ratecard_schema" not in tables:
            if tables or app_id not in (0, APPLICATION_ID):
                raise NotALedger(f"{shown}: an SQLite database, but not a ratecard ledger (it has no "
                                 "ratecard_schema table); nothing was changed")
            if not create:
                raise LedgerError(f"{shown}: an empty database, not a ledger yet; create an account to start one")
        elif app_id != APPLICATION_ID:
            raise NotALedger(f"{shown}: not a ratecard ledger (SQLite application id {app_id:#x}); "
                             "nothing was changed")
        if version > LATEST:
            raise NotALedger(f"{shown}: written by a newer ratecard (ledger schema version {version}; this "
                             f"release reads up to {LATEST}); upgrade ratecard. Nothing was changed")
        db.execute("PRAGMA foreign_keys = ON")
        if self.readonly:
            if version < LATEST:
                raise LedgerError(f"{shown}: ledger schema version {version} is older than this release's "
                                  f"{LATEST}; run `ratecard ledger migrate --db {shown}` first")
            return
        self._use_wal()
        self.migrate()

    def _use_wal(self) -> None:
        """Write-ahead logging: readers (status checks) never wait for a settle run, nor it for them.
        Switching needs the file to itself, which a process creating the same new ledger at the same
        moment may hold; SQLite does not wait for that by itself, so wait here."""
        db = self._db
        deadline = time.monotonic() + self.timeout
        while db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            try:
                db.execute("PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError as exc:
                if getattr(exc, "sqlite_errorname", "") not in ("SQLITE_BUSY", "SQLITE_LOCKED") \
                        or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)

    @property
    def version(self) -> int:
        try:
            row = self._db.execute("SELECT max(version) FROM ratecard_schema").fetchone()
        except sqlite3.OperationalError:
            return 0
        return row[0] or 0

    def migrate(self) -> list[int]:
        """Apply the migrations this ledger lacks, each in its own transaction. Returns their versions."""
        done = []
        for m in MIGRATIONS:
            with self._write() as db:
                if self.version >= m.version:
                    continue  # already applied (possibly by a concurrent process)
                if m.version == 1:
                    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                for statement in m.statements:
                    db.execute(statement)
                db.execute("INSERT INTO ratecard_schema (version, description) VALUES (?, ?)",
                           (m.version, m.description))
                done.append(m.version)
        return done

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def _write(self):
        if self.readonly:
            raise LedgerError(f"{self.path}: opened read-only")
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise LedgerError(f"{self.path}: cannot start a change: {exc}") from None
        try:
            yield db
            db.execute("COMMIT")
        except BaseException as exc:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            if isinstance(exc, sqlite3.Error):
                raise LedgerError(f"{self.path}: {exc}; nothing was changed") from None
            raise

    def _read(self, sql: str, params=()) -> list:
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise LedgerError(f"{self.path}: {exc}") from None

    # -- reading -----------------------------------------------------------------------------------

    def status(self, account: str, service: str | None = None) -> Status:
        """Whether `account` may use `service` now (one indexed query). Without a service: the
        account's only service. Raises UnknownAccount for an account the ledger does not have."""
        if service is None:
            rows = self._read(_STATUS_ANY, (account,))
            if len(rows) > 1:
                raise LedgerError(f"account {account!r} has several services ({', '.join(r[3] for r in rows)}); "
                                  "name the one to check")
        else:
            rows = self._read(_STATUS_ONE, (service, account))
        if not rows:
            raise UnknownAccount(account)
        currency, balance, frozen, svc, state, since, reason, terms = rows[0]
        if svc is None:
            what = f"service {service}" if service else "any service"
            return Status(account, service, NOT_ACTIVATED, f"account {account} has not activated {what}", None,
                          currency, Decimal(balance), Decimal(frozen))
        return Status(account, svc, state, reason, moment(since), currency, Decimal(balance), Decimal(frozen))

    def account(self, account: str) -> Account:
        rows = self._read("SELECT id, name, currency, created_at, balance, frozen FROM accounts WHERE id = ?",
                          (account,))
        if not rows:
            raise UnknownAccount(account)
        return self._account(rows[0])

    def accounts(self) -> list[Account]:
        return [self._account(row) for row in
                self._read("SELECT id, name, currency, created_at, balance, frozen FROM accounts ORDER BY id")]

    def _account(self, row) -> Account:
        services = tuple(
            ServiceInfo(r[0], moment(r[1]), r[2], moment(r[3]), r[4], moment(r[5]), r[6], Decimal(r[7]), _dec(r[9]))
            for r in self._read(f"SELECT {_SERVICE_COLUMNS} FROM services WHERE account = ? ORDER BY service",
                                (row[0],)))
        return Account(row[0], row[1], row[2], moment(row[3]), Decimal(row[4]), Decimal(row[5]), services)

    def entries(self, account: str | None = None) -> list[Entry]:
        if account is None:
            rows = self._read(f"SELECT {_ENTRY_COLUMNS} FROM entries ORDER BY seq")
        else:
            rows = self._read(f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE account = ? ORDER BY seq", (account,))
        return [_entry(r) for r in rows]

    def bills(self, account: str | None = None, period: str | None = None) -> list[BillRecord]:
        sql = ("SELECT b.account, b.service, b.period, b.invoice_number, b.currency, b.total, b.list_cost, "
               "b.rules_name, b.rules_fingerprint, b.issued_at, d.status, d.due_at FROM bills AS b "
               "JOIN debits AS d USING (account, service, period) WHERE (?1 IS NULL OR b.account = ?1) "
               "AND (?2 IS NULL OR b.period = ?2) ORDER BY b.account, b.period, b.service")
        return [BillRecord(r[0], r[1], r[2], r[3], r[4], Decimal(r[5]), Decimal(r[6]), r[7], r[8], moment(r[9]),
                           r[10], moment(r[11])) for r in self._read(sql, (account, period))]

    def invoice(self, account: str, service: str, period: str) -> tuple[str, dict] | None:
        """The recorded invoice text and bill (as its JSON dict) of one account, service and period."""
        rows = self._read("SELECT invoice_text, bill_json FROM bills WHERE account = ? AND service = ? AND period = ?",
                          (account, service, period))
        return (rows[0][0], json.loads(rows[0][1])) if rows else None

    def statement(self, account: str, *, period: str | None = None, time_zone: str = "UTC") -> Statement:
        """The account's entries (all, or those dated within `period` in `time_zone`) with the balance
        and deposits before and after them. A period's statement also says what the period cost (the
        packs bought in it and its bills, whenever they are issued) and which packs served it."""
        from zoneinfo import ZoneInfo

        from . import settlement as S
        from .periods import period_bounds

        info = self.account(account)
        ZoneInfo(time_zone)
        charges: list[Charge] = []
        if period is None:
            entries = self.entries(account)
            opening = (Decimal(0), Decimal(0))
            bills = self.bills(account)
            packs = self.packs(account)
        else:
            bounds = period_bounds(period, time_zone)
            start, end = (stamp(t) for t in bounds)
            before = self._read("SELECT balance_after, frozen_after FROM entries WHERE account = ? AND at < ? "
                                "ORDER BY seq DESC LIMIT 1", (account, start))
            opening = (Decimal(before[0][0]), Decimal(before[0][1])) if before else (Decimal(0), Decimal(0))
            entries = [_entry(r) for r in self._read(
                f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE account = ? AND at >= ? AND at < ? ORDER BY seq",
                (account, start, end))]
            invoices = {e.ref for e in entries if e.kind == S.BILL_ISSUED}
            bills = [b for b in self.bills(account) if b.invoice_number in invoices]
            bought = {p.id: p for p in self.packs(account, at=bounds[1])}
            for e in entries:
                if e.kind == S.PACK_PURCHASE:
                    p = bought[e.ref]
                    charges.append(Charge(S.PACK_PURCHASE, e.service, p.id, f"pack {p.id}: {p.category}, "
                                          f"{p.units:,} {p.unit}(s)", -e.amount))
            charges += [Charge("invoice", b.service, b.invoice_number, f"invoice {b.invoice_number} (issued "
                               f"{b.issued_at.astimezone(ZoneInfo(time_zone)).date()}, debit {b.debit_status})",
                               b.total)
                        for b in self.bills(account, period)]
            # The packs that served the period (or were bought in it), with their units up to it.
            packs = [p for p in self.packs(account, period=period, as_of=bounds[1])
                     if p.bought_at < bounds[1] and (p.expires_at > bounds[0] or any(h.period == period
                                                                                     for h in p.history))]
        closing = (entries[-1].balance_after, entries[-1].frozen_after) if entries else opening
        return Statement(info, period, time_zone, opening[0], opening[1], tuple(entries), closing[0], closing[1],
                         tuple(bills), tuple(charges), tuple(packs))

    def packs(self, account: str, *, service: str | None = None, at: datetime | None = None,
              period: str | None = None, as_of: datetime | None = None) -> list[Pack]:
        """The account's resource packs, soonest-expiring first. With `at`: as they stood then (packs
        bought by then, units used and lost by then, `expired` once `at` is past the expiry). With
        `period`: the units used and lost for that period and those before it."""
        self.account(account)  # UnknownAccount for an account the ledger does not have
        when = None if at is None else stamp(at)
        rows = self._read(f"SELECT {_PACK_COLUMNS} FROM packs WHERE account = ? AND (?2 IS NULL OR service = ?2) "
                          "AND (?3 IS NULL OR bought_at <= ?3) ORDER BY expires_at, id", (account, service, when))
        history: dict[str, list[PackUnits]] = {}
        for pack, kind, period_, units, at_ in self._read(
                "SELECT u.pack, u.kind, u.period, u.units, e.at FROM pack_units AS u JOIN entries AS e "
                "ON e.seq = u.entry WHERE e.account = ?1 AND (?2 IS NULL OR e.at <= ?2) "
                "AND (?3 IS NULL OR u.period <= ?3) ORDER BY u.entry", (account, when, period)):
            history.setdefault(pack, []).append(PackUnits(kind, period_, units, moment(at_)))
        return [_pack(r, history.get(r[0], ()), at or as_of) for r in rows]

    def verify(self) -> list[str]:
        """Re-add every entry and compare with the balances, deposits and service states kept. Returns
        the discrepancies (none in a sound ledger)."""
        from . import settlement as S

        problems = []
        entries: dict[str, list[Entry]] = {}
        for e in self.entries():
            entries.setdefault(e.account, []).append(e)
        for acct in self.accounts():
            balance = frozen = Decimal(0)
            per_service: dict[str, Decimal] = {}
            state: dict[str, str] = {}
            for e in entries.get(acct.id, ()):
                balance, frozen = S.add(balance, e.amount), S.add(frozen, e.frozen_change)
                if e.frozen_change:
                    per_service[e.service] = S.add(per_service.get(e.service, Decimal(0)), e.frozen_change)
                if e.kind in (S.SUSPENDED, S.RESUMED):
                    state[e.service] = SUSPENDED if e.kind == S.SUSPENDED else ACTIVE
                if (e.balance_after, e.frozen_after) != (balance, frozen):
                    problems.append(f"{acct.id}: entry {e.seq} says balance {e.balance_after} and deposits "
                                    f"{e.frozen_after}, but the entries up to it add up to {balance} and {frozen}")
            if balance != acct.balance:
                problems.append(f"{acct.id}: balance {acct.balance} but its entries add up to {balance}")
            if frozen != acct.frozen:
                problems.append(f"{acct.id}: deposits {acct.frozen} but its entries add up to {frozen}")
            for svc in acct.services:
                expected = per_service.get(svc.service, Decimal(0))
                if svc.frozen != expected:
                    problems.append(f"{acct.id}/{svc.service}: deposit {svc.frozen} but its entries add up to "
                                    f"{expected}")
                if svc.state != state.get(svc.service, ACTIVE):
                    problems.append(f"{acct.id}/{svc.service}: state {svc.state} but its entries say "
                                    f"{state.get(svc.service, ACTIVE)}")
        counts = self._read(
            "SELECT d.account, d.service, d.period, d.status, "
            "(SELECT count(*) FROM entries AS e WHERE e.account = d.account AND e.service = d.service "
            " AND e.period = d.period AND e.kind = 'debit'), "
            "(SELECT count(*) FROM entries AS e WHERE e.account = d.account AND e.service = d.service "
            " AND e.period = d.period AND e.kind = 'bill-issued') FROM debits AS d")
        for account, service, period, status, debits, issued in counts:
            if debits != (1 if status == "applied" else 0) or issued != 1:
                problems.append(f"{account}/{service}/{period}: debit {status} with {debits} debit entries and "
                                f"{issued} bill entries")
        bills = self._read("SELECT count(*) FROM bills")[0][0]
        if bills != len(counts):
            problems.append(f"{bills} bills but {len(counts)} debits")
        problems += self._verify_packs()
        return problems

    def _verify_packs(self) -> list[str]:
        """Every pack was paid for by its own purchase entry; every unit used or lost has its own entry;
        no pack gave more units than it held."""
        problems = []
        for pack, account, price, entry, kind, amount, ref, owner in self._read(
                "SELECT p.id, p.account, p.price, p.entry, e.kind, e.amount, e.ref, e.account FROM packs AS p "
                "LEFT JOIN entries AS e ON e.seq = p.entry ORDER BY p.id"):
            if (kind, ref, owner) != ("pack-purchase", pack, account) or Decimal(amount) != -Decimal(price):
                problems.append(f"{account}: pack {pack} costs {price} but its entry {entry} is {kind} of {amount} "
                                f"for {ref}")
        for pack, kind, period, entry, entry_kind, ref in self._read(
                "SELECT u.pack, u.kind, u.period, u.entry, e.kind, e.ref FROM pack_units AS u "
                "LEFT JOIN entries AS e ON e.seq = u.entry ORDER BY u.entry"):
            if (entry_kind, ref) != (kind, pack):
                problems.append(f"pack {pack}: {kind} for {period} has entry {entry} of kind {entry_kind} for {ref}")
        for pack, units, taken in self._read(
                "SELECT p.id, p.units, sum(u.units) FROM packs AS p JOIN pack_units AS u ON u.pack = p.id "
                "GROUP BY p.id HAVING sum(u.units) > p.units"):
            problems.append(f"pack {pack} holds {units} units but {taken} were used or lost")
        kinds = dict(self._read("SELECT kind, count(*) FROM entries WHERE kind IN ('pack-purchase', 'pack-use', "
                                "'pack-expired') GROUP BY kind"))
        rows = {"pack-purchase": self._read("SELECT count(*) FROM packs")[0][0]}
        rows |= dict(self._read("SELECT kind, count(*) FROM pack_units GROUP BY kind"))
        for kind in ("pack-purchase", "pack-use", "pack-expired"):
            if kinds.get(kind, 0) != rows.get(kind, 0):
                problems.append(f"{kinds.get(kind, 0)} {kind} entries but {rows.get(kind, 0)} recorded")
        return problems

    # -- writing: accounts, services, top-ups ------------------------------------------------------

    def create_account(self, account: str, name: str, currency: str, at: datetime) -> Applied:
        from . import settlement as S

        if not _ACCOUNT_ID.match(account or ""):
            raise LedgerError(f"bad account id {account!r}: expected 1 to 200 characters without spaces or "
                              "control characters")
        if not is_currency(currency):
            raise LedgerError(f"unknown currency {currency!r}: expected an ISO 4217 code such as EUR or USD")
        name = name or account
        when = stamp(at)
        with self._write() as db:
            if db.execute("SELECT 1 FROM accounts WHERE id = ?", (account,)).fetchone():
                raise LedgerError(f"account {account!r} already exists; nothing was changed")
            db.execute("INSERT INTO accounts (id, name, currency, created_at, balance, frozen, last_at) "
                       "VALUES (?, ?, ?, ?, '0', '0', ?)", (account, name, currency, when, when))
            position = self._position(db, account)
            return self._record(db, account, position, when, [S.Change(
                S.ACCOUNT_OPENED, f"account {account} opened for {name}, in {currency}")], position)

    def activate(self, account: str, service: str, terms_version: str, at: datetime) -> Applied:
        """Activate a service for an account that accepts its terms of service (version `terms_version`).
        Accepting a newer version later records it; accepting the same version again changes nothing."""
        from . import settlement as S

        if not service or not terms_version:
            raise LedgerError("a service and the version of its terms of service accepted are both needed")
        when = stamp(at)
        with self._write() as db:
            position = self._position(db, account, when)
            row = db.execute("SELECT terms_version FROM services WHERE account = ? AND service = ?",
                             (account, service)).fetchone()
            if row is None:
                reason = f"service {service} activated; terms of service version {terms_version} accepted"
                db.execute("INSERT INTO services (account, service, activated_at, terms_version, terms_accepted_at, "
                           "state, since, reason, frozen) VALUES (?, ?, ?, ?, ?, 'active', ?, ?, '0')",
                           (account, service, when, terms_version, when, when, reason))
                change = S.Change(S.SERVICE_ACTIVATED, reason, service, ref=terms_version)
            elif row[0] == terms_version:
                return self._unchanged(account, position, f"{service} is already active with terms of service "
                                       f"version {terms_version}")
            else:
                db.execute("UPDATE services SET terms_version = ?, terms_accepted_at = ? WHERE account = ? "
                           "AND service = ?", (terms_version, when, account, service))
                change = S.Change(S.TERMS_ACCEPTED, f"terms of service of {service} version {terms_version} "
                                  f"accepted (was {row[0]})", service, ref=terms_version)
            position = self._position(db, account)
            return self._record(db, account, position, when, [change], position)

    def top_up(self, account: str, amount, at: datetime, reference: str | None = None) -> Applied:
        """Credit `amount`; retry pending deposit freezes; resume services back in good standing. With a
        `reference` (e.g. the payment id), recording the same top-up again changes nothing."""
        from . import settlement as S

        when = stamp(at)
        with self._write() as db:
            position = self._position(db, account)
            value = parse_amount(amount, position.currency)
            if reference is not None:
                seen = db.execute(f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE account = ? AND kind = 'top-up' "
                                  "AND ref = ?", (account, reference)).fetchone()
                if seen is not None:
                    old = _entry(seen)
                    if old.amount != value:
                        raise LedgerError(f"top-up reference {reference!r} of {account} was recorded with "
                                          f"{old.amount}, not {value}; nothing was changed")
                    return self._unchanged(account, position, f"top-up {reference} was already recorded")
            self._check_time(db, account, when)
            outcome = S.apply_top_up(position, value, reference)
            return self._record(db, account, position, when, outcome.changes, outcome.position)

    # -- writing: resource packs -------------------------------------------------------------------

    def buy_pack(self, rules, account: str, category: str, size, at: datetime,
                 reference: str | None = None) -> PackBought:
        """Buy a resource pack of `category` holding `size` units, as sold by the price book of `rules`
        in force at `at`; its service is the rule set's. The price is taken from the balance at once:
        a pack is prepaid, so the available balance (less deposits) must cover it. The pack serves
        every period from the one it is bought in to the one it expires in, the book's
        `valid_for_months` later. With a `reference` (the caller's id of the purchase), recording the
        same purchase again changes nothing."""
        from . import settlement as S
        from .periods import period_of
        from .rating import tariff

        period = period_of(at, rules.latest[2].time_zone)
        t = tariff(rules, period)
        book, policy, service = t.book, t.policy, rules.name
        offer = _pack_offer(book, service, category, size)
        price = Decimal(str(offer.price)) if isinstance(offer.price, float) else Decimal(offer.price)
        expires = S.pack_expiry(at, book.pack_validity_months, policy.time_zone)
        when = stamp(at)
        with self._write() as db:
            position = self._position(db, account)
            if reference is not None:
                row = db.execute(f"SELECT {_PACK_COLUMNS} FROM packs WHERE account = ? AND reference = ?",
                                 (account, reference)).fetchone()
                if row is not None:
                    old = _pack(row, (), None)
                    if (old.service, old.category, old.units) != (service, category, offer.units):
                        raise LedgerError(f"pack purchase {reference!r} of {account} was recorded as pack {old.id}, "
                                          f"{old.units:,} {old.unit}(s) of {old.service} {old.category}, not "
                                          f"{offer.units:,} of {service} {category}; nothing was changed")
                    recorded = next(p for p in self.packs(account) if p.id == old.id)
                    return PackBought(recorded, self._unchanged(account, position, f"pack purchase {reference} was "
                                                                f"already recorded as pack {old.id}"))
            self._check_time(db, account, when)
            if db.execute("SELECT 1 FROM services WHERE account = ? AND service = ?", (account, service)).fetchone() \
                    is None:
                raise LedgerError(f"account {account} has not activated {service}; a pack serves a service the "
                                  "account uses: activate it first with `ratecard account activate`; nothing was "
                                  "changed")
            if position.currency != book.currency:
                raise LedgerError(f"the account is in {position.currency} but {service} sells packs in "
                                  f"{book.currency}; nothing was changed")
            if position.available < price:
                raise LedgerError(f"{account} cannot pay for the pack: it costs {format_money(price, book.currency)} "
                                  f"and only {format_money(position.available, position.currency)} is available "
                                  "(the balance less deposits held); a pack is paid when it is bought, so top up "
                                  "first; nothing was changed")
            number = db.execute("SELECT count(*) FROM packs").fetchone()[0] + 1
            pack_id = f"PK-{number:06d}"
            local_expiry = expires.isoformat(timespec="seconds")
            what = f"{category} pack {pack_id} of {offer.units:,} {book.unit}(s)"
            note = f"; valid until {local_expiry}" + (f" (reference {reference})" if reference else "")
            outcome = S.apply_pack_purchase(position, service, period, price, pack_id, what, note)
            applied = self._record(db, account, position, when, outcome.changes, outcome.position)
            row = (pack_id, account, service, category, offer.units, book.unit, _text(price), book.currency, when,
                   stamp(expires), policy.time_zone, rules.name, t.fingerprint, reference)
            db.execute(f"INSERT INTO packs ({_PACK_COLUMNS}, entry) VALUES ({', '.join('?' * (len(row) + 1))})",
                       (*row, applied.entries[0].seq))
        return PackBought(_pack(row, (), at), applied)

    # -- writing: settlement -----------------------------------------------------------------------

    def collect(self, at: datetime) -> list[Collected]:
        """Apply every scheduled debit whose deduction window has opened by `at`, each in its own
        transaction, dated `at`."""
        from . import settlement as S

        when = stamp(at)
        due = self._read("SELECT account, service, period FROM debits WHERE status = 'scheduled' AND due_at <= ? "
                         "ORDER BY due_at, account, service, period", (when,))
        done = []
        for account, service, period in due:
            with self._write() as db:
                row = db.execute(
                    "SELECT d.amount, d.closes_at, d.arrears_action, d.resume_when, d.freeze, d.freeze_basis, "
                    "b.invoice_number, b.currency FROM debits AS d JOIN bills AS b USING (account, service, period) "
                    "WHERE d.account = ? AND d.service = ? AND d.period = ? AND d.status = 'scheduled'",
                    (account, service, period)).fetchone()
                if row is None:
                    continue  # a concurrent run collected it
                amount, closes, action, resume, freeze, basis, invoice, currency = row
                try:
                    position = self._position(db, account, when)
                except LedgerError as exc:
                    done.append(Collected(account, service, period, Decimal(amount), currency, None, str(exc)))
                    continue
                terms = S.Terms(action, resume, _dec(freeze), basis)
                applied = self._debit(db, account, service, period, Decimal(amount), terms, invoice, position,
                                      when, closes)
                done.append(Collected(account, service, period, Decimal(amount), currency, applied))
            _step("collected")
        return done

    def settle(self, rules, usage: Iterable, period: str, at: datetime, *, hold: Iterable[str] = ()) -> SettleReport:
        """Settle `period` with `rules`: bill every account that activated the rule set's service
        before the period ended (with its usage, or none), debit the bills (or schedule the debits
        for the deduction window), hold deposits and suspend as the policy says. `usage` holds
        `AccountUsage` of that period (see `ratecard.usage.UsageReader.accounts`). Accounts already
        settled for the period are left as they are. Scheduled debits now due are collected first.
        Accounts in `hold` (e.g. with rejected usage rows) are not settled this time: a settled
        bill is immutable, so it must wait until all of the account's usage can be billed."""
        from . import settlement as S
        from .billrun import render_bill
        from .invoice import invoice_meta
        from .rating import rate, tariff

        t = tariff(rules, period)
        policy, book = t.policy, t.book
        when_ = S.check_settleable(policy, period, at)
        service, when, end = rules.name, stamp(at), stamp(when_.end)
        by_account = {}
        for u in usage:
            if u.period != period:
                raise ValueError(f"usage of {u.account} is for {u.period}, not {period}")
            by_account[u.account] = u

        collected = tuple(self.collect(at))

        activated = dict(self._read("SELECT account, activated_at FROM services WHERE service = ?", (service,)))
        held = set(hold)
        billable = sorted(a for a, since in activated.items() if since < end and a not in held)
        unbilled = [Unbilled(account, by_account[account].calls if account in by_account else 0,
                             "has rejected usage rows: settled once they are fixed")
                    for account in sorted(held) if account]
        for account in sorted(set(by_account) - set(billable) - held):
            if account in activated:
                why = (f"activated {service} only at {moment(activated[account]).isoformat()}, after the period "
                       "ended")
            elif self._read("SELECT 1 FROM accounts WHERE id = ?", (account,)):
                why = f"has not activated {service}"
            else:
                why = "is not in the ledger"
            unbilled.append(Unbilled(account, by_account[account].calls, why))

        recorded = {r[0]: r[1] for r in self._read(
            "SELECT account, bill_json FROM bills WHERE service = ? AND period = ?", (service, period))}
        currencies = dict(self._read("SELECT id, currency FROM accounts"))
        results = []
        zone = policy.time_zone

        def priced(bill, packs) -> _Priced:
            list_cost = S.list_price_cost(book, bill)
            freeze = S.freeze_amount(policy, list_cost)
            basis = "" if freeze is None else S.freeze_basis(policy, list_cost, bill.currency)
            return _Priced(bill, _bill_json(bill), render_bill(bill, rules, "text"), invoice_meta(bill, policy).number,
                           list_cost, S.Terms.of(policy, freeze, basis), packs)

        for account in billable:
            items = by_account[account].items if account in by_account else ()
            suspended = self._suspended_at(account, service, end)
            # An account already settled is re-rated with its packs as they were before its bill, to
            # compare like with like.
            packs = self._pack_balances(account, service, when_, zone, before_bill=account in recorded)
            bill = rate(rules, items, period, account=account, packs=packs, suspended=suspended)
            bill_json = _bill_json(bill)
            number = invoice_meta(bill, policy).number
            if account in recorded:
                note = "" if recorded[account] == bill_json else (
                    "the usage now rates differently from the recorded bill; the recorded bill stands")
                results.append(Settled(account, "already-settled", number, bill.currency, bill.total, problem=note))
                continue
            if currencies[account] != bill.currency:
                results.append(Settled(account, "failed", number, bill.currency, bill.total, problem=(
                    f"the account is in {currencies[account]} but {rules.name} bills in {bill.currency}")))
                continue

            def again(fresh, account=account, items=items, suspended=suspended) -> _Priced:
                return priced(rate(rules, items, period, account=account, packs=fresh, suspended=suspended), fresh)

            first = priced(bill, packs)
            _step("rated")
            results.append(self._settle_one(first, service, when_, when, again))
            _step("committed")
        return SettleReport(period, service, t.fingerprint, at, when_, collected, tuple(results), tuple(unbilled))

    def _pack_balances(self, account: str, service: str, when_, zone: str, *, before_bill: bool = False) -> tuple:
        """The account's packs of `service` that serve the period of `when_`, with their units left,
        as `rating.rate` takes them. `before_bill`: as they were before the period's bill was recorded."""
        from . import settlement as S
        from .rating import PackBalance

        cut = (" AND u.entry < (SELECT e.seq FROM entries AS e WHERE e.account = p.account AND e.service = "
               "p.service AND e.period = :period AND e.kind = 'bill-issued')") if before_bill else ""
        rows = self._read(
            "SELECT p.id, p.category, p.expires_at, p.units - coalesce((SELECT sum(u.units) FROM pack_units AS u "
            f"WHERE u.pack = p.id{cut}), 0) FROM packs AS p WHERE p.account = :account AND p.service = :service "
            "AND p.bought_at < :end AND p.expires_at > :start ORDER BY p.expires_at, p.id",
            {"account": account, "service": service, "period": when_.period, "start": stamp(when_.start),
             "end": stamp(when_.end)})
        return tuple(PackBalance(pack, category, left, S.rating_expiry(moment(expires), zone))
                     for pack, category, expires, left in rows if left > 0)

    def _settle_one(self, priced: _Priced, service, when_, when, again) -> Settled:
        """Record one account's bill, the pack units it uses (and those its packs lose by expiring),
        and its debit, in one transaction. `again(packs)` prices the bill anew, should the account's
        packs have changed since it was priced (a purchase committed meanwhile)."""
        from . import settlement as S

        bill = priced.bill
        account, period = bill.account, bill.period
        opens, closes = stamp(when_.deduction_opens), stamp(when_.deduction_closes)
        with self._write() as db:
            old = db.execute("SELECT bill_json FROM bills WHERE account = ? AND service = ? AND period = ?",
                             (account, service, period)).fetchone()
            if old is not None:  # a concurrent run settled it after we looked
                note = "" if old[0] == priced.bill_json else "the recorded bill differs; it stands"
                return Settled(account, "already-settled", priced.number, bill.currency, bill.total, problem=note)
            try:
                position = self._position(db, account, when)
            except LedgerError as exc:
                return Settled(account, "failed", priced.number, bill.currency, bill.total, problem=str(exc))
            fresh = self._pack_balances(account, service, when_, when_.time_zone)
            if fresh != priced.packs:
                priced = again(fresh)
                bill = priced.bill
            number, currency, total, terms = priced.number, bill.currency, bill.total, priced.terms
            db.execute("INSERT INTO bills (account, service, period, invoice_number, currency, total, list_cost, "
                       "rules_name, rules_fingerprint, bill_json, invoice_text, issued_at) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (account, service, period, number, currency, _text(total), _text(priced.list_cost),
                        bill.rules_name, bill.rules_fingerprint, priced.bill_json, priced.invoice_text, when))
            money = format_money(total, currency)
            issued = self._record(db, account, position, when, [S.Change(
                S.BILL_ISSUED, f"invoice {number} for {period}: {money} ({bill.rules_name}, "
                f"{bill.rules_fingerprint[:19]})", service, period, ref=number)], position)
            issued = _merge(issued, self._take_packs(db, bill, service, when_, position, when))
            db.execute("INSERT INTO debits (account, service, period, amount, due_at, closes_at, arrears_action, "
                       "resume_when, freeze, freeze_basis, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'scheduled')",
                       (account, service, period, _text(total), opens, closes, terms.arrears_action,
                        terms.resume_when, None if terms.freeze is None else _text(terms.freeze), terms.freeze_basis))
            _step("billed")
            if when < opens:
                window = f"{when_.deduction_opens.date().isoformat()} to {when_.deduction_last_day.isoformat()}"
                scheduled = self._record(db, account, position, when, [S.Change(
                    S.DEBIT_SCHEDULED, f"invoice {number} for {period}: {money} to be debited in the deduction "
                    f"window, {window} ({when_.time_zone})", service, period, ref=number)], position)
                applied = _merge(issued, scheduled)
                debit = "scheduled"
            else:
                applied = _merge(issued, self._debit(db, account, service, period, total, terms, number, position,
                                                     when, closes))
                debit = "applied"
            _step("debited")
        return Settled(account, "settled", number, currency, total, debit, when_.deduction_opens, applied)

    def _take_packs(self, db, bill, service, when_, position, when) -> Applied:
        """Record the pack units a bill uses, then the units lost by the service's packs that expire by
        the end of its period (they can serve no later period). Part of the bill's transaction: the
        primary key of `pack_units` (pack, kind, period) makes taking them twice impossible."""
        from zoneinfo import ZoneInfo

        from . import settlement as S

        account, period = bill.account, bill.period
        changes, rows, taken = [], [], {}
        for line in bill.lines:
            for use in line.packs_used:
                changes.append(S.pack_use(service, period, use.pack_id, line.category, use.units_used, use.units_left,
                                          bill.unit))
                rows.append((use.pack_id, S.PACK_USE, use.units_used))
                taken[use.pack_id] = taken.get(use.pack_id, 0) + use.units_used
        for pack, category, unit, expires, zone, left in db.execute(
                "SELECT p.id, p.category, p.unit, p.expires_at, p.time_zone, p.units - coalesce((SELECT sum(u.units) "
                "FROM pack_units AS u WHERE u.pack = p.id), 0) FROM packs AS p WHERE p.account = ? AND p.service = ? "
                "AND p.expires_at <= ? AND NOT EXISTS (SELECT 1 FROM pack_units AS u WHERE u.pack = p.id AND "
                "u.kind = 'pack-expired') ORDER BY p.expires_at, p.id",
                (account, service, stamp(when_.end))).fetchall():
            left -= taken.get(pack, 0)
            if left > 0:
                expired = moment(expires).astimezone(ZoneInfo(zone)).isoformat(timespec="seconds")
                changes.append(S.pack_expired(service, period, pack, category, left, unit, expired))
                rows.append((pack, S.PACK_EXPIRED, left))
        applied = self._record(db, account, position, when, changes, position)
        for (pack, kind, units), entry in zip(rows, applied.entries):
            db.execute("INSERT INTO pack_units (pack, kind, period, units, entry) VALUES (?, ?, ?, ?, ?)",
                       (pack, kind, period, units, entry.seq))
        return applied

    def _debit(self, db, account, service, period, amount, terms, invoice, position, when, closes) -> Applied:
        from . import settlement as S

        note = "" if when < closes else f" (after the deduction window, which closed {moment(closes).isoformat()})"
        outcome = S.apply_debit(position, service, period, amount, terms, invoice, note=note)
        applied = self._record(db, account, position, when, outcome.changes, outcome.position)
        seq = next(e.seq for e in applied.entries if e.kind == S.DEBIT)
        db.execute("UPDATE debits SET status = 'applied', entry = ? WHERE account = ? AND service = ? AND period = ?",
                   (seq, account, service, period))
        return applied

    def _suspended_at(self, account: str, service: str, moment_text: str) -> bool:
        """Whether the service was suspended at a moment (the end of a period), from the entries."""
        from . import settlement as S

        row = self._read("SELECT kind FROM entries WHERE account = ? AND service = ? AND kind IN ('suspended', "
                         "'resumed') AND at < ? ORDER BY seq DESC LIMIT 1", (account, service, moment_text))
        return bool(row) and row[0][0] == S.SUSPENDED

    # -- writing: the shared mechanics -------------------------------------------------------------

    def _check_time(self, db, account: str, when: str) -> None:
        last = db.execute("SELECT last_at FROM accounts WHERE id = ?", (account,)).fetchone()
        if last is None:
            raise UnknownAccount(account)
        if when < last[0]:
            raise LedgerError(f"account {account} already has an entry at {moment(last[0]).isoformat()}, after "
                              f"{moment(when).isoformat()}: its entries are recorded in time order; nothing was "
                              "changed")

    def _position(self, db, account: str, when: str | None = None) -> S.Position:
        from . import settlement as S

        row = db.execute("SELECT currency, balance, frozen, last_at FROM accounts WHERE id = ?", (account,)).fetchone()
        if row is None:
            raise UnknownAccount(account)
        if when is not None:
            self._check_time(db, account, when)
        services = {}
        for r in db.execute(f"SELECT {_SERVICE_COLUMNS} FROM services WHERE account = ?", (account,)):
            services[r[0]] = S.ServiceState(r[0], r[4] == SUSPENDED, Decimal(r[7]), r[8], _dec(r[9]), r[10], r[11],
                                            r[12])
        return S.Position(row[0], Decimal(row[1]), Decimal(row[2]), services)

    def _record(self, db, account: str, before: S.Position, when: str, changes, after: S.Position) -> Applied:
        """Append `changes` as entries and bring the account and its services in step with them."""
        from . import settlement as S

        balance, frozen = before.balance, before.frozen
        entries = []
        for c in changes:
            balance, frozen = S.add(balance, c.amount), S.add(frozen, c.frozen)
            cur = db.execute(
                "INSERT INTO entries (account, at, kind, service, period, amount, frozen_change, balance_after, "
                "frozen_after, reason, ref) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (account, when, c.kind, c.service, c.period, _text(c.amount), _text(c.frozen), _text(balance),
                 _text(frozen), c.reason, c.ref))
            entries.append(Entry(cur.lastrowid, account, moment(when), c.kind, c.service, c.period, c.amount, c.frozen,
                                 balance, frozen, c.reason, c.ref))
        if (balance, frozen) != (after.balance, after.frozen):
            raise AssertionError(f"internal error: the entries of {account} add up to {balance}/{frozen}, "
                                 f"not {after.balance}/{after.frozen}")
        if changes:
            db.execute("UPDATE accounts SET balance = ?, frozen = ?, last_at = max(last_at, ?) WHERE id = ?",
                       (_text(balance), _text(frozen), when, account))
        standing = {c.service: c for c in changes if c.kind in (S.SUSPENDED, S.RESUMED)}
        for name, state in after.services.items():
            if state == before.services.get(name) and name not in standing:
                continue
            db.execute("UPDATE services SET state = ?, frozen = ?, frozen_period = ?, pending_freeze = ?, "
                       "pending_period = ?, arrears_action = ?, resume_when = ? WHERE account = ? AND service = ?",
                       (SUSPENDED if state.suspended else ACTIVE, _text(state.frozen), state.frozen_period,
                        None if state.pending_freeze is None else _text(state.pending_freeze), state.pending_period,
                        state.arrears_action, state.resume_when, account, name))
            if name in standing:
                db.execute("UPDATE services SET since = ?, reason = ? WHERE account = ? AND service = ?",
                           (when, standing[name].reason, account, name))
        suspended = tuple(sorted(n for n, s in after.services.items() if s.suspended))
        return Applied(account, tuple(entries), balance, frozen, suspended)

    def _unchanged(self, account: str, position: S.Position, note: str) -> Applied:
        return Applied(account, (), position.balance, position.frozen,
                       tuple(sorted(n for n, s in position.services.items() if s.suspended)), note)


_SIZE = re.compile(r"^([0-9][0-9,_]*)([kKmM]?)$")


def parse_pack_size(size) -> int:
    """A pack size: a whole number of units, e.g. 1000000, 1,000,000, 1_000_000, 1000k or 1M."""
    if isinstance(size, int) and not isinstance(size, bool):
        return size
    m = _SIZE.match(str(size).strip())
    if not m or len(m.group(1)) > 24:
        raise LedgerError(f"bad pack size {str(size)!r}: expected a whole number of units, e.g. 1000000, "
                          "1,000,000 or 1M")
    return int(m.group(1).replace(",", "").replace("_", "")) * {"": 1, "k": 1000, "m": 1_000_000}[m.group(2).lower()]


def _pack_offer(book, service: str, category: str, size):
    """The pack of `category` and `size` on sale in `book`, or a LedgerError saying what is on sale."""
    on_sale = [c.id for c in book.categories.values() if c.packs]
    where = f"the {service} price book in force from {book.effective_from.isoformat()}"
    cat = book.categories.get(category)
    if cat is None:
        raise LedgerError(f"unknown category {category!r} in {where}; packs are sold for: "
                          f"{', '.join(on_sale) or 'no category'}")
    if not cat.packs:
        raise LedgerError(f"no {category} packs are on sale in {where}; packs are sold for: "
                          f"{', '.join(on_sale) or 'no category'}")
    units = parse_pack_size(size)
    for offer in cat.packs:
        if offer.units == units:
            return offer
    sizes = ", ".join(f"{o.units:,} ({format_money(Decimal(o.price), book.currency)})" for o in cat.packs)
    raise LedgerError(f"no {category} pack of {units:,} {book.unit}(s) is on sale in {where}; the sizes on sale "
                      f"are: {sizes}")


def _pack(r, history, as_of) -> Pack:
    return Pack(r[0], r[1], r[2], r[3], r[4], r[5], Decimal(r[6]), r[7], moment(r[8]), moment(r[9]), r[10], r[11],
                r[12], r[13], tuple(history), as_of)


def _entry(r) -> Entry:
    return Entry(r[0], r[1], moment(r[2]), r[3], r[4], r[5], Decimal(r[6]), Decimal(r[7]), Decimal(r[8]),
                 Decimal(r[9]), r[10], r[11])


@dataclass(frozen=True)
class _Priced:
    """One account's bill for a period, priced and rendered, with the packs it was priced with."""

    bill: object
    bill_json: str
    invoice_text: str
    number: str
    list_cost: Decimal
    terms: S.Terms
    packs: tuple


def _bill_json(bill) -> str:
    return json.dumps(bill.to_dict(), ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _merge(first: Applied, second: Applied) -> Applied:
    return Applied(first.account, first.entries + second.entries, second.balance, second.frozen, second.suspended)
