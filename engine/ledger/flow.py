"""How a settlement's usage, results and report flow, so that its memory does not grow with the accounts.

The accounts to settle are the ledger's, in account order, and usage comes in account order too
(`UsageReader.accounts()`): one merge of the two streams gives each batch of accounts its usage and
sets aside the usage of accounts that are not settled (held, not activated, not in the ledger), which
the report lists. Results go to the caller batch by batch as they are committed (or are all kept, the
library's default); either way the report keeps what `SettleReport.complete` needs.
"""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

from ..errors import RatecardError
from . import postings as P
from .records import OUTCOMES, Settled, Streamed, Unbilled
from .values import moment

HELD = "has rejected usage rows: settled once they are fixed"


class UsageOrderError(RatecardError, ValueError):
    """Usage given to a streamed settlement that is not of its period, or not in account order, or
    that could not be read on (a streamed settlement reads it as its batches need it)."""

    def __init__(self, account: str, message: str):
        super().__init__(message)
        self.account = account  # whose usage it is (the last read, when it could not be read on)


def in_order(usage: Iterable, period: str) -> Iterator:
    """`usage` as it comes, checked to be of `period` and in account order, each account once."""
    last = None
    for u in usage:
        if u.period != period:
            raise UsageOrderError(u.account, f"usage of {u.account} is for {u.period}, not {period}")
        if last is not None and u.account <= last:
            raise UsageOrderError(u.account, f"usage of {u.account} comes after that of {last}: a streamed "
                                  "settlement takes usage in account order, each account once (as "
                                  "UsageReader.accounts() yields it)")
        last = u.account
        yield u


def sorted_usage(usage: Iterable, period: str) -> list:
    """All of `usage` (in any order; an account given twice: its last), checked to be of `period`, in
    account order."""
    by_account = {}
    for u in usage:
        if u.period != period:
            raise ValueError(f"usage of {u.account} is for {u.period}, not {period}")
        by_account[u.account] = u
    return [by_account[a] for a in sorted(by_account)]


def why_unbilled(store, service: str, end: str) -> Callable[[str], str]:
    """Why an account with usage is not among those settled (it is asked of a few accounts only)."""
    def why(account: str) -> str:
        row = store.read("SELECT activated_at FROM services WHERE service = ? AND account = ?", (service, account))
        if row and row[0][0] >= end:
            return f"activated {service} only at {moment(row[0][0]).isoformat()}, after the period ended"
        if row:  # activated by another process after this settlement listed the accounts to settle
            return f"activated {service} while this settlement ran: settle again to bill it"
        if store.read("SELECT 1 FROM accounts WHERE id = ?", (account,)):
            return f"has not activated {service}"
        return "is not in the ledger"
    return why


class UsageMerge:
    """The usage of the accounts settled, batch by batch (`take`, batches in account order), from usage in
    account order; the usage of any other account is set aside as unbilled (`unbilled`, once `rest` has
    read the usage after the last batch)."""

    def __init__(self, usage: Iterator, held: set[str], why: Callable[[str], str]):
        self._usage, self._held, self._why = usage, held, why
        self._held_calls: dict[str, Any] = {}  # an account's calls: an int, or a Decimal of a decimal unit
        self._others: list[Unbilled] = []
        self._next = next(self._usage, None)  # a usage problem found before anything is written

    def _advance(self):
        current = self._next
        try:
            self._next = next(self._usage, None)
        except UsageOrderError:
            raise
        except Exception as exc:  # noqa: BLE001 - the reader's engine (a spill file lost, a disk full): said, not a traceback
            last = current.account if current is not None else ""
            raise UsageOrderError(last, f"the usage could not be read on after account {last or '(none)'}: "
                                  f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}") from exc
        return current

    def _aside(self, u) -> None:
        if u.account in self._held:
            self._held_calls[u.account] = u.calls
        else:
            self._others.append(Unbilled(u.account, u.calls, self._why(u.account)))

    def take(self, accounts: list[str]) -> dict:
        """The usage of `accounts` (the next batch to settle, in account order), by account."""
        if not accounts:
            return {}
        wanted, last, found = set(accounts), accounts[-1], {}
        while self._next is not None and self._next.account <= last:
            u = self._advance()
            if u.account in wanted:
                found[u.account] = u
            else:
                self._aside(u)
        return found

    def rest(self) -> None:
        """Read the usage after the last batch: none of it is settled."""
        while self._next is not None:
            self._aside(self._advance())

    def unbilled(self) -> tuple[Unbilled, ...]:
        """The held accounts (with their usage's calls, or none), then the others with usage, by account."""
        held = [Unbilled(a, self._held_calls.get(a, 0), HELD) for a in sorted(self._held) if a]
        return tuple(held + self._others)


class Tally:
    """The results of the accounts settled, as their batches commit: all of them kept (`keep`), or only
    their counts and those a report must name (failed ones, usage not recorded)."""

    def __init__(self, keep: bool):
        self.keep = keep
        self.kept: list[Settled] = []
        self.count = 0
        self._outcomes: dict[str, int] = {}
        self._failed: list[Settled] = []
        self._unrecorded: list[Settled] = []

    def add(self, result: Settled) -> None:
        self.count += 1
        if self.keep:
            self.kept.append(result)
            return
        self._outcomes[result.outcome] = self._outcomes.get(result.outcome, 0) + 1
        if result.outcome == "failed":
            self._failed.append(result)
        if result.unrecorded:
            self._unrecorded.append(result)

    def failed_accounts(self) -> set[str]:
        return {r.account for r in (self.kept if self.keep else self._failed) if r.outcome == "failed"}

    def streamed(self) -> Streamed:
        order = {k: i for i, k in enumerate(OUTCOMES)}
        counts = sorted(self._outcomes.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))
        return Streamed(tuple(counts), tuple(self._failed), tuple(self._unrecorded))


def batch_facts(store, accounts: list[str], service: str, period: str) -> tuple[set[str], dict[str, str]]:
    """Of a batch of accounts: those with the period's bill recorded already, and each one's currency."""
    recorded: set[str] = set()
    currencies: dict[str, str] = {}
    for start in range(0, len(accounts), P.MAX_VARIABLES):
        part = accounts[start:start + P.MAX_VARIABLES]
        marks = ", ".join("?" * len(part))
        recorded.update(r[0] for r in store.read(
            f"SELECT account FROM bills WHERE service = ? AND period = ? AND account IN ({marks})",
            (service, period, *part)))
        currencies.update(store.read(f"SELECT id, currency FROM accounts WHERE id IN ({marks})", part))
    return recorded, currencies


# Python's cyclic collector runs its youngest generation every 700 net new container objects. A settled
# account makes a few hundred that live until its batch is committed (its bill, entries, results), so
# the default runs it every account or two, and each older collection that follows walks the rules,
# the usage and the batches ahead: about a tenth of the writing process's CPU. Almost none of it is
# cyclic garbage (what an account leaves is freed by reference counting), so a settlement lets more
# objects build up between collections; memory stays bounded by the threshold.
YOUNG_THRESHOLD = 10_000
_collections_lock = threading.Lock()
_collections_users = 0
_collections_before: tuple[int, ...] = ()


@contextmanager
def fewer_collections():
    """The cyclic collector's youngest generation collected every `YOUNG_THRESHOLD` objects meanwhile
    (unless it is set higher already, or disabled), put back as it was once the last settlement running
    in the process (a server's threads may run several) is done."""
    global _collections_users, _collections_before
    with _collections_lock:
        if not _collections_users:
            _collections_before = gc.get_threshold()
            if 0 < _collections_before[0] < YOUNG_THRESHOLD:
                gc.set_threshold(YOUNG_THRESHOLD, *_collections_before[1:])
        _collections_users += 1
    try:
        yield
    finally:
        with _collections_lock:
            _collections_users -= 1
            if not _collections_users:
                gc.set_threshold(*_collections_before)
