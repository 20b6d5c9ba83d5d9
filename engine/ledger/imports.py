"""Bulk onboarding: `import_accounts` opens every account of an accounts file in one transaction.

All or nothing: every row is checked as `create_account` checks one (id, name, currency, buyer
details) before anything is written, and every bad row is reported at once as `FILE:ROW: reason`.
Importing the same file again changes nothing: an account already in the ledger with the same
details is left as it is; one whose details differ is an error, unless `update` is given, which sets
the buyer details invoices print from then on (the id, name and currency of an account never change).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime

from ..errors import AccountsInvalid, Location, Problem, RatecardError
from .accounts import BUYER_FIELDS, checked_account, insert_account
from .values import LedgerError, stamp

COLUMNS = ("account", "name", "currency", *BUYER_FIELDS)
REQUIRED = ("account", "currency")
EXPECTED = ("expected the columns account, currency[, name, legal_name, address, country, tax_id]; an address "
            "of several lines holds them in one quoted field, one a line")
_NOTHING = "; nothing was changed"


@dataclass(frozen=True)
class AccountRow:
    """One account as an accounts file gives it; empty fields are None (not given)."""

    row: int  # the file's line number where the record starts, the header being line 1
    account: str
    currency: str
    name: str | None = None
    buyer: dict[str, str] = field(default_factory=dict)
    problem: str | None = None  # why the row cannot be read (import reports it beside the others)


@dataclass(frozen=True)
class ImportReport:
    """What an import did: the ids created, left unchanged (already identical) and updated."""

    source: str
    created: tuple[str, ...]
    unchanged: tuple[str, ...]
    updated: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"source": self.source, "created": list(self.created), "unchanged": list(self.unchanged),
                "updated": list(self.updated)}


def read_accounts(text: str, source: str) -> list[AccountRow]:
    """The rows of an accounts CSV file (text already decoded); AccountsInvalid for a wrong header.
    A row that cannot be read carries its `problem`, which `import_accounts` reports with the rest."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
    rows: list[AccountRow] = []

    def bad(row: int, message: str) -> None:
        rows.append(AccountRow(row, "", "", problem=message))

    try:
        header = next((h for h in reader if h), None)
    except csv.Error as exc:
        raise AccountsInvalid([Problem(Location(source, 1, 0), f"unreadable CSV header: {exc}; {EXPECTED}")]) from None
    if header is None:
        raise AccountsInvalid([Problem(Location(source, 1, 0), f"the file is empty; {EXPECTED}")])
    names = [h.strip().lower().replace("-", "_").replace(" ", "_") for h in header]
    unknown = [h for h in names if h not in COLUMNS]
    missing = [c for c in REQUIRED if c not in names]
    repeated = sorted({h for h in names if names.count(h) > 1})
    if unknown or missing or repeated:
        what = "; ".join(x for x in (
            unknown and f"unknown column(s) {', '.join(unknown)}", missing and f"missing column(s) {', '.join(missing)}",
            repeated and f"column(s) {', '.join(repeated)} given twice") if x)
        raise AccountsInvalid([Problem(Location(source, reader.line_num, 0), f"{what}; {EXPECTED}")],
                              "the header is wrong; nothing was imported")
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            bad(start, f"malformed CSV: {exc}")
            break  # past an unclosed quote the rest of the file is one field: no row after it can be trusted
        if not cells or all(not c.strip() for c in cells):
            continue
        if len(cells) != len(names):
            bad(start, f"expected {len(names)} columns ({', '.join(names)}), got {len(cells)}")
            continue
        values = {n: c.strip() for n, c in zip(names, cells) if n != "address"}
        if "address" in names:
            values["address"] = cells[names.index("address")]
        for column in REQUIRED:
            if not values[column]:
                bad(start, f"no {column}: every row needs an account id and its currency")
        if all(values[c] for c in REQUIRED):
            rows.append(AccountRow(start, values["account"], values["currency"], values.get("name") or None,
                                   {k: values[k] for k in BUYER_FIELDS if values.get(k, "").strip()}))
    return rows


def import_accounts(store, rows: list[AccountRow], at: datetime, *, source: str, update: bool = False) -> ImportReport:
    """Open every account of `rows` in one transaction (see the module's docstring)."""
    when = stamp(at)
    problems: list[Problem] = []
    checked = []
    first_row: dict[str, int] = {}
    for r in rows:
        if r.problem is not None:
            problems.append(Problem(Location(source, r.row, 0), r.problem))
            continue
        try:
            account, name, currency, buyer = checked_account(r.account, r.name or "", r.currency, r.buyer)
        except LedgerError as exc:
            problems.append(Problem(Location(source, r.row, 0), str(exc).removesuffix(_NOTHING)))
            continue
        if account in first_row:
            problems.append(Problem(Location(source, r.row, 0), f"account {account!r} is also on row "
                                    f"{first_row[account]}; expected each account once"))
            continue
        first_row[account] = r.row
        checked.append((r, account, name, currency, buyer))
    created, unchanged, updated = [], [], []
    with store.write() as db:
        changes = []
        for r, account, name, currency, buyer in checked:
            held = db.execute("SELECT name, currency, legal_name, address, country, tax_id FROM accounts WHERE id = ?",
                              (account,)).fetchone()
            if held is None:
                changes.append((account, name, currency, buyer))
                continue
            differ = _differences(held, r.name and name, currency, buyer)
            fixed = [d for d in differ if d[0] in ("name", "currency")]
            if fixed or (differ and not update):
                said = ", ".join(f"{k} {have!r} in the ledger, {want!r} here" for k, have, want in (fixed or differ))
                hint = ("an account's name and currency never change" if fixed
                        else "give --update to set the buyer details from this file")
                problems.append(Problem(Location(source, r.row, 0), f"account {account!r} already exists with other "
                                        f"details ({said}); {hint}"))
            elif differ:
                updated.append((account, {k: want for k, _, want in differ}))
            else:
                unchanged.append(account)
        if problems:
            raise AccountsInvalid(problems, _summary(problems))
        for account, name, currency, buyer in changes:
            insert_account(db, account, name, currency, when, buyer)
            created.append(account)
        for account, values in updated:
            for key, value in values.items():
                db.execute(f"UPDATE accounts SET {key} = ? WHERE id = ?", (value, account))
    return ImportReport(source, tuple(created), tuple(unchanged), tuple(a for a, _ in updated))


def _differences(held, name: str | None, currency: str, buyer: dict) -> list[tuple[str, str | None, str]]:
    """(field, in the ledger, in the file) for each detail the file gives that the ledger holds otherwise."""
    stored = dict(zip(("name", "currency", *BUYER_FIELDS), held))
    given = {"currency": currency, **({"name": name} if name else {}), **buyer}
    return [(k, stored[k], v) for k, v in given.items() if stored[k] != v]


def _summary(problems) -> str:
    count = len(problems)
    return f"{count:,} bad row{'' if count == 1 else 's'}; nothing was imported"


def decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise RatecardError(f"{source}:{line}: the file is not UTF-8 text; save it as UTF-8") from None


__all__ = ["AccountRow", "ImportReport", "read_accounts", "import_accounts", "decode"]
