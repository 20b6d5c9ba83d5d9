"""Another process writes to the ledger while `settle` runs: a batch's accounts are rated before its
transaction (issue 10), so whatever their bill depends on is read again inside it, and an account
whose suspension, packs or buyer details changed meanwhile is rated again before anything is
recorded. The bill recorded is the one settling after the other write would give, and settling
again changes nothing. (Found by an independent review of the batched reads.)"""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

import ratecard
from ratecard.ledger import Ledger
from ratecard.rating import UsageItem
from ratecard.usage import AccountUsage

from conftest import write_rule_set
from test_packs import PACK_PRICING
from test_tax import TAX

BERLIN = ZoneInfo("Europe/Berlin")


def at(*a):
    return datetime(*a, tzinfo=BERLIN)


def _total(db, account, period):
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT total FROM bills WHERE account = ? AND period = ?", (account, period)).fetchone()[0]
    finally:
        con.close()


@pytest.fixture
def suspended_in_january(tmp_path):
    rules = ratecard.load_rules(write_rule_set(tmp_path / "toy", pricing=PACK_PRICING))
    db = tmp_path / "template.db"
    with Ledger(db, create=True) as ledger:
        for a in ("s0", "s1", "s2"):
            ledger.create_account(a, a.upper(), "EUR", at(2024, 1, 1))
            ledger.activate(a, "toy", "v1", at(2024, 1, 1))
            ledger.top_up(a, "1" if a == "s1" else "100", at(2024, 1, 1))
        # January: s1 cannot pay its 7.50 and is suspended on 2024-02-06.
        jan = [AccountUsage(a, "2024-01", (UsageItem("RenderWidget", 80),)) for a in ("s0", "s1", "s2")]
        ledger.settle(rules, jan, "2024-01", at(2024, 2, 6, 10), jobs=1)
        assert ledger.status("s1", "toy").state == "suspended"
    feb = [AccountUsage(a, "2024-02", (UsageItem("RenderWidget", 80),)) for a in ("s0", "s1", "s2")]
    return tmp_path, rules, db, feb


@pytest.mark.parametrize("after", [1, 2])
@pytest.mark.parametrize("jobs", [1, 2])
def test_a_top_up_that_resumed_the_service_meanwhile_gives_the_free_quota(suspended_in_january, meanwhile,
                                                                       jobs, after):
    tmp_path, rules, template, feb = suspended_in_january
    # In order: a top-up dated 2024-02-20 resumes s1 inside February, then February is settled.
    in_order = tmp_path / "in-order.db"
    shutil.copy(template, in_order)
    with Ledger(in_order) as ledger:
        ledger.top_up("s1", "100", at(2024, 2, 20))
        ledger.settle(rules, feb, "2024-02", at(2024, 3, 6, 10), jobs=1)
    assert _total(in_order, "s1", "2024-02") == "7.50"  # active at the end of February: 5 free, 75 × 0.10

    # The same top-up, recorded by another process after this run rated s0 (or s1), before it writes.
    race = tmp_path / f"race-{jobs}-{after}.db"
    shutil.copy(template, race)

    def top_up():
        with Ledger(race) as other:
            other.top_up("s1", "100", at(2024, 2, 20))

    meanwhile(after, top_up)
    with Ledger(race) as ledger:
        ledger.settle(rules, feb, "2024-02", at(2024, 3, 6, 10), batch=100, jobs=jobs)
    assert _total(race, "s1", "2024-02") == "7.50"
    with Ledger(race) as ledger:
        ledger.settle(rules, feb, "2024-02", at(2024, 3, 6, 11), jobs=1)
        assert [d.kind for d in ledger.documents("s1", "2024-02")] == ["invoice"]


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_invoice_is_taxed_for_the_buyer_it_prints(tmp_path, meanwhile, jobs):
    rules = ratecard.load_rules(write_rule_set(tmp_path / "taxed", tax=TAX))
    db = tmp_path / "l.db"
    with Ledger(db, create=True) as ledger:
        for a in ("t0", "t1"):
            ledger.create_account(a, a.upper(), "EUR", at(2024, 1, 1), legal_name="Buyer Ltd", country="US")
            ledger.activate(a, "taxed", "v1", at(2024, 1, 1))
            ledger.top_up(a, "100", at(2024, 1, 1))
    usage = [AccountUsage(a, "2024-01", (UsageItem("RenderWidget", 100),)) for a in ("t0", "t1")]

    def move_to_germany():
        with Ledger(db) as other:
            other.update_account("t1", country="DE")

    meanwhile(2, move_to_germany)  # after t1 is rated, before it is written
    with Ledger(db) as ledger:
        report = ledger.settle(rules, usage, "2024-01", at(2024, 2, 6, 10), jobs=jobs)
        assert not report.failed, report.failed
    con = sqlite3.connect(db)
    try:
        doc = json.loads(con.execute("SELECT document_json FROM documents WHERE account = 't1'").fetchone()[0])
    finally:
        con.close()
    assert doc["buyer"]["country"] == "DE"
    assert "19" in json.dumps(doc["bill"]["tax"]), doc["bill"]["tax"]
