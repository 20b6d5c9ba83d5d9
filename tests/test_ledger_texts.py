"""Where a settled bill's texts live: from ledger schema version 5 a bill recorded with its invoice
document keeps its bill JSON and invoice text only in the document; bills recorded before keep
their own. Every reader gives exactly the same texts either way, and the migration alters no row.

Toy prices (tests/conftest.py), volume tiers, rounded per line to the cent, half-even, in EUR:
  widgets (RenderWidget): ≤100 → 0.10, ≤1000 → 0.05;  gadgets (LookupGadget): ≤10 → 1.50
Berlin time; bills issued on the 2nd, debited from the 5th to the 9th.
"""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest

import ratecard.ledger.schema as ledger_schema
from ratecard.ledger import LATEST, Ledger, LedgerError

from conftest import ROOT, write_rule_set
from serving import READ, client, make_app
from test_documents import NUMBERED, SELLER
from test_ledger import Cli, berlin, cli, dump, write_usage  # noqa: F401  (cli is a fixture)

FORMATS = ("text", "markdown", "html", "json")


def _settle(run, tmp_path, rules, period, rows, at, name):
    usage = write_usage(tmp_path / name, [(a, period, api, n, "") for a, api, n in rows])
    return run("settle", "--period", period, "--usage", usage, "--rules", rules, "--at", at, "--format", "json")


def january(run, tmp_path):
    """The history of tests/data/ledger-v4.db, which release 4 (main at 750d0a7, ledger schema version
    4, texts in both `bills` and `documents`) wrote by running exactly this: three accounts (one with
    buyer details), January settled on the 6th (debits taken), late usage on the 12th (a
    supplementary invoice and a credit note), a manual credit note on the 14th."""
    rules = write_rule_set(tmp_path / "toy", settlement=NUMBERED, seller=SELLER)
    run("account", "create", "ada", "--currency", "EUR", "--legal-name", "Ada Analytics SARL", "--address",
        "12 rue de l'Exemple", "--address", "75001 Paris", "--country", "FR", "--tax-id", "FR12345678901",
        "--at", berlin(2024, 1, 1, 0, 0))
    for account in ("bo", "cy"):
        run("account", "create", account, "--currency", "EUR", "--at", berlin(2024, 1, 1, 0, 0))
    for account in ("ada", "bo", "cy"):
        run("account", "activate", account, "--service", "toy", "--terms", "1", "--at", berlin(2024, 1, 1, 0, 0))
        run("topup", account, "100", "--at", berlin(2024, 1, 1, 0, 0))
    first = [("ada", "RenderWidget", 100), ("bo", "RenderWidget", 50), ("bo", "LookupGadget", 6),
             ("cy", "LookupGadget", 2)]
    _settle(run, tmp_path, rules, "2024-01", first, berlin(2024, 2, 6, 9, 0), "jan.csv")
    late = [("ada", "RenderWidget", 100), ("ada", "LookupGadget", 4), ("bo", "RenderWidget", 50),
            ("bo", "LookupGadget", 3), ("cy", "LookupGadget", 2)]
    _settle(run, tmp_path, rules, "2024-01", late, berlin(2024, 2, 12, 9, 0), "jan-late.csv")
    run("credit-note", "cy", "TOY-2024-0003", "--amount", "0.50", "--reason", "service outage on 12 January",
        "--rules", rules, "--at", berlin(2024, 2, 14, 9, 0))
    return rules


def february(run, tmp_path, rules):
    """What this release does on either ledger: February settled on the 2nd (debits scheduled), one
    invoice voided, one credited, one corrected by late usage; and January corrected again (on
    bills whose texts release 4 kept in `bills`)."""
    feb = [("ada", "RenderWidget", 300), ("bo", "LookupGadget", 1), ("cy", "RenderWidget", 20)]
    _settle(run, tmp_path, rules, "2024-02", feb, berlin(2024, 3, 2, 9, 0), "feb.csv")
    run("void", "TOY-2024-0006", "--reason", "sent to the wrong account", "--rules", rules,
        "--at", berlin(2024, 3, 3, 9, 0))  # bo's
    run("credit-note", "ada", "TOY-2024-0005", "--amount", "1.00", "--reason", "goodwill", "--rules", rules,
        "--at", berlin(2024, 3, 3, 9, 0))
    late = feb[:2] + [("cy", "RenderWidget", 20), ("cy", "LookupGadget", 1)]
    _settle(run, tmp_path, rules, "2024-02", late, berlin(2024, 3, 4, 9, 0), "feb-late.csv")
    jan = [("ada", "RenderWidget", 100), ("ada", "LookupGadget", 4), ("bo", "RenderWidget", 60),
           ("bo", "LookupGadget", 3), ("cy", "LookupGadget", 3)]
    _settle(run, tmp_path, rules, "2024-01", jan, berlin(2024, 3, 4, 10, 0), "jan-later.csv")
    run("collect", "--at", berlin(2024, 3, 6, 9, 0))


def outputs(run, db, rules) -> dict:
    """Everything a user can read of the ledger's documents and entries."""
    out = {}
    con = sqlite3.connect(db)
    try:
        documents = con.execute("SELECT account, number FROM documents ORDER BY entry").fetchall()
        bills = con.execute("SELECT account, service, period FROM bills ORDER BY 1, 2, 3").fetchall()
    finally:
        con.close()
    assert documents and bills
    for account, number in documents:
        for fmt in FORMATS:
            out[("invoice show", number, fmt)] = run("invoice", "show", account, number, "--format", fmt)[1]
    for account, service, period in bills:
        out[("invoice show", account, period)] = run("invoice", "show", account, period)[1]
    for account in ("ada", "bo", "cy"):
        for fmt in ("text", "markdown", "json"):
            out[("statement", account, fmt)] = run("statement", account, "--rules", rules, "--format", fmt)[1]
        out[("account show", account)] = run("account", "show", account, "--format", "json")[1]
        out[("status", account)] = run("status", account, "--service", "toy", "--format", "json", ok=False)[1:]
    http = client(make_app(db.parent, db=db, rules=(rules,)))
    for account, number in documents:
        for fmt in FORMATS:  # (a PDF is rendered from what the HTML is)
            got = http.get(f"/v1/accounts/{account}/invoices/{number}?format={fmt}", headers=READ)
            assert got.status_code == 200, got.text
            out[("GET invoice", number, fmt)] = (got.content, got.headers.get("ratecard-rules-fingerprint"))
    for account in ("ada", "bo", "cy"):
        got = http.get(f"/v1/accounts/{account}/status?service=toy", headers=READ)
        assert got.status_code == 200, got.text
        out[("GET status", account)] = got.text
    with Ledger(db, readonly=True) as ledger:
        for account, service, period in bills:
            out[("Ledger.invoice", account, period)] = ledger.invoice(account, service, period)
        out["Ledger.bills"] = [b for b in ledger.bills()]
        out["Ledger.verify"] = ledger.verify()
    return out


def texts_of_bills(db) -> dict:
    con = sqlite3.connect(db)
    try:
        return {r[0]: r[1:] for r in con.execute("SELECT invoice_number, bill_json, invoice_text FROM bills")}
    finally:
        con.close()


def test_a_ledger_of_release_4_reads_and_settles_after_migrating_exactly_as_a_new_one(cli, tmp_path, capsys):
    old = tmp_path / "old.db"
    shutil.copy(ROOT / "tests" / "data" / "ledger-v4.db", old)
    con = sqlite3.connect(old)
    assert con.execute("SELECT max(version) FROM ratecard_schema").fetchone() == (4,)
    con.close()
    before = dump(old)

    # The same history on a new ledger, every bill recorded by this release.
    rules = january(cli, tmp_path)
    new = cli.db

    def on(db):
        return cli if db == cli.db else Cli(db, capsys)

    run_old = on(old)
    assert "schema version 5" in run_old("ledger", "migrate")[1]
    # Nothing recorded was altered: every row as release 4 left it (its bills keep their texts).
    migrated = dump(old)
    assert migrated["ratecard_schema"][:-1] == before["ratecard_schema"]
    assert {t: rows for t, rows in migrated.items() if t != "ratecard_schema"} == \
        {t: rows for t, rows in before.items() if t != "ratecard_schema"}
    assert all(j is not None and t is not None for j, t in texts_of_bills(old).values())
    # The new ledger's bills carry no texts: their documents do, the same bytes as release 4's bills.
    assert all(texts == (None, None) for texts in texts_of_bills(new).values())
    con = sqlite3.connect(new)
    in_documents = {n: (j, t) for n, j, t in con.execute(
        "SELECT number, bill_json, document_text FROM documents WHERE kind = 'invoice'")}
    con.close()
    assert in_documents == texts_of_bills(old)

    assert outputs(run_old, old, rules) == outputs(on(new), new, rules)
    # Then this release settles, voids, credits and corrects on both: still the same, byte for byte.
    february(run_old, tmp_path, rules)
    february(on(new), tmp_path, rules)
    after_old, after_new = outputs(run_old, old, rules), outputs(on(new), new, rules)
    assert after_old == after_new and after_old["Ledger.verify"] == []
    # February's corrections read January's bills (release 4's texts) and February's (the documents').
    # February's corrections read the bills of both: January's (whose texts release 4 kept in `bills`),
    # February's (whose texts are their documents').
    con = sqlite3.connect(old)
    issued = con.execute("SELECT number, refers_to, cause, amount FROM documents WHERE entry > (SELECT entry FROM "
                         "documents WHERE number = 'TOYC-2024-0002') ORDER BY entry").fetchall()
    con.close()
    assert issued == [("TOY-2024-0005", None, "settlement", "15.00"), ("TOY-2024-0006", None, "settlement", "1.50"),
                      ("TOY-2024-0007", None, "settlement", "2.00"), ("TOYC-2024-0003", "TOY-2024-0006", "void", "1.50"),
                      ("TOYC-2024-0004", "TOY-2024-0005", "manual", "1.00"),
                      ("TOY-2024-0008", "TOY-2024-0007", "correction", "1.50"),
                      ("TOY-2024-0009", "TOY-2024-0002", "correction", "1.00"),
                      ("TOY-2024-0010", "TOY-2024-0003", "correction", "1.50")]
    dumped_old, dumped_new = dump(old), dump(new)
    assert dumped_old.keys() == dumped_new.keys()
    for table in dumped_old:
        if table != "bills":
            assert dumped_old[table] == dumped_new[table], table
    bills_old, bills_new = texts_of_bills(old), texts_of_bills(new)
    assert sorted(n for n, texts in bills_old.items() if texts != (None, None)) == [
        "TOY-2024-0001", "TOY-2024-0002", "TOY-2024-0003"]  # January's, written by release 4
    assert set(bills_new.values()) == {(None, None)}


def _at_version_4(monkeypatch):
    monkeypatch.setattr(ledger_schema, "MIGRATIONS", ledger_schema.MIGRATIONS[:4])
    monkeypatch.setattr(ledger_schema, "LATEST", 4)


def test_the_migration_rewrites_only_the_bills_definition_in_place(cli, tmp_path, monkeypatch):
    shutil.copy(ROOT / "tests" / "data" / "ledger-v4.db", cli.db)
    con = sqlite3.connect(cli.db)
    schema_before = con.execute("SELECT type, name, tbl_name, rootpage, sql FROM sqlite_master ORDER BY name").fetchall()
    con.close()
    assert "schema version 5" in cli("ledger", "migrate")[1]
    con = sqlite3.connect(cli.db)
    try:
        schema_after = con.execute("SELECT type, name, tbl_name, rootpage, sql FROM sqlite_master ORDER BY name"
                                   ).fetchall()
        # The same b-trees (root pages), indexes and triggers; only the table's text changed.
        assert [r for r in schema_after if r[1] != "bills"] == [r for r in schema_before if r[1] != "bills"]
        (bills_before,) = [r for r in schema_before if r[1] == "bills"]
        (bills_after,) = [r for r in schema_after if r[1] == "bills"]
        assert bills_after[:4] == bills_before[:4] and bills_after[4] == ledger_schema._BILLS_V5
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        con.execute("PRAGMA foreign_keys = ON")
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        # Still append-only; a bill with one text and not the other is refused.
        for sql in ("UPDATE bills SET bill_json = NULL", "DELETE FROM bills"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                con.execute(sql)
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            con.execute("INSERT INTO bills SELECT account, service, '2023-12', 'X-1', currency, total, list_cost, "
                        "rules_name, rules_fingerprint, NULL, invoice_text, issued_at FROM bills LIMIT 1")
    finally:
        con.close()
    # A ledger made new by this release has the same definition.
    with Ledger(tmp_path / "fresh.db", create=True) as ledger:
        assert ledger.version == LATEST == 5
    con = sqlite3.connect(tmp_path / "fresh.db")
    assert con.execute("SELECT sql FROM sqlite_master WHERE name = 'bills'").fetchone() == (ledger_schema._BILLS_V5,)
    con.close()


def _edit_bills_by_hand(db) -> None:
    """`bills`' definition changed by someone (a column's NOT NULL dropped), as SQLite lets one do."""
    con = sqlite3.connect(db)
    con.execute("PRAGMA writable_schema = ON")
    con.execute("UPDATE sqlite_master SET sql = replace(sql, 'issued_at TEXT NOT NULL', 'issued_at TEXT') "
                "WHERE name = 'bills'")
    (version,) = con.execute("PRAGMA schema_version").fetchone()
    con.execute(f"PRAGMA schema_version = {version + 1}")
    con.commit()
    con.close()


def test_a_bills_table_not_made_by_version_1_is_refused_unchanged(tmp_path, monkeypatch):
    db = tmp_path / "odd.db"
    _at_version_4(monkeypatch)
    Ledger(db, create=True).close()
    _edit_bills_by_hand(db)
    before = dump(db)
    monkeypatch.undo()
    with pytest.raises(LedgerError, match="bills table is not the one schema version 1 created .* nothing of "
                                          "version 5 was applied: the ledger is at version 4, as it was$"):
        Ledger(db)
    assert dump(db) == before


def test_a_refusal_after_earlier_migrations_says_where_the_ledger_is_left(tmp_path, monkeypatch):
    # Each migration commits alone: a version 3 ledger is migrated to 4, then 5 refuses. The error must
    # not say that nothing was changed (found by review).
    db = tmp_path / "odd.db"
    monkeypatch.setattr(ledger_schema, "MIGRATIONS", ledger_schema.MIGRATIONS[:3])
    monkeypatch.setattr(ledger_schema, "LATEST", 3)
    Ledger(db, create=True).close()
    _edit_bills_by_hand(db)
    monkeypatch.undo()
    with pytest.raises(LedgerError, match="cannot be migrated to version 5; nothing of version 5 was applied: the "
                                          "ledger is at version 4, migrated from version 3 to 4 just now$"):
        Ledger(db)
    con = sqlite3.connect(db)
    assert con.execute("SELECT max(version) FROM ratecard_schema").fetchone() == (4,)
    con.close()


def test_ledger_check_finds_a_bill_whose_texts_are_nowhere(cli, tmp_path):
    cli.db.unlink(missing_ok=True)
    shutil.copy(ROOT / "tests" / "data" / "ledger-v4.db", cli.db)
    cli("ledger", "migrate")
    assert cli("ledger", "check")[1].startswith(f"{cli.db}: sound")
    con = sqlite3.connect(cli.db)
    con.execute("INSERT INTO bills SELECT account, service, '2023-12', 'TOY-2023-0099', currency, total, list_cost, "
                "rules_name, rules_fingerprint, NULL, NULL, issued_at FROM bills WHERE account = 'bo'")
    con.commit()
    con.close()
    code, out, err = cli("ledger", "check", ok=False)
    assert code == 1
    assert ("invoice TOY-2023-0099 has no bill JSON or invoice text: neither its bill nor an invoice document of "
            "its number carries them") in out + err
