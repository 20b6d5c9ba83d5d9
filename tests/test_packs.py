"""Resource packs as account state, on a rule set the engine has never seen: buying one (its price
taken from the balance at once), listing them, settlement using them soonest-expiring first and
recording the units taken once (re-runs, crashes, a purchase committed meanwhile), expiry losing what
is left, statements, the schema migration, and bad purchases refused with nothing changed.

Toy prices (tests/conftest.py), volume tiers, rounded per line to the cent, half-even:
    widgets (RenderWidget): ≤100 → 0.10, ≤1000 → 0.05, above → 0.01; gadgets (LookupGadget) sell no packs.
Added here: 5 free widgets and 5 free gadgets a month; widget packs of 100 units for 4 EUR and of 1,000
for 30 EUR, valid for 3 months (1 month from the February 2024 price book on). Months are in Berlin.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
from datetime import datetime
from decimal import Decimal as D
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ratecard
import ratecard.ledger as ledger_module
import ratecard.ledger.schema as ledger_schema
from ratecard.ledger import Ledger, LedgerError, parse_pack_size
from ratecard.usage import AccountUsage, UsageItem

from conftest import ROOT, TOY_PRICING, write_rule_set
from test_ledger import Cli, dump

BERLIN = ZoneInfo("Europe/Berlin")

PACK_PRICING = TOY_PRICING.replace("tier_mode: volume\n", """\
tier_mode: volume
free_quota: { units: 5 }
resource_packs: { valid_for_months: 3 }
""").replace("""      - { unit_price: 0.01 }
""", """      - { unit_price: 0.01 }
    packs:
      - { units: 100, price: 4 }
      - { units: 1000, price: 30 }
""")
# From February the same book, but its packs are valid for one month only.
PACK_PRICING_FEB = PACK_PRICING.replace("effective_from: 2024-01-01", "effective_from: 2024-02-01").replace(
    "valid_for_months: 3", "valid_for_months: 1")


def berlin(*args) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def b(*args) -> str:
    return berlin(*args).isoformat()


@pytest.fixture
def rules_dir(tmp_path) -> Path:
    return write_rule_set(tmp_path / "toy", pricing=PACK_PRICING, **{"pricing-2024-02": PACK_PRICING_FEB})


@pytest.fixture
def rules(rules_dir):
    return ratecard.load_rules(rules_dir)


@pytest.fixture
def cli(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RATECARD_DB", raising=False)
    return Cli(tmp_path / "ledger.db", capsys)


def usage(period: str, **calls) -> list[AccountUsage]:
    """account=widgets → one account's RenderWidget calls in the period."""
    return [AccountUsage(account, period, (UsageItem("RenderWidget", n),)) for account, n in calls.items()]


def open_account(ledger: Ledger, account: str = "ada", money: str = "100", currency: str = "EUR") -> None:
    at = berlin(2024, 1, 1)
    ledger.create_account(account, account.title(), currency, at)
    ledger.activate(account, "toy", "v1", at)
    ledger.top_up(account, money, at)


def line(ledger: Ledger, account: str, period: str) -> dict:
    _, bill = ledger.invoice(account, "toy", period)
    (found,) = [x for x in bill["lines"] if x["category"] == "widgets"]
    return found


def pack_units(ledger: Ledger) -> list[tuple]:
    return ledger._read("SELECT pack, kind, period, units FROM pack_units ORDER BY entry")


# -- buying and listing ---------------------------------------------------------------------------------


def test_a_pack_is_paid_when_bought_and_expires_its_validity_later(cli, rules_dir):
    cli("account", "create", "ada", "--currency", "EUR", "--at", b(2024, 1, 1))
    cli("account", "activate", "ada", "--service", "toy", "--terms", "v1", "--at", b(2024, 1, 1))
    cli("topup", "ada", "50", "--at", b(2024, 1, 1))
    # 31 January + 3 months: April has no 31st, so the last day of April, at the same local time
    # (summer time by then: +02:00).
    out = cli("pack", "buy", "ada", "widgets", "100", "--rules", rules_dir, "--at", b(2024, 1, 31, 12, 0))[1]
    assert out == ("ada: widgets pack PK-000001 of 100 requests bought for 4.00 EUR; valid until "
                   "2024-04-30T12:00:00+02:00; balance 46.00 EUR, deposits 0.00 EUR, available 46.00 EUR\n")
    # The February book sells packs for one month: 29 February 2024 + 1 month = 29 March.
    bought = cli.json("pack", "buy", "ada", "widgets", "1,000", "--rules", rules_dir, "--at", b(2024, 2, 29, 9, 30))
    assert bought["pack"]["expires_at"] == "2024-03-29T09:30:00+01:00"
    assert bought["balance"] == "16.00"  # EUR money with its minor-unit digits (docs/json.md)

    listed = cli.json("pack", "list", "ada", "--at", b(2024, 3, 1))
    assert [(p["id"], p["units"], p["left"], p["price"], p["state"], p["expires_at"]) for p in listed["packs"]] == [
        ("PK-000002", 1000, 1000, "30.00", "active", "2024-03-29T09:30:00+01:00"),  # soonest-expiring first
        ("PK-000001", 100, 100, "4.00", "active", "2024-04-30T12:00:00+02:00")]
    assert listed["packs"][0]["last_period"] == "2024-03"
    # As of a moment before the second purchase, only the first pack existed.
    assert [p["id"] for p in cli.json("pack", "list", "ada", "--at", b(2024, 2, 1))["packs"]] == ["PK-000001"]
    text = cli("pack", "list", "ada", "--at", b(2024, 4, 1))[1]
    assert "PK-000002  toy      widgets   1,000     0     0  1,000  2024-02-29 09:30  2024-03-29 09:30  expired" \
        in text
    assert "PK-000002: expired; its 1,000 requests left still serve the calls of 2024-03" in text
    with Ledger(cli.db, readonly=True) as ledger:
        assert [e.kind for e in ledger.entries("ada")][-2:] == ["pack-purchase", "pack-purchase"]
        assert ledger.account("ada").balance == D("16.00") and ledger.verify() == []


@pytest.mark.parametrize("text, units", [("100", 100), ("1,000", 1000), ("1_000", 1000), ("100k", 100_000),
                                         ("1M", 1_000_000), ("1.5M", 1_500_000), (500, 500)])
def test_pack_sizes_are_written_as_whole_numbers(text, units):
    assert parse_pack_size(text) == units


@pytest.mark.parametrize("text", ["10m", "1.000", "1,00", "1.5", "1,000_000", ""])
def test_ambiguous_pack_sizes_are_refused(text):
    with pytest.raises(LedgerError, match="bad pack size"):
        parse_pack_size(text)


@pytest.fixture
def small(cli, rules_dir):
    at = b(2024, 1, 1)
    cli("account", "create", "ada", "--currency", "EUR", "--at", at)
    cli("account", "activate", "ada", "--service", "toy", "--terms", "v1", "--at", at)
    cli("topup", "ada", "10", "--at", b(2024, 1, 5))
    cli("account", "create", "yen", "--currency", "JPY", "--at", at)
    with Ledger(cli.db) as ledger:  # `account activate` refuses this now; an older ledger may hold it
        ledger.activate("yen", "toy", "v1", datetime.fromisoformat(at))
    cli("account", "create", "idle", "--currency", "EUR", "--at", at)
    cli("topup", "idle", "10", "--at", at)
    return rules_dir


@pytest.mark.parametrize("args, message", [
    (("ada", "sprockets", "100"), "unknown category 'sprockets' in the toy price book in force from 2024-01-01; "
                                  "packs are sold for: widgets"),
    (("ada", "gadgets", "100"), "no gadgets packs are on sale in the toy price book in force from 2024-01-01"),
    (("ada", "widgets", "500"), "no widgets pack of 500 requests is on sale in the toy price book in force from "
                                "2024-01-01; the sizes on sale are: 100 (4.00 EUR), 1,000 (30.00 EUR)"),
    (("ada", "widgets", "1.5k"), "no widgets pack of 1,500 requests is on sale"),
    (("ada", "widgets", "1000"), "ada cannot pay for the pack: it costs 30.00 EUR and only 10.00 EUR is available"),
    (("idle", "widgets", "100"), "account idle has not activated toy"),
    (("yen", "widgets", "100"), "the account is in JPY but toy sells packs in EUR"),
    (("ghost", "widgets", "100"), "unknown account 'ghost'"),
    (("ada", "widgets", "100", "--at", "2023-12-31T00:00:00+01:00"), "no price book is in force for period 2023-12"),
    (("ada", "widgets", "100", "--at", "2024-01-03T00:00:00+01:00"), "its entries are recorded in time order"),
])
def test_bad_purchases_are_refused_and_change_nothing(cli, small, args, message):
    before = dump(cli.db)
    extra = () if "--at" in args else ("--at", b(2024, 1, 15))
    code, _, err = cli("pack", "buy", *args, *extra, "--rules", small, ok=False)
    assert code == 1 and message in err and "Traceback" not in err
    assert dump(cli.db) == before


@pytest.mark.parametrize("size, says", [("lots", "'lots' is not a count"), ("10m", "`m` could mean milli or million")])
def test_an_unreadable_pack_size_is_a_command_line_mistake(cli, small, size, says):
    before = dump(cli.db)
    code, _, err = cli("pack", "buy", "ada", "widgets", size, "--at", b(2024, 1, 15), "--rules", small, ok=False)
    assert code == 2 and says in err and "Traceback" not in err
    assert dump(cli.db) == before


def test_a_purchase_with_a_reference_is_recorded_once(cli, small):
    buy = ("pack", "buy", "ada", "widgets", "100", "--rules", small, "--reference", "order-7")
    cli(*buy, "--at", b(2024, 1, 15))
    before = dump(cli.db)
    assert "already recorded as pack PK-000001; nothing was changed" in cli(*buy, "--at", b(2024, 1, 16))[1]
    code, _, err = cli("pack", "buy", "ada", "widgets", "1000", "--rules", small, "--reference", "order-7",
                       "--at", b(2024, 1, 16), ok=False)
    assert code == 1 and "was recorded as pack PK-000001, 100 requests of toy widgets, not 1,000" in err
    assert dump(cli.db) == before


# -- settlement -------------------------------------------------------------------------------------------


def test_packs_serve_soonest_expiring_first_and_settling_again_takes_nothing(tmp_path, rules):
    with Ledger(tmp_path / "l.db", create=True) as ledger:
        open_account(ledger)
        # Bought first but expiring later (3 months: 20 April), then a one-month pack (3 March).
        late = ledger.buy_pack(rules, "ada", "widgets", "1000", berlin(2024, 1, 20, 8)).pack
        soon = ledger.buy_pack(rules, "ada", "widgets", "100", berlin(2024, 2, 3, 8)).pack
        assert (late.id, soon.id) == ("PK-000001", "PK-000002")
        assert soon.expires_at < late.expires_at
        # January: 40 widgets, 5 free, 35 from the only pack bought by then (not the February one).
        ledger.settle(rules, usage("2024-01", ada=40), "2024-01", berlin(2024, 2, 6, 10))
        assert line(ledger, "ada", "2024-01")["packs_used"] == [{"pack_id": "PK-000001", "units_used": 35,
                                                                  "units_left": 965}]
        # February: 1,200 widgets: 5 free, 100 from PK-000002 (expires first), 965 from PK-000001 and
        # 130 pay-as-you-go: tier 2, 130 × 0.05 = 6.50.
        report = ledger.settle(rules, usage("2024-02", ada=1200), "2024-02", berlin(2024, 3, 6, 10))
        february = line(ledger, "ada", "2024-02")
        assert february["packs_used"] == [{"pack_id": "PK-000002", "units_used": 100, "units_left": 0},
                                          {"pack_id": "PK-000001", "units_used": 965, "units_left": 0}]
        assert (february["free_quota_used"], february["payg_calls"], february["tier"]) == (5, 130, 2)
        assert report.accounts[0].total == D("6.50")
        # 100 - 4 - 30 = 66 after the packs; - 0.00 for January (all prepaid); - 6.50.
        assert ledger.account("ada").balance == D("59.50")
        assert [(p.id, p.used, p.left, p.state) for p in ledger.packs("ada", at=berlin(2024, 3, 6, 10))] == [
            ("PK-000002", 100, 0, "expired"), ("PK-000001", 1000, 0, "used-up")]

        taken = pack_units(ledger)
        assert taken == [("PK-000001", "pack-use", "2024-01", 35), ("PK-000002", "pack-use", "2024-02", 100),
                         ("PK-000001", "pack-use", "2024-02", 965)]
        before = dump(ledger.path)
        for period, calls, at in (("2024-01", 40, berlin(2024, 4, 1)), ("2024-02", 1200, berlin(2024, 4, 1))):
            again = ledger.settle(rules, usage(period, ada=calls), period, at)
            assert [(a.outcome, a.problem) for a in again.accounts] == [("already-settled", "")]
        assert dump(ledger.path) == before
        assert ledger.verify() == []


def test_a_pack_serves_its_last_month_then_what_is_left_is_lost(tmp_path, rules, capsys):
    db = tmp_path / "l.db"
    with Ledger(db, create=True) as ledger:
        open_account(ledger)
        pack = ledger.buy_pack(rules, "ada", "widgets", "100", berlin(2024, 1, 31, 12)).pack
        assert pack.expires_at == berlin(2024, 4, 30, 12)
        # January: 55 widgets, 5 free, 50 from the pack. February and March: nothing used.
        ledger.settle(rules, usage("2024-01", ada=55), "2024-01", berlin(2024, 2, 6))
        ledger.settle(rules, (), "2024-02", berlin(2024, 3, 6))
        ledger.settle(rules, (), "2024-03", berlin(2024, 4, 6))
        # After the expiry, before April is settled: expired, its 50 units still serving April's calls.
        [seen] = ledger.packs("ada", at=berlin(2024, 5, 1))
        assert (seen.state, seen.left, seen.lost, seen.last_period) == ("expired", 50, 0, "2024-04")
        # April (the month it expires in): 30 widgets, 5 free, 25 from the pack; the other 25 are lost.
        ledger.settle(rules, usage("2024-04", ada=30), "2024-04", berlin(2024, 5, 6))
        assert line(ledger, "ada", "2024-04")["packs_used"] == [{"pack_id": "PK-000001", "units_used": 25,
                                                                  "units_left": 25}]
        assert pack_units(ledger)[-2:] == [("PK-000001", "pack-use", "2024-04", 25),
                                           ("PK-000001", "pack-expired", "2024-04", 25)]
        # May: 60 widgets, 5 free, 55 pay-as-you-go × 0.10 = 5.50: the pack is gone.
        report = ledger.settle(rules, usage("2024-05", ada=60), "2024-05", berlin(2024, 6, 6))
        assert report.accounts[0].total == D("5.50")
        assert line(ledger, "ada", "2024-05")["packs_used"] == []
        [gone] = ledger.packs("ada", at=berlin(2024, 6, 6))
        assert (gone.used, gone.lost, gone.left, gone.state) == (75, 25, 0, "expired")
        expired = [e for e in ledger.entries("ada") if e.kind == "pack-expired"]
        assert [e.reason for e in expired] == [
            "pack PK-000001 (widgets) expired 2024-04-30T12:00:00+02:00: 25 unused requests lost"]
        assert ledger.verify() == []

    cli = Cli(db, capsys)
    text = cli("statement", "ada", "--period", "2024-04", "--time-zone", "Europe/Berlin")[1]
    assert "Resource packs serving 2024-04" in text
    assert "used 25, lost 25, left 0 (expired)" in text
    may = cli("statement", "ada", "--period", "2024-05", "--time-zone", "Europe/Berlin")[1]
    assert "2024-05-06 00:00  pack-use" in may and "2024-05-06 00:00  pack-expired" in may
    assert "Resource packs" not in may


def test_an_expired_pack_keeps_its_units_for_the_periods_it_serves_that_are_not_settled_yet(tmp_path, rules):
    # issue 11 item 2: May's settlement wrote the pack off although January to April, which it
    # serves, were not settled yet; April, settled late, then paid for calls the pack covers.
    with Ledger(tmp_path / "l.db", create=True) as ledger:
        open_account(ledger)
        ledger.buy_pack(rules, "ada", "widgets", "100", berlin(2024, 1, 31, 12))  # expires 30 April
        # May first: 60 widgets, 5 free, 55 × 0.10 = 5.50; the expired pack serves none of them, and
        # nothing is lost yet.
        report = ledger.settle(rules, usage("2024-05", ada=60), "2024-05", berlin(2024, 6, 6))
        assert report.accounts[0].total == D("5.50")
        assert pack_units(ledger) == []
        # April, late: its pack units go to the earlier periods first, so it waits for them.
        late = ledger.settle(rules, usage("2024-04", ada=30), "2024-04", berlin(2024, 6, 7))
        [refused] = late.failed
        assert not late.complete and "resource pack PK-000001, which also serves 2024-01, 2024-02, 2024-03" in \
            refused.problem and "settle 2024-01 first" in refused.problem
        assert ledger.invoice("ada", "toy", "2024-04") is None
        for period in ("2024-01", "2024-02", "2024-03"):
            ledger.settle(rules, (), period, berlin(2024, 6, 8))
            assert pack_units(ledger) == []  # April still to come
        # Now April: 30 widgets, 5 free, 25 from the pack (0.00), and the last 75 are lost with it.
        report = ledger.settle(rules, usage("2024-04", ada=30), "2024-04", berlin(2024, 6, 9))
        assert report.complete and report.accounts[0].total == D("0.00")
        assert pack_units(ledger) == [("PK-000001", "pack-use", "2024-04", 25),
                                      ("PK-000001", "pack-expired", "2024-04", 75)]
        assert ledger.verify() == []


def test_the_statement_shows_purchases_usage_and_what_the_period_cost(cli, rules_dir):
    at = b(2024, 1, 1)
    cli("account", "create", "ada", "--currency", "EUR", "--at", at)
    cli("account", "activate", "ada", "--service", "toy", "--terms", "v1", "--at", at)
    cli("topup", "ada", "100", "--at", at)
    cli("pack", "buy", "ada", "widgets", "100", "--rules", rules_dir, "--at", b(2024, 1, 10, 9))
    usage_file = cli.db.parent / "u.csv"
    usage_file.write_text("account,period,api,calls\nada,2024-01,RenderWidget,125\n", encoding="utf-8")
    # 125 widgets: 5 free, 100 from the pack, 20 × 0.10 = 2.00.
    cli("settle", "--period", "2024-01", "--usage", usage_file, "--rules", rules_dir, "--at", b(2024, 2, 6, 10))

    text = cli("statement", "ada", "--period", "2024-01", "--rules", rules_dir)[1]
    assert re.search(r"\n2024-01-10 09:00  pack-purchase +toy +-4\.00 +96\.00\n", text)
    charges = text.split("Charges for 2024-01")[1].split("Resource packs")[0].splitlines()
    assert charges[1].startswith("  pack PK-000001: widgets, 100 requests") and charges[1].endswith(" 4.00")
    assert "invoice INV-000001" in charges[2] and "(issued 2024-02-06, debit applied)" in charges[2]
    assert charges[2].endswith(" 2.00") and charges[3].endswith(" 6.00")  # 4.00 + 2.00
    assert "used 100, lost 0, left 0 (used up)" in text
    february = cli("statement", "ada", "--period", "2024-02", "--rules", rules_dir)[1]
    assert "pack-use" in february and "pack PK-000001 (widgets): 100 requests used for 2024-01; 0 left" in february

    data = cli.json("statement", "ada", "--period", "2024-01", "--rules", rules_dir)
    assert [(c["kind"], c["amount"]) for c in data["charges"]] == [("pack-purchase", "4.00"), ("invoice", "2.00")]
    assert data["charges_total"] == "6.00"
    assert [(p["id"], p["used"], p["left"]) for p in data["packs"]] == [("PK-000001", 100, 0)]
    markdown = cli("statement", "ada", "--rules", rules_dir, "--format", "markdown")[1]
    assert "| PK-000001 | toy | widgets | 100 | 2024-01-10 09:00 | 2024-04-10 09:00 | 100 | 0 | 0 | used up |" \
        in markdown
    assert "| pack-use | toy | pack PK-000001 (widgets): 100 requests used for 2024-01; 0 left |" in markdown


def test_a_purchase_committed_while_a_settlement_rates_is_used(tmp_path, rules, meanwhile):
    db = tmp_path / "l.db"
    with Ledger(db, create=True) as ledger:
        open_account(ledger)

    def buy():
        with Ledger(db) as other:  # another process, dated within January
            other.buy_pack(rules, "ada", "widgets", "100", berlin(2024, 1, 25))

    meanwhile(1, buy)
    with Ledger(db) as ledger:
        # Rated without a pack (80 × 0.10 = 7.50 after 5 free); written with the pack bought meanwhile.
        report = ledger.settle(rules, usage("2024-01", ada=80), "2024-01", berlin(2024, 2, 6))
        assert report.accounts[0].total == D("0.00")
        assert line(ledger, "ada", "2024-01")["packs_used"] == [{"pack_id": "PK-000001", "units_used": 75,
                                                                  "units_left": 25}]
        assert ledger.verify() == []


# -- crashes: a settlement that stops anywhere takes each pack's units once --------------------------------


class Crash(BaseException):
    pass


@pytest.fixture(scope="module")
def crash_template(tmp_path_factory):
    root = tmp_path_factory.mktemp("pack-crash")
    rules = ratecard.load_rules(write_rule_set(root / "toy", pricing=PACK_PRICING))
    template = root / "template.db"
    with Ledger(template, create=True) as ledger:
        for account in ("ada", "bo"):
            open_account(ledger, account)
            ledger.buy_pack(rules, account, "widgets", "1000", berlin(2024, 1, 10))
    return root, rules, template


def copy(template: Path, to: Path) -> Path:
    to.write_bytes(template.read_bytes())
    return to


# ada: 705 widgets, 5 free, 700 from her pack; bo: 1,105, 5 free, 1,000 from his, 100 × 0.10 = 10.00.
CRASH_USAGE = {"ada": 705, "bo": 1105}


def check_once(db: Path) -> None:
    with Ledger(db, readonly=True) as ledger:
        assert ledger.verify() == []
        assert pack_units(ledger) == [("PK-000001", "pack-use", "2024-01", 700),
                                      ("PK-000002", "pack-use", "2024-01", 1000)]
        assert [p.left for a in ("ada", "bo") for p in ledger.packs(a)] == [300, 0]
        assert (ledger.account("ada").balance, ledger.account("bo").balance) == (D("70.00"), D("60.00"))


@pytest.mark.parametrize("step, nth", [("rated", 1), ("billed", 1), ("debited", 1), ("committed", 1),
                                       ("rated", 2), ("billed", 2), ("debited", 2)])
def test_a_settlement_stopped_at_any_step_and_run_again_takes_pack_units_once(crash_template, tmp_path, monkeypatch,
                                                                               step, nth):
    root, rules, template = crash_template
    db = copy(template, tmp_path / "l.db")
    seen = []

    def crash(name):
        seen.append(name)
        if seen.count(step) == nth:
            raise Crash(name)

    monkeypatch.setattr(ledger_module, "_checkpoint_hook", crash)
    with Ledger(db) as ledger, pytest.raises(Crash):
        ledger.settle(rules, usage("2024-01", **CRASH_USAGE), "2024-01", berlin(2024, 2, 6))
    monkeypatch.setattr(ledger_module, "_checkpoint_hook", None)
    with Ledger(db) as ledger:
        for _ in range(2):
            ledger.settle(rules, usage("2024-01", **CRASH_USAGE), "2024-01", berlin(2024, 2, 6))
    check_once(db)


DRIVER = """\
import os, signal, sys
import ratecard.ledger as ledger
from ratecard.cli import main

def hook(name):
    if name == "billed":  # inside the transaction: the bill and its pack units are written, not committed
        os.kill(os.getpid(), signal.SIGKILL)

ledger._checkpoint_hook = hook
sys.exit(main(sys.argv[1:]))
"""


def test_a_settlement_killed_inside_its_transaction_leaves_no_pack_units(crash_template, tmp_path):
    root, rules, template = crash_template
    db = copy(template, tmp_path / "killed.db")
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER, encoding="utf-8")
    usage_file = tmp_path / "u.csv"
    usage_file.write_text("account,period,api,calls\n" + "".join(f"{a},2024-01,RenderWidget,{n}\n"
                                                                for a, n in CRASH_USAGE.items()), encoding="utf-8")
    args = ["settle", "--period", "2024-01", "--usage", str(usage_file), "--rules", str(root / "toy"),
            "--at", b(2024, 2, 6), "--db", str(db)]
    proc = subprocess.run([sys.executable, str(driver), *args], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    with Ledger(db, readonly=True) as ledger:
        assert pack_units(ledger) == [] and ledger.bills() == [] and ledger.verify() == []
    from ratecard.cli import main

    assert main(args) == 0
    check_once(db)


# -- the schema ---------------------------------------------------------------------------------------------


def test_a_version_1_ledger_is_migrated_and_can_then_hold_packs(tmp_path, rules, monkeypatch):
    db = tmp_path / "old.db"
    monkeypatch.setattr(ledger_schema, "MIGRATIONS", ledger_schema.MIGRATIONS[:1])
    monkeypatch.setattr(ledger_schema, "LATEST", 1)
    with Ledger(db, create=True) as ledger:
        open_account(ledger)
        assert ledger.version == 1
    before = dump(db)
    assert "packs" not in before
    monkeypatch.undo()
    with pytest.raises(LedgerError, match="ratecard ledger migrate"):
        Ledger(db, readonly=True)
    with Ledger(db) as ledger:
        assert ledger.version == ledger_schema.LATEST
        assert ledger.buy_pack(rules, "ada", "widgets", "100", berlin(2024, 1, 2)).pack.id == "PK-000001"
        assert ledger.verify() == []
    after = dump(db)
    assert after["entries"][:len(before["entries"])] == before["entries"]
    assert {"pack-purchase", "pack-use", "pack-expired"} <= {k for k, _ in after["entry_kinds"]}


def test_packs_and_their_units_are_append_only_and_verify_catches_units_taken_twice(tmp_path, rules):
    db = tmp_path / "l.db"
    with Ledger(db, create=True) as ledger:
        open_account(ledger)
        ledger.buy_pack(rules, "ada", "widgets", "100", berlin(2024, 1, 2))
        ledger.settle(rules, usage("2024-01", ada=65), "2024-01", berlin(2024, 2, 6))
    con = sqlite3.connect(db)
    for sql in ("UPDATE packs SET units = 1000", "DELETE FROM packs", "UPDATE pack_units SET units = 1",
                "DELETE FROM pack_units"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute(sql)
    with pytest.raises(sqlite3.IntegrityError):  # the same pack, kind and period twice
        con.execute("INSERT INTO pack_units SELECT pack, kind, period, units, entry + 1000 FROM pack_units")
    # Forged: the period's units taken again under another period, with an entry of its own.
    con.execute("INSERT INTO entries (account, at, kind, service, period, amount, frozen_change, balance_after, "
                "frozen_after, reason, ref) SELECT account, at, kind, service, '2024-02', amount, frozen_change, "
                "balance_after, frozen_after, reason, ref FROM entries WHERE kind = 'pack-use'")
    con.execute("INSERT INTO pack_units SELECT pack, kind, '2024-02', units, (SELECT max(seq) FROM entries) "
                "FROM pack_units")
    con.commit()
    con.close()
    with Ledger(db, readonly=True) as ledger:
        assert ledger.verify() == ["pack PK-000001 holds 100 units but 120 were used or lost"]


def test_pack_list_without_packs_and_for_an_unknown_account(cli, small):
    out = cli("pack", "list", "ada", "--at", b(2024, 2, 1))[1]
    assert out == "ada: no resource packs as of 2024-02-01T00:00:00+01:00\n"
    assert cli.json("pack", "list", "ada", "--at", b(2024, 2, 1))["packs"] == []
    code, _, err = cli("pack", "list", "ghost", ok=False)
    assert code == 1 and "unknown account 'ghost'" in err


# -- issue 11 item 2: the order periods are settled in changes no money ---------------------------------

PERIODS = ("2024-01", "2024-02", "2024-03", "2024-04", "2024-05")


def _settle_in(order, calls, rules, db: Path) -> tuple[dict, D]:
    """Settle PERIODS trying them in `order`, then again those refused, until all are recorded: each
    period's bill as recorded and ada's balance at the end."""
    from datetime import timedelta

    with Ledger(db, create=True) as ledger:
        open_account(ledger, money="1000")
        ledger.buy_pack(rules, "ada", "widgets", "100", berlin(2024, 1, 31, 12))  # serves January to April
        ledger.buy_pack(rules, "ada", "widgets", "1000", berlin(2024, 2, 10, 12))  # one month: February, March
        clock, left = berlin(2024, 6, 6), list(order)
        for _ in PERIODS:
            for period in list(left):
                clock += timedelta(hours=1)
                report = ledger.settle(rules, usage(period, ada=calls[period]), period, clock)
                if report.complete:
                    left.remove(period)
        assert left == [] and ledger.verify() == []
        return {p: ledger.invoice("ada", "toy", p)[1] for p in PERIODS}, ledger.account("ada").balance


def test_a_later_period_settled_first_leaves_an_earlier_one_its_pack_units(tmp_path, rules):
    calls = {"2024-01": 0, "2024-02": 0, "2024-03": 0, "2024-04": 80, "2024-05": 80}
    in_order = _settle_in(PERIODS, calls, rules, tmp_path / "a.db")
    reversed_ = _settle_in(PERIODS[::-1], calls, rules, tmp_path / "b.db")
    assert in_order == reversed_
    # April: 80 widgets, 5 free, 75 from the January pack: 0.00, whichever was settled first.
    assert D(reversed_[0]["2024-04"]["total"]) == D("0.00")
    assert D(reversed_[0]["2024-05"]["total"]) == D("7.50")  # 75 × 0.10: the pack served April only


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(PERIODS),
       calls=st.fixed_dictionaries({p: st.integers(0, 1300) for p in PERIODS}))
def test_any_settlement_order_records_the_money_of_settling_in_order(tmp_path_factory, rules, order, calls):
    root = tmp_path_factory.mktemp("order")
    assert _settle_in(order, calls, rules, root / "any.db") == _settle_in(PERIODS, calls, rules, root / "in.db")
