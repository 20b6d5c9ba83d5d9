"""Appending entries: the one way money and service states change. Each write of the other modules
reads the account's position, lets `ratecard.settlement` decide the changes, and records them here,
inside its own transaction: `accounts` and `services` move in step with the entries."""

from __future__ import annotations

import functools
from decimal import Decimal
from typing import TYPE_CHECKING

from ..bill import builder
from .records import Applied, Entry
from .values import ACTIVE, SUSPENDED, LedgerError, UnknownAccount, as_decimal, as_text, moment, settlement

if TYPE_CHECKING:
    from .. import settlement as S

ENTRY_COLUMNS = ("seq, account, at, kind, service, period, amount, frozen_change, balance_after, frozen_after, "
                  "reason, ref")
SERVICE_COLUMNS = ("service, activated_at, terms_version, terms_accepted_at, state, since, reason, frozen, "
                    "frozen_period, pending_freeze, pending_period, arrears_action, resume_when")


def check_time(db, account: str, when: str) -> None:
    last = db.execute("SELECT last_at FROM accounts WHERE id = ?", (account,)).fetchone()
    if last is None:
        raise UnknownAccount(account)
    _check_order(account, last[0], when)


def _check_order(account: str, last_at: str, when: str) -> None:
    if when < last_at:
        raise LedgerError(f"account {account} already has an entry at {moment(last_at).isoformat()}, after "
                          f"{moment(when).isoformat()}: its entries are recorded in time order; nothing was "
                          "changed")


def position(db, account: str, when: str | None = None) -> S.Position:
    row = db.execute("SELECT currency, balance, frozen, last_at FROM accounts WHERE id = ?", (account,)).fetchone()
    if row is None:
        raise UnknownAccount(account)
    if when is not None:
        _check_order(account, row[3], when)
    return _position(row, db.execute(f"SELECT {SERVICE_COLUMNS} FROM services WHERE account = ?", (account,)))


def positions(db, accounts, when: str) -> dict:
    """`position(db, account, when)` of each of `accounts`, read in one query a table: the Position,
    or the LedgerError `position` would raise."""
    accounts = list(accounts)
    rows: dict[str, tuple] = {}
    services: dict[str, list] = {}
    for start in range(0, len(accounts), MAX_VARIABLES):
        part = accounts[start:start + MAX_VARIABLES]
        marks = ", ".join("?" * len(part))
        for r in db.execute(f"SELECT id, currency, balance, frozen, last_at FROM accounts WHERE id IN ({marks})",
                            part):
            rows[r[0]] = r[1:]
        for r in db.execute(f"SELECT account, {SERVICE_COLUMNS} FROM services WHERE account IN ({marks}) "
                            "ORDER BY account, service", part):
            services.setdefault(r[0], []).append(r[1:])
    out: dict = {}
    for account in accounts:
        row = rows.get(account)
        try:
            if row is None:
                raise UnknownAccount(account)
            _check_order(account, row[3], when)
            out[account] = _position(row, services.get(account, ()))
        except LedgerError as exc:
            out[account] = exc
    return out


# Values bound in one statement of the batched reads (SQLite allows 32,766; old builds 999).
MAX_VARIABLES = 900


def _position(row, service_rows) -> S.Position:
    S = settlement()

    services = {}
    for r in service_rows:
        services[r[0]] = S.new_state(r[0], r[4] == SUSPENDED, Decimal(r[7]), r[8], as_decimal(r[9]), r[10], r[11],
                                     r[12])
    return S.new_position(row[0], Decimal(row[1]), Decimal(row[2]), services)


def record(db, account: str, before: S.Position, when: str, changes, after: S.Position, *,
           time_zone: tuple[str, str] | None = None) -> Applied:
    """Append `changes` as entries and bring the account and its services in step with them.
    `time_zone`: (service, zone) to set as the service's `time_zone` too, with its row when that changes."""
    S = settlement()

    balance, frozen = before.balance, before.frozen
    add = S.add
    entries = []
    if changes:
        values: list = []
        figures = []
        for c in changes:
            balance, frozen = add(balance, c.amount), add(frozen, c.frozen)
            figures.append((balance, frozen))
            values += (account, when, c.kind, c.service, c.period, as_text(c.amount), as_text(c.frozen),
                       as_text(balance), as_text(frozen), c.reason, c.ref)
        # Up to ENTRIES_AT_ONCE in one statement: under the transaction's write lock its rows get
        # consecutive seqs (AUTOINCREMENT: one more than the largest ever), the last the statement's rowid.
        seqs: list[int] = []
        for start in range(0, len(changes), ENTRIES_AT_ONCE):
            count = min(ENTRIES_AT_ONCE, len(changes) - start)
            last = db.execute(_insert_entries(count), values[start * 11:(start + count) * 11]).lastrowid
            seqs += range(last - count + 1, last + 1)
        at = moment(when)
        for seq, c, (balance_after, frozen_after) in zip(seqs, changes, figures):
            entries.append(_new_entry(seq, account, at, c.kind, c.service, c.period, c.amount, c.frozen,
                                      balance_after, frozen_after, c.reason, c.ref))
    if (balance, frozen) != (after.balance, after.frozen):
        raise AssertionError(f"internal error: the entries of {account} add up to {balance}/{frozen}, "
                             f"not {after.balance}/{after.frozen}")
    if changes:
        db.execute("UPDATE accounts SET balance = ?, frozen = ?, last_at = max(last_at, ?) WHERE id = ?",
                   (as_text(balance), as_text(frozen), when, account))
    standing = {c.service: c for c in changes if c.kind in (S.SUSPENDED, S.RESUMED)}
    zone_service, zone = time_zone or (None, None)
    for name, state in after.services.items():
        if state == before.services.get(name) and name not in standing:
            continue
        # One statement a service: its state, and with it when it changed standing, and its time zone.
        values = [SUSPENDED if state.suspended else ACTIVE, as_text(state.frozen), state.frozen_period,
                  None if state.pending_freeze is None else as_text(state.pending_freeze), state.pending_period,
                  state.arrears_action, state.resume_when]
        extra = ""
        if name in standing:
            extra, values = ", since = ?, reason = ?", values + [when, standing[name].reason]
        if name == zone_service:
            extra, values, zone_service = extra + ", time_zone = ?", values + [zone], None
        db.execute("UPDATE services SET state = ?, frozen = ?, frozen_period = ?, pending_freeze = ?, "
                   f"pending_period = ?, arrears_action = ?, resume_when = ?{extra} WHERE account = ? AND service = ?",
                   (*values, account, name))
    if zone_service is not None:  # its row changed otherwise not
        db.execute("UPDATE services SET time_zone = ? WHERE account = ? AND service = ?", (zone, account, zone_service))
    suspended = tuple(sorted(n for n, s in after.services.items() if s.suspended))
    return _new_applied(account, tuple(entries), balance, frozen, suspended)


# Entries written by one statement: 11 values each, within the 999 an old SQLite binds at most.
ENTRIES_AT_ONCE = 90


@functools.cache
def _insert_entries(count: int) -> str:
    row = "(" + ", ".join("?" * 11) + ")"
    return ("INSERT INTO entries (account, at, kind, service, period, amount, frozen_change, balance_after, "
            "frozen_after, reason, ref) VALUES " + ", ".join([row] * count))


_new_entry = builder(Entry)
_new_applied = builder(Applied)


def unchanged(account: str, position: S.Position, note: str) -> Applied:
    return Applied(account, (), position.balance, position.frozen,
                   tuple(sorted(n for n, s in position.services.items() if s.suspended)), note)


def entry_of(r) -> Entry:
    return Entry(r[0], r[1], moment(r[2]), r[3], r[4], r[5], Decimal(r[6]), Decimal(r[7]), Decimal(r[8]),
                 Decimal(r[9]), r[10], r[11])


def merge(first: Applied, second: Applied) -> Applied:
    return Applied(first.account, first.entries + second.entries, second.balance, second.frozen, second.suspended)
