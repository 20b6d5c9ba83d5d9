"""`Ledger`, the one object callers hold: an open ledger file whose methods each hand the work to
the module that does it (accounts, packs, settle, corrections, documents, statements), in that module's words."""

from __future__ import annotations

from datetime import datetime
from typing import Callable, Iterable

# Imported under other names: the facade's methods are named as the modules are.
from . import accounts as _accounts
from . import corrections as _corrections
from . import collect as _collect
from . import documents as _documents
from . import imports as _imports
from . import packs as _packs
from . import settle as _settle
from . import statements as _statements
from .records import (Account, Applied, BillRecord, Collected, Entry, Pack, PackBought, Settled, SettleReport,
                      Statement, Status)
from .storage import Store
from .values import BUSY_TIMEOUT_S


def _as(fn):
    """Give a facade method the docstring of the function it hands the work to."""
    def document(method):
        method.__doc__ = fn.__doc__
        return method
    return document


class Ledger:
    """An open ledger file. `create` makes a new ledger when the file does not exist (or is an empty
    SQLite file); `readonly` opens it for reading only (a missing or out-of-date ledger is then an
    error rather than created or migrated). Use as a context manager, or call `close()`."""

    def __init__(self, path=None, *, create: bool = False, readonly: bool = False,
                 timeout: float = BUSY_TIMEOUT_S):
        self._store = Store(path, create=create, readonly=readonly, timeout=timeout)
        self.path, self.readonly, self.timeout = self._store.path, readonly, timeout

    # -- the file ----------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self._store.version

    @_as(Store.migrate)
    def migrate(self) -> list[int]:
        return self._store.migrate()

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _read(self, sql: str, params=()) -> list:
        return self._store.read(sql, params)

    # -- accounts and services ---------------------------------------------------------------------

    @_as(_accounts.status)
    def status(self, account: str, service: str | None = None) -> Status:
        return _accounts.status(self._store, account, service)

    def account(self, account: str) -> Account:
        return _accounts.account(self._store, account)

    def accounts(self) -> list[Account]:
        return _accounts.accounts(self._store)

    def entries(self, account: str | None = None) -> list[Entry]:
        return _accounts.entries(self._store, account)

    def create_account(self, account: str, name: str, currency: str, at: datetime, **buyer) -> Applied:
        """Open an account; `buyer` may give its legal_name, address, country and tax_id."""
        return _accounts.create_account(self._store, account, name, currency, at, **buyer)

    @_as(_imports.import_accounts)
    def import_accounts(self, rows: list[_imports.AccountRow], at: datetime, *, source: str,
                        update: bool = False) -> _imports.ImportReport:
        return _imports.import_accounts(self._store, rows, at, source=source, update=update)

    @_as(_accounts.update_account)
    def update_account(self, account: str, **buyer) -> None:
        return _accounts.update_account(self._store, account, **buyer)

    @_as(_accounts.activate)
    def activate(self, account: str, service: str, terms_version: str, at: datetime,
                 time_zone: str | None = None, *, currencies: frozenset[str] | None = None) -> Applied:
        return _accounts.activate(self._store, account, service, terms_version, at, time_zone, currencies=currencies)

    @_as(_accounts.currency_mismatches)
    def currency_mismatches(self, currencies, accounts) -> dict[str, str]:
        return _accounts.currency_mismatches(self._store, currencies, accounts)

    @_as(_accounts.buyers)
    def buyers(self) -> dict:
        return _accounts.buyers(self._store)

    @_as(_accounts.top_up)
    def top_up(self, account: str, amount, at: datetime, reference: str | None = None) -> Applied:
        return _accounts.top_up(self._store, account, amount, at, reference)

    # -- resource packs ----------------------------------------------------------------------------

    @_as(_packs.buy_pack)
    def buy_pack(self, rules, account: str, category: str, size, at: datetime,
                 reference: str | None = None) -> PackBought:
        return _packs.buy_pack(self._store, rules, account, category, size, at, reference)

    @_as(_packs.packs)
    def packs(self, account: str, *, service: str | None = None, at: datetime | None = None,
              period: str | None = None, as_of: datetime | None = None) -> list[Pack]:
        return _packs.packs(self._store, account, service=service, at=at, period=period, as_of=as_of)

    # -- settlement --------------------------------------------------------------------------------

    @_as(_settle.settle)
    def settle(self, rules, usage: Iterable, period: str, at: datetime, *, hold: Iterable[str] = (),
               batch: int = _settle.BATCH, jobs: int | None = None,
               on_start: Callable[[SettleReport, tuple[str, ...]], None] | None = None,
               on_account: Callable[[Settled], None] | None = None) -> SettleReport:
        return _settle.settle(self._store, rules, usage, period, at, hold=hold, batch=batch, jobs=jobs,
                              on_start=on_start, on_account=on_account)

    @_as(_collect.collect)
    def collect(self, at: datetime) -> list[Collected]:
        return _collect.collect(self._store, at)

    # -- documents and statements ------------------------------------------------------------------

    def bills(self, account: str | None = None, period: str | None = None) -> list[BillRecord]:
        return _documents.bills(self._store, account, period)

    @_as(_documents.invoice)
    def invoice(self, account: str, service: str, period: str) -> tuple[str, dict] | None:
        return _documents.invoice(self._store, account, service, period)

    @_as(_documents.documents)
    def documents(self, account: str | None = None, period: str | None = None) -> list[_documents.Document]:
        return _documents.documents(self._store, account, period)

    @_as(_documents.find)
    def document(self, account: str, ref: str):
        return _documents.find(self._store, account, ref)

    @_as(_corrections.credit_note)
    def credit_note(self, rules, account: str, invoice: str, amount, reason: str, at: datetime):
        return _corrections.credit_note(self._store, rules, account, invoice, amount, reason, at)

    @_as(_corrections.void)
    def void(self, rules, invoice: str, at: datetime, reason: str = ""):
        return _corrections.void(self._store, rules, invoice, at, reason)

    @_as(_statements.statement)
    def statement(self, account: str, *, period: str | None = None, time_zone: str = "UTC") -> Statement:
        return _statements.statement(self._store, account, period=period, time_zone=time_zone)

    @_as(_statements.verify)
    def verify(self) -> list[str]:
        return _statements.verify(self._store)
