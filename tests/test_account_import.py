"""`ratecard account import FILE`: onboarding many accounts from a CSV file, checked as `account
create` checks one, all or nothing, every bad row named at once, the same file twice a no-op."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ratecard.cli import main
from ratecard.errors import AccountsInvalid
from ratecard.ledger import Ledger
from ratecard.ledger.imports import read_accounts

AT = "2024-01-01T00:00:00+00:00"
GOOD = ('account,name,currency,legal_name,address,country,tax_id\n'
        'acme,Acme Inc,USD,Acme Incorporated,"1 Main Street\nSpringfield",US,\n'
        'globex,,EUR,,,DE,DE123456789\n')


def run(capsys, *argv) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "ledger.db"


def write(tmp_path: Path, text: str, name: str = "accounts.csv") -> str:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return str(tmp_path / name)


def test_import_creates_every_account_with_the_fields_account_create_takes(tmp_path, db, capsys):
    status, out, err = run(capsys, "account", "import", write(tmp_path, GOOD), "--db", str(db), "--at", AT)
    assert (status, err) == (0, "")
    assert "2 accounts created, 0 unchanged, 0 updated" in out
    with Ledger(db) as ledger:
        acme, globex = ledger.account("acme"), ledger.account("globex")
        entries = ledger.entries()
    assert (acme.name, acme.currency, acme.buyer.legal_name, acme.buyer.address, acme.buyer.country) == (
        "Acme Inc", "USD", "Acme Incorporated", ("1 Main Street", "Springfield"), "US")
    assert (globex.name, globex.currency, globex.buyer.tax_id) == ("globex", "EUR", "DE123456789")  # name: the id
    assert acme.created_at == datetime(2024, 1, 1, tzinfo=timezone.utc)
    assert [e.kind for e in entries] == ["account-opened", "account-opened"]  # as `account create` records


def test_the_same_as_account_create(tmp_path, db, capsys):
    """An imported account is stored exactly as `account create` stores the same details."""
    other = db.with_name("other.db")
    run(capsys, "account", "import", write(tmp_path, GOOD), "--db", str(db), "--at", AT)
    run(capsys, "account", "create", "acme", "--name", "Acme Inc", "--currency", "USD", "--legal-name",
        "Acme Incorporated", "--address", "1 Main Street", "--address", "Springfield", "--country", "US",
        "--db", str(other), "--at", AT)
    with Ledger(db) as a, Ledger(other) as b:
        assert a.account("acme") == b.account("acme")
        assert [(e.kind, e.reason) for e in a.entries("acme")] == [(e.kind, e.reason) for e in b.entries("acme")]


def test_reimporting_the_same_file_changes_nothing(tmp_path, db, capsys):
    file = write(tmp_path, GOOD)
    run(capsys, "account", "import", file, "--db", str(db), "--at", AT)
    with Ledger(db) as ledger:
        before = (ledger.accounts(), ledger.entries())
    status, out, _ = run(capsys, "account", "import", file, "--db", str(db), "--at", "2024-02-01T00:00:00Z")
    assert status == 0 and "0 accounts created, 2 unchanged, 0 updated" in out
    with Ledger(db) as ledger:
        assert (ledger.accounts(), ledger.entries()) == before


def test_every_bad_row_is_named_at_once_and_nothing_is_imported(tmp_path, db, capsys):
    text = ("account,currency,name,country\n"
            "ok-1,EUR,,\n"
            "bad id,EUR,,\n"            # 3: a space in the id
            "ok-2,ZZZ,,\n"              # 4: no such currency
            "ok-3,EUR,,Germany\n"       # 5: not an ISO 3166 code
            "ok-1,EUR,,\n"              # 6: twice in the file
            "ok-4,EUR,\"a\x1b[2Jb\",\n"  # 7: an escape sequence in the name
            ",EUR,,\n"                  # 8: no id
            "ok-5,EUR\n"                # 9: a column short
            "ok-6,USD,,US\n")
    status, out, err = run(capsys, "account", "import", write(tmp_path, text), "--db", str(db), "--at", AT)
    assert status == 1 and out == ""
    lines = err.splitlines()
    assert [line.split(": ", 1)[0].rsplit(":", 1)[1] for line in lines[:-1]] == ["3", "4", "5", "6", "7", "8", "9"]
    assert all(line.startswith(str(tmp_path / "accounts.csv") + ":") for line in lines[:-1])
    assert "unknown currency 'ZZZ'" in lines[1] and "ISO 3166-1" in lines[2] and "also on row 2" in lines[3]
    assert "expected 4 columns" in lines[6]
    assert lines[-1] == "7 bad rows; nothing was imported"
    assert "Traceback" not in err
    with Ledger(db) as ledger:
        assert ledger.accounts() == []  # all or nothing: ok-1 and ok-6 are not imported either


def test_a_differing_account_is_an_error_unless_update(tmp_path, db, capsys):
    run(capsys, "account", "import", write(tmp_path, GOOD), "--db", str(db), "--at", AT)
    changed = write(tmp_path, "account,currency,country,tax_id\nacme,USD,CA,CA999\nnewco,USD,,\n", "changed.csv")
    status, _, err = run(capsys, "account", "import", changed, "--db", str(db), "--at", AT)
    assert status == 1
    assert "changed.csv:2: account 'acme' already exists with other details (country 'US' in the ledger, 'CA' here" in err
    assert "--update" in err
    with Ledger(db) as ledger:
        assert [a.id for a in ledger.accounts()] == ["acme", "globex"]  # newco not created either
    status, out, _ = run(capsys, "account", "import", changed, "--db", str(db), "--at", AT, "--update",
                         "--format", "json")
    assert status == 0
    assert json.loads(out) | {"ledger": ""} == {"source": changed, "created": ["newco"], "unchanged": [],
                                                "updated": ["acme"], "ledger": ""}
    with Ledger(db) as ledger:
        acme = ledger.account("acme")
    # Only what the file gives changes: the legal name and address stay.
    assert (acme.buyer.country, acme.buyer.tax_id, acme.buyer.legal_name) == ("CA", "CA999", "Acme Incorporated")


def test_currency_and_name_never_change_even_with_update(tmp_path, db, capsys):
    run(capsys, "account", "import", write(tmp_path, GOOD), "--db", str(db), "--at", AT)
    status, _, err = run(capsys, "account", "import", write(tmp_path, "account,currency,name\nacme,EUR,Acme\n", "x.csv"),
                         "--db", str(db), "--update")
    assert status == 1
    assert "currency 'USD' in the ledger, 'EUR' here" in err and "name 'Acme Inc' in the ledger, 'Acme' here" in err
    assert "never change" in err


@pytest.mark.parametrize("text, expected", [
    ("", ":1: the file is empty"),
    ("account,currency,colour\n", ":1: unknown column(s) colour"),
    ("account,name\n", ":1: missing column(s) currency"),
    ("account,currency,account\nx,EUR,y\n", ":1: column(s) account given twice"),
    ("account,currency\nx,\"EUR\n", ":2: malformed CSV"),
])
def test_a_bad_file_is_located(tmp_path, db, capsys, text, expected):
    status, _, err = run(capsys, "account", "import", write(tmp_path, text), "--db", str(db))
    assert status == 1 and expected in err and "Traceback" not in err


def test_not_utf8_is_located(tmp_path, db, capsys):
    (tmp_path / "l1.csv").write_bytes("account,currency,name\nx,EUR,Gr\u00fcn\n".encode("latin-1"))
    status, _, err = run(capsys, "account", "import", str(tmp_path / "l1.csv"), "--db", str(db))
    assert status == 1 and "l1.csv:2: the file is not UTF-8 text" in err


def test_header_spellings_and_blank_lines(tmp_path):
    rows = read_accounts("\ufeffAccount, Currency ,Legal-Name,Tax ID\n\nx,EUR,X GmbH,\n\n", "f.csv")
    assert [(r.row, r.account, r.currency, r.buyer) for r in rows] == [(3, "x", "EUR", {"legal_name": "X GmbH"})]


def test_the_library_api(db):
    rows = read_accounts("account,currency\nx,EUR\nx y,EUR\n", "mem.csv")
    with Ledger(db, create=True) as ledger:
        with pytest.raises(AccountsInvalid) as caught:
            ledger.import_accounts(rows, datetime(2024, 1, 1, tzinfo=timezone.utc), source="mem.csv")
        assert caught.value.lines() == ["mem.csv:3: bad account id 'x y': expected 1 to 200 characters without "
                                        "spaces or control characters", "1 bad row; nothing was imported"]
        report = ledger.import_accounts(rows[:1], datetime(2024, 1, 1, tzinfo=timezone.utc), source="mem.csv")
        assert report.created == ("x",)


def test_ten_thousand_accounts_from_stdin_in_one_transaction(tmp_path, db, capsys, monkeypatch):
    import io
    import sys

    text = "account,name,currency,country\n" + "".join(f"acct-{i:05d},Customer {i},EUR,DE\n" for i in range(10_000))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    status, out, _ = run(capsys, "account", "import", "-", "--db", str(db), "--at", AT)
    assert status == 0 and "<stdin>: 10,000 accounts created" in out
    with Ledger(db) as ledger:
        assert len(ledger.accounts()) == 10_000
        assert len(ledger.entries()) == 10_000
