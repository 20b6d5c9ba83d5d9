"""What settlement reads of a batch of accounts, in one query a table instead of several an account.

Two views of a batch: `Ahead`, read before its transaction (what the accounts are rated with:
suspension, packs, buyer details as printed), and `Inside`, read by the transaction itself the first
time it is asked (whether the bill is recorded already, the position, and what the rating depends
on as it is now: packs, suspension, buyer). Another process may write between the two, so an
account rated from `Ahead` is rated again when `Inside` finds any of these changed. Inside ``BEGIN IMMEDIATE`` nobody else writes, and an account's savepoint writes only that
account's rows, so what the transaction read of one account at its start is what a query just before
that account's savepoint would find: the rows recorded are those of reading them one account at a time.
"""

from __future__ import annotations

from . import documents as D
from . import postings as P
from .accounts import _party
from .packs import pack_balances_of, with_packs
from .values import stamp


def _each_part(accounts: list[str]):
    for start in range(0, len(accounts), P.MAX_VARIABLES):
        part = accounts[start:start + P.MAX_VARIABLES]
        yield part, ", ".join("?" * len(part))


def suspended_at(store, accounts, service: str, moment_text: str) -> set[str]:
    """Those of `accounts` whose `service` was suspended at a moment (the end of a period): their latest
    suspended or resumed entry before it is a suspension."""
    latest: dict[str, str] = {}
    for part, marks in _each_part(list(accounts)):
        for account, kind in store.read(
                f"SELECT account, kind FROM entries WHERE account IN ({marks}) AND service = ? AND kind IN "
                "('suspended', 'resumed') AND at < ? ORDER BY account, seq", (*part, service, moment_text)):
            latest[account] = kind
    from .. import settlement as S

    return {account for account, kind in latest.items() if kind == S.SUSPENDED}


def parties(store, accounts) -> dict:
    """Each of `accounts`' buyer details as invoices print them (`accounts.buyer_of`), None for none."""
    accounts = list(accounts)
    found: dict = {}
    for part, marks in _each_part(accounts):
        for account, *row in store.read(f"SELECT id, legal_name, address, country, tax_id FROM accounts WHERE id "
                                        f"IN ({marks})", part):
            found[account] = _party(tuple(row), account)
    return {account: found.get(account) for account in accounts}


class Ahead:
    """A batch's accounts as they are rated, outside any transaction (read when first asked)."""

    def __init__(self, store, accounts: list[str], service: str, end: str, when_, zone: str, recorded):
        self._store, self._accounts, self._service, self._end = store, accounts, service, end
        self._when, self._zone, self._recorded = when_, zone, recorded
        self._suspended: set[str] | None = None
        self._packs: dict | None = None
        self._parties: dict | None = None

    def suspended(self, account: str) -> bool:
        if self._suspended is None:
            self._suspended = suspended_at(self._store, self._accounts, self._service, self._end)
        return account in self._suspended

    def packs(self, account: str) -> tuple:
        """As they are now; an account with a recorded bill is re-rated with its packs as they were
        before it (`packs.pack_balances(before_bill=True)`), which the caller reads itself."""
        if self._packs is None:
            self._packs = pack_balances_of(self._store, [a for a in self._accounts if a not in self._recorded],
                                           self._service, self._when, self._zone)
        return self._packs[account]

    def party(self, account: str):
        if self._parties is None:
            self._parties = parties(self._store, self._accounts)
        return self._parties[account]


class Inside:
    """A batch's accounts as its transaction finds them: read by the first account's savepoint, once."""

    def __init__(self, store, accounts: list[str], service: str, period: str, when_, when: str, issued_on):
        self._store, self._accounts, self._service, self._period = store, accounts, service, period
        self._when_, self._when = when_, when
        self.when, self.issued_on = when, issued_on  # the settlement's moment, and its local date
        # The batch's moments as stored, stamped once rather than once an account.
        self.opens, self.closes = stamp(when_.deduction_opens), stamp(when_.deduction_closes)
        self._read = False
        self._next_seq: dict[str, int] = {}

    def assign_number(self, db, numbering, kind: str) -> tuple[str, str, int]:
        """`documents.assign_number` of a document of `kind` issued on `issued_on`, its series' next place
        read once: the transaction holds the write lock, so only it numbers documents meanwhile, and the
        settlement's invoices (one an account, each taking the number assigned) are all it numbers until
        `numbered_elsewhere`. An account that fails stops the batch: no number is assigned after one
        given back."""
        series = numbering.series(kind, self.issued_on)
        seq = self._next_seq.get(series)
        if seq is None:
            number, series, seq = D.assign_number(db, numbering, kind, self.issued_on)
        else:
            number = numbering.number(series, seq)
        self._next_seq[series] = seq + 1
        return number, series, seq

    def numbered_elsewhere(self) -> None:
        """A document is about to be numbered by other code (a correction): the next places are read again."""
        self._next_seq.clear()

    def _load(self) -> None:
        store, accounts = self._store, self._accounts
        self._recorded: set[str] = set()
        for part, marks in _each_part(accounts):
            self._recorded.update(r[0] for r in store.read(
                f"SELECT account FROM bills WHERE service = ? AND period = ? AND account IN ({marks})",
                (self._service, self._period, *part)))
        self._positions = P.positions(store._db, accounts, self._when)
        self._packs = pack_balances_of(store, accounts, self._service, self._when_, self._when_.time_zone)
        self._with_packs = with_packs(store, accounts, self._service)
        self._parties = parties(store, accounts)
        self._suspended = suspended_at(store, accounts, self._service, stamp(self._when_.end))
        self._zones: dict[str, str | None] = {}
        for part, marks in _each_part(accounts):
            self._zones.update(store.read(f"SELECT account, time_zone FROM services WHERE service = ? AND account "
                                          f"IN ({marks})", (self._service, *part)))
        self._read = True

    def _get(self, name: str):
        if not self._read:
            self._load()
        return getattr(self, name)

    def recorded(self, account: str) -> bool:
        return account in self._get("_recorded")

    def position(self, account: str):
        """The account's position, or raises the LedgerError reading it one account at a time would."""
        found = self._get("_positions")[account]
        if isinstance(found, Exception):
            raise found
        return found

    def packs(self, account: str) -> tuple:
        return self._get("_packs")[account]

    def has_packs(self, account: str) -> bool:
        return account in self._get("_with_packs")

    def buyer(self, account: str):
        return self._get("_parties")[account]

    def suspended(self, account: str) -> bool:
        """Whether the service was suspended when the period ended, as the entries now say."""
        return account in self._get("_suspended")

    def time_zone(self, account: str) -> str | None:
        """The time zone the account's service's times are shown in (`services.time_zone`)."""
        return self._get("_zones").get(account)
