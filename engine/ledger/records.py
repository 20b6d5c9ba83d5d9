"""What the ledger hands back: records read from it and the results of its writes, all frozen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from ..model import Party
from ..formatting import money_text
from .values import ACTIVE, subtract

if TYPE_CHECKING:
    from .. import settlement as S


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
                "currency": self.currency, "balance": money_text(self.balance, self.currency),
                "frozen": money_text(self.frozen, self.currency),
                "available": money_text(subtract(self.balance, self.frozen), self.currency)}


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

    def to_dict(self, currency: str) -> dict:
        return {"service": self.service, "activated_at": self.activated_at.isoformat(),
                "terms_version": self.terms_version, "terms_accepted_at": self.terms_accepted_at.isoformat(),
                "state": self.state, "since": self.since.isoformat(), "reason": self.reason,
                "frozen": money_text(self.frozen, currency),
                "pending_freeze": None if self.pending_freeze is None else money_text(self.pending_freeze, currency)}


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    currency: str
    created_at: datetime
    balance: Decimal
    frozen: Decimal
    services: tuple[ServiceInfo, ...] = ()
    buyer: Party | None = None  # the legal details invoices print, once given

    @property
    def available(self) -> Decimal:
        return subtract(self.balance, self.frozen)

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "currency": self.currency,
                "created_at": self.created_at.isoformat(), "balance": money_text(self.balance, self.currency),
                "frozen": money_text(self.frozen, self.currency), "available": money_text(self.available, self.currency),
                "services": [s.to_dict(self.currency) for s in self.services],
                "buyer": self.buyer.to_dict() if self.buyer else None}


@dataclass(frozen=True, slots=True)
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

    def to_dict(self, currency: str) -> dict:
        """As JSON; `currency`, the account's, gives the amounts their minor-unit digits."""
        return {"seq": self.seq, "account": self.account, "at": self.at.isoformat(), "kind": self.kind,
                "service": self.service, "period": self.period, "amount": money_text(self.amount, currency),
                "frozen_change": money_text(self.frozen_change, currency),
                "balance_after": money_text(self.balance_after, currency),
                "frozen_after": money_text(self.frozen_after, currency), "reason": self.reason, "ref": self.ref}


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
                "invoice_number": self.invoice_number, "currency": self.currency,
                "total": money_text(self.total, self.currency), "list_cost": money_text(self.list_cost, self.currency), "rules_name": self.rules_name,
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
        from ..settlement import last_period_served

        return last_period_served(self.expires_at, self.time_zone)

    def local(self, moment_: datetime) -> datetime:
        from zoneinfo import ZoneInfo

        return moment_.astimezone(ZoneInfo(self.time_zone))

    def to_dict(self) -> dict:
        return {"id": self.id, "account": self.account, "service": self.service, "category": self.category,
                "units": self.units, "unit": self.unit, "price": money_text(self.price, self.currency),
                "currency": self.currency,
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

    def to_dict(self, currency: str) -> dict:
        return {"kind": self.kind, "service": self.service, "ref": self.ref, "description": self.description,
                "amount": money_text(self.amount, currency)}


# -- results of writes -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
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
    issue_date: date | None = None  # the document's, in the policy's time zone, as it prints them
    due_date: date | None = None
    # Usage given that no recorded document reflects (it rates to the recorded total but differently):
    # the settlement is not complete, so that it is looked at (issue 11 item 6).
    unrecorded: str = ""

    def to_dict(self) -> dict:
        out: dict[str, object] = {"account": self.account, "outcome": self.outcome, "invoice": self.invoice or None,
               "issue_date": self.issue_date.isoformat() if self.issue_date else None,
               "due_date": self.due_date.isoformat() if self.due_date else None,
               "currency": self.currency or None, "total": None if self.total is None else money_text(self.total, self.currency),
               "debit": self.debit or None, "due_at": self.due_at.isoformat() if self.due_at else None,
               "problem": self.problem or None}
        if self.unrecorded:
            out["unrecorded"] = self.unrecorded
        if self.applied is not None:
            out |= {"balance": money_text(self.applied.balance, self.currency),
                    "frozen": money_text(self.applied.frozen, self.currency),
                    "suspended": list(self.applied.suspended),
                    "entries": [e.to_dict(self.currency) for e in self.applied.entries]}
        return out


@dataclass(frozen=True)
class Unbilled:
    """Usage of the period that was not billed, and why: it is listed, never dropped silently."""

    account: str
    calls: int
    reason: str

    def to_dict(self) -> dict:
        from ..bill import quantity  # a decimal unit's calls (GB) as exact text, as bills write them

        return {"account": self.account, "calls": quantity(self.calls), "reason": self.reason}


# The outcomes a settled account can have, in the order reports count them.
OUTCOMES = ("settled", "corrected", "already-settled", "failed")


@dataclass(frozen=True)
class Streamed:
    """What a report keeps of accounts that were handed one by one to the caller as they were settled
    (`settle(on_account=...)`) instead of kept: how many had each outcome, and the accounts that make the
    settlement incomplete, which a report must still name."""

    outcomes: tuple[tuple[str, int], ...]  # (outcome, accounts), in the order of OUTCOMES then by name
    failed: tuple[Settled, ...] = ()
    unrecorded: tuple[Settled, ...] = ()


@dataclass(frozen=True)
class SettleReport:
    """A settlement's result. `accounts` holds every account settled, in account order, unless they
    were streamed to the caller instead (`streamed` is then set, and `accounts` empty): `outcomes`,
    `failed`, `unrecorded` and `complete` answer alike either way."""

    period: str
    service: str
    rules_fingerprint: str
    at: datetime
    schedule: S.Schedule
    collected: tuple[Collected, ...] = ()
    accounts: tuple[Settled, ...] = ()
    unbilled: tuple[Unbilled, ...] = ()
    streamed: Streamed | None = None

    @property
    def outcomes(self) -> dict[str, int]:
        """How many accounts had each outcome: every name of OUTCOMES (0 when none), then any other."""
        if self.streamed is not None:
            counts = dict(self.streamed.outcomes)
        else:
            counts = {}
            for a in self.accounts:
                counts[a.outcome] = counts.get(a.outcome, 0) + 1
        return {k: counts.get(k, 0) for k in OUTCOMES} | {k: n for k, n in sorted(counts.items()) if k not in OUTCOMES}

    @property
    def settled_count(self) -> int:
        """How many accounts this settlement went through (whatever their outcome)."""
        return sum(self.outcomes.values())

    @property
    def failed(self) -> tuple[Settled, ...]:
        if self.streamed is not None:
            return self.streamed.failed
        return tuple(a for a in self.accounts if a.outcome == "failed")

    @property
    def complete(self) -> bool:
        """Whether every account with usage (or an activated service) has a recorded bill: none
        failed (e.g. a currency mismatch), none left unbilled (not in the ledger, not activated,
        held for rejected rows), and none with usage no recorded document reflects."""
        return not self.failed and not self.unbilled and not self.unrecorded

    @property
    def unrecorded(self) -> tuple[Settled, ...]:
        """Accounts whose usage given rates differently from what is recorded, with no document for it."""
        if self.streamed is not None:
            return self.streamed.unrecorded
        return tuple(a for a in self.accounts if a.unrecorded)

    def head_dict(self) -> dict:
        """The keys of `to_dict` before "accounts" (known before any account is settled)."""
        return {"period": self.period, "service": self.service, "rules_fingerprint": self.rules_fingerprint,
                "at": self.at.isoformat(), "issue": self.schedule.issue.isoformat(),
                "deduction_window": [self.schedule.deduction_opens.isoformat(),
                                     self.schedule.deduction_closes.isoformat()]}

    def tail_dict(self) -> dict:
        """The keys of `to_dict` after "accounts"."""
        return {"unbilled": [u.to_dict() for u in self.unbilled],
                "collected": [{"account": c.account, "service": c.service, "period": c.period,
                               "amount": money_text(c.amount, c.currency), "currency": c.currency,
                               "applied": c.applied is not None, "problem": c.problem or None}
                              for c in self.collected]}

    def to_dict(self) -> dict:
        if self.streamed is not None:
            # Its accounts went to the caller as they were settled: a list of none would be wrong.
            raise ValueError("the accounts of this settlement were streamed, not kept: write them as they come "
                             "(head_dict, each account's to_dict, tail_dict)")
        return self.head_dict() | {"accounts": [a.to_dict() for a in self.accounts]} | self.tail_dict()


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
        from ..settlement import add

        total = Decimal(0)
        for c in self.charges:
            total = add(total, c.amount)
        return total


@dataclass(frozen=True)
class PackBought:
    """The result of `Ledger.buy_pack`: the pack and what buying it did to the account."""

    pack: Pack
    applied: Applied
