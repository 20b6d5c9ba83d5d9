"""Accounts and their services: opening an account, activating a service (accepting its terms),
top-ups, and reading them back, including the one-query `status` check."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal

from ..currencies import is_currency
from ..displaytext import unsafe_character
from . import postings as P
from .records import Account, Applied, Entry, ServiceInfo, Status
from .values import (ACCOUNT_ID, MAX_AMOUNT, NOT_ACTIVATED, LedgerError, UnknownAccount, as_decimal, check_reference,
                     moment, parse_amount, stamp)

_STATUS_ONE = ("SELECT a.currency, a.balance, a.frozen, s.service, s.state, s.since, s.reason, s.time_zone "
               "FROM accounts AS a LEFT JOIN services AS s ON s.account = a.id AND s.service = ? WHERE a.id = ?")
_STATUS_ANY = ("SELECT a.currency, a.balance, a.frozen, s.service, s.state, s.since, s.reason, s.time_zone "
               "FROM accounts AS a LEFT JOIN services AS s ON s.account = a.id WHERE a.id = ? ORDER BY s.service")


def status(store, account: str, service: str | None = None) -> Status:
    """Whether `account` may use `service` now (one indexed query). Without a service: the
    account's only service. Raises UnknownAccount for an account the ledger does not have."""
    if service is None:
        rows = store.read(_STATUS_ANY, (account,))
        if len(rows) > 1:
            raise LedgerError(f"account {account!r} has several services ({', '.join(r[3] for r in rows)}); "
                              "name the one to check")
    else:
        rows = store.read(_STATUS_ONE, (service, account))
    if not rows:
        raise UnknownAccount(account)
    currency, balance, frozen, svc, state, since, reason, zone = rows[0]
    if svc is None:
        what = f"service {service}" if service else "any service"
        return Status(account, service, NOT_ACTIVATED, f"account {account} has not activated {what}", None,
                      currency, Decimal(balance), Decimal(frozen))
    return Status(account, svc, state, reason, local(moment(since), zone), currency, Decimal(balance), Decimal(frozen))


def local(moment_: datetime, zone: str | None) -> datetime:
    """A stored moment as shown: in the service's policy time zone when known, to the second."""
    if zone:
        from zoneinfo import ZoneInfo

        moment_ = moment_.astimezone(ZoneInfo(zone))
    return moment_.replace(microsecond=0)


def account(store, account: str) -> Account:
    rows = store.read("SELECT id, name, currency, created_at, balance, frozen FROM accounts WHERE id = ?",
                      (account,))
    if not rows:
        raise UnknownAccount(account)
    return _account(store, rows[0])


def currency_mismatches(store, currencies, accounts) -> dict[str, str]:
    """The accounts among `accounts` that are in the ledger with a balance in none of `currencies`,
    and the currency each is in: a rule set billing them would bill in the wrong money."""
    wanted = sorted(currencies)
    others = store.read(f"SELECT id, currency FROM accounts WHERE currency NOT IN ({', '.join('?' * len(wanted))})",
                        tuple(wanted))
    asked = accounts if isinstance(accounts, (set, frozenset)) else set(accounts)
    return {account: currency for account, currency in others if account in asked}


def accounts(store) -> list[Account]:
    return [_account(store, row) for row in
            store.read("SELECT id, name, currency, created_at, balance, frozen FROM accounts ORDER BY id")]


def _account(store, row) -> Account:
    services = tuple(
        ServiceInfo(r[0], local(moment(r[1]), r[13]), r[2], local(moment(r[3]), r[13]), r[4],
                    local(moment(r[5]), r[13]), r[6], Decimal(r[7]), as_decimal(r[9]))
        for r in store.read(f"SELECT {P.SERVICE_COLUMNS}, time_zone FROM services WHERE account = ? ORDER BY service",
                            (row[0],)))
    return Account(row[0], row[1], row[2], moment(row[3]), Decimal(row[4]), Decimal(row[5]), services,
                   _party(store.read("SELECT legal_name, address, country, tax_id FROM accounts WHERE id = ?",
                                     (row[0],))[0], row[0]))


def entries(store, account: str | None = None) -> list[Entry]:
    if account is None:
        rows = store.read(f"SELECT {P.ENTRY_COLUMNS} FROM entries ORDER BY seq")
    else:
        rows = store.read(f"SELECT {P.ENTRY_COLUMNS} FROM entries WHERE account = ? ORDER BY seq", (account,))
    return [P.entry_of(r) for r in rows]


BUYER_FIELDS = ("legal_name", "address", "country", "tax_id")
_COUNTRY = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")  # DE, or a region of one (ISO 3166-2: US-CA)


def _buyer_values(fields: dict) -> dict:
    """Checked buyer details: `address` is a sequence of lines, `country` an ISO 3166-1 alpha-2 code
    (or an ISO 3166-2 region code, for tax rules with regional rates)."""
    out = {}
    for key, value in fields.items():
        if key not in BUYER_FIELDS:
            raise LedgerError(f"unknown account field {key!r}; expected one of: {', '.join(BUYER_FIELDS)}")
        if value is None:
            continue
        if key == "address":
            lines = [" ".join(str(line).split()) for line in (value if isinstance(value, (list, tuple)) else
                                                               str(value).split("\n"))]
            value = "\n".join(line for line in lines if line)
        else:
            value = " ".join(str(value).split())
        if key == "country" and value and not _COUNTRY.match(value):
            raise LedgerError(f"bad country {value!r}: expected an ISO 3166-1 alpha-2 code such as DE, FR or CN, "
                              "or an ISO 3166-2 region code such as US-CA")
        if len(value) > 1000:
            raise LedgerError(f"the {key.replace('_', ' ')} is too long ({len(value)} characters; at most 1000)")
        out[key] = value or None
    return out


def buyer_of(db, account: str):
    """The account's buyer details as invoices print them, or None when it has none."""
    return _party(db.execute("SELECT legal_name, address, country, tax_id FROM accounts WHERE id = ?",
                             (account,)).fetchone(), account)


def buyers(store) -> dict:
    """Every account's buyer details (`model.Party`), for those that have any: whom tax rules tax by."""
    out = {}
    for account, *row in store.read("SELECT id, legal_name, address, country, tax_id FROM accounts ORDER BY id"):
        party = _party(tuple(row), account)
        if party is not None:
            out[account] = party
    return out


def _party(row, account: str):
    if row is None or not any(row):
        return None
    from ..model import Party

    name, address, country, tax_id = row
    return Party(name or account, tuple((address or "").split("\n")) if address else (), country or "", tax_id or "")


def update_account(store, account: str, **fields) -> None:
    """Set the account's buyer details (legal name, address, country, tax id) for the documents
    issued from now on; those already issued keep the details they were issued with."""
    values = _buyer_values(fields)
    with store.write() as db:
        if db.execute("SELECT 1 FROM accounts WHERE id = ?", (account,)).fetchone() is None:
            raise UnknownAccount(account)
        for key, value in values.items():
            db.execute(f"UPDATE accounts SET {key} = ? WHERE id = ?", (value, account))


def checked_account(account: str, name: str, currency: str, buyer: dict) -> tuple[str, str, str, dict]:
    """The checks every new account passes (`create_account`, `import_accounts`): its id, name,
    currency and buyer details as stored, or a LedgerError saying what is wrong."""
    if not ACCOUNT_ID.match(account or "") or unsafe_character(account):
        raise LedgerError(f"bad account id {account!r}: expected 1 to 200 characters without spaces or "
                          "control characters")
    bad = unsafe_character(name or "")
    if bad:
        # A name is printed on statements: a line break or ANSI escape could forge a row of one.
        raise LedgerError(f"bad account name {name!r}: it holds {bad}; expected one line of printable "
                          "text; nothing was changed")
    if not is_currency(currency):
        raise LedgerError(f"unknown currency {currency!r}: expected an ISO 4217 code such as EUR or USD")
    return account, name or account, currency, _buyer_values(buyer)


def create_account(store, account: str, name: str, currency: str, at: datetime, **buyer) -> Applied:
    account, name, currency, values = checked_account(account, name, currency, buyer)
    with store.write() as db:
        if db.execute("SELECT 1 FROM accounts WHERE id = ?", (account,)).fetchone():
            raise LedgerError(f"account {account!r} already exists; nothing was changed")
        return insert_account(db, account, name, currency, stamp(at), values)


def insert_account(db, account: str, name: str, currency: str, when: str, buyer: dict) -> Applied:
    """Write a checked new account and its opening entry, inside the caller's transaction."""
    from .. import settlement as S

    db.execute("INSERT INTO accounts (id, name, currency, created_at, balance, frozen, last_at) "
               "VALUES (?, ?, ?, ?, '0', '0', ?)", (account, name, currency, when, when))
    for key, value in buyer.items():
        db.execute(f"UPDATE accounts SET {key} = ? WHERE id = ?", (value, account))
    position = P.position(db, account)
    return P.record(db, account, position, when, [S.Change(
        S.ACCOUNT_OPENED, f"account {account} opened for {name}, in {currency}")], position)


def activate(store, account: str, service: str, terms_version: str, at: datetime,
             time_zone: str | None = None, *, currencies: frozenset[str] | None = None) -> Applied:
    """Activate a service for an account that accepts its terms of service (version `terms_version`).
    Accepting a newer version later records it; accepting the same version again changes nothing.
    `currencies`, when given, are those the service's rules bill in: an account whose balance is in
    another currency is refused (its bills could never be debited)."""
    from .. import settlement as S

    if not service or not terms_version:
        raise LedgerError("a service and the version of its terms of service accepted are both needed")
    if currencies is not None:
        held = currency_mismatches(store, currencies, [account])
        if held:
            raise LedgerError(f"account {account} holds its balance in {held[account]}, but {service} bills in "
                              f"{', '.join(sorted(currencies))}: activate the service of its site instead")
    when = stamp(at)
    with store.write() as db:
        position = P.position(db, account, when)
        row = db.execute("SELECT terms_version FROM services WHERE account = ? AND service = ?",
                         (account, service)).fetchone()
        if row is None:
            reason = f"service {service} activated; terms of service version {terms_version} accepted"
            db.execute("INSERT INTO services (account, service, activated_at, terms_version, terms_accepted_at, "
                       "state, since, reason, frozen) VALUES (?, ?, ?, ?, ?, 'active', ?, ?, '0')",
                       (account, service, when, terms_version, when, when, reason))
            change = S.Change(S.SERVICE_ACTIVATED, reason, service, ref=terms_version)
        elif row[0] == terms_version:
            return P.unchanged(account, position, f"{service} is already active with terms of service "
                                   f"version {terms_version}")
        else:
            db.execute("UPDATE services SET terms_version = ?, terms_accepted_at = ? WHERE account = ? "
                       "AND service = ?", (terms_version, when, account, service))
            change = S.Change(S.TERMS_ACCEPTED, f"terms of service of {service} version {terms_version} "
                              f"accepted (was {row[0]})", service, ref=terms_version)
        if time_zone is not None:
            db.execute("UPDATE services SET time_zone = ? WHERE account = ? AND service = ?",
                       (time_zone, account, service))
        position = P.position(db, account)
        return P.record(db, account, position, when, [change], position)


def top_up(store, account: str, amount, at: datetime, reference: str | None = None) -> Applied:
    """Credit `amount`; retry pending deposit freezes; resume services back in good standing. With a
    `reference` (e.g. the payment id), recording the same top-up again changes nothing."""
    from .. import settlement as S

    check_reference(reference, "top-up")
    when = stamp(at)
    with store.write() as db:
        position = P.position(db, account)
        value = parse_amount(amount, position.currency)
        if position.balance + value >= MAX_AMOUNT:
            raise LedgerError(f"a top-up of {value} would take the balance of {account} to "
                              f"{position.balance + value}, past the ledger's bound of {MAX_AMOUNT:,f}; "
                              "nothing was changed")
        if reference is not None:
            seen = db.execute(f"SELECT {P.ENTRY_COLUMNS} FROM entries WHERE account = ? AND kind = 'top-up' "
                              "AND ref = ?", (account, reference)).fetchone()
            if seen is not None:
                old = P.entry_of(seen)
                if old.amount != value:
                    raise LedgerError(f"top-up reference {reference!r} of {account} was recorded with "
                                      f"{old.amount}, not {value}; nothing was changed")
                return P.unchanged(account, position, f"top-up {reference} was already recorded")
        P.check_time(db, account, when)
        outcome = S.apply_top_up(position, value, reference)
        return P.record(db, account, position, when, outcome.changes, outcome.position)
