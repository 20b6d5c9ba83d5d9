"""One rule set using every price model and adjustment at once (examples/every-model): it
validates, quotes, bills in every format, settles into the ledger, renders a rate card and diffs.

acme, 2024-01 (examples/usage-every-model-2024-01.csv), worked out by hand:
  Image tagging     1,500 calls, volume tier 2: 1,500 × 0.008 + 20 flat            =  32.00
  Text recognition  12,000 calls, graduated: 25 flat (first 10,000) + 2,000 × 0.002 =  29.00
  Batch rendering   2,600 calls: 500 free, 2,100 → 3 blocks of 1,000 × 4           =  12.00
  Bulk export       13,400 calls, graduated, nearest: 10 × 3 + round(0.68) = 1 × 10 =  40.00
  Payments          3 × 100.00: 3 × (2.90 + 0.30); 1 × 2,000.00: 58.30 held to 25  =  34.60
  Payouts           20,000.00: 1% of 10,000 + 0.5% of 10,000 + 10 flat             = 160.00
  Object storage    150.5 GB: 100 × 0.02 + 50.5 × 0.015                            =   2.7575
  lines                                                                             = 310.3575
  − 10% launch discount on tagging (list terms)                                     −   3.20
  − 15% negotiated discount on the bill (acme's terms) of 307.1575                   −  46.073625
    acme's commitment of 200: no shortfall;  − welcome credit (list terms)          −  10.00
  = 251.083875 → 251.08 USD
globex: tagging 10 × 0.01 + 5 flat = 5.10, − 10% = 4.59, commitment 50 → +45.41, − 10 credit = 40.00.
"""

from __future__ import annotations

import copy
import json
import shutil
from decimal import Decimal as D

import jsonschema
import pytest

from conftest import ROOT
from ratecard import Bill, load_rules, rate
from ratecard.cli import main
from ratecard.usage import read_usage

RULES = ROOT / "examples" / "every-model"
USAGE = ROOT / "examples" / "usage-every-model-2024-01.csv"
BILL_SCHEMA = jsonschema.Draft202012Validator(json.loads((ROOT / "schemas" / "bill.schema.json").read_text("utf-8")))


def run(capsys, *args):
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def rules():
    return load_rules(RULES)


@pytest.fixture(scope="module")
def bills(rules):
    return {u.account: rate(rules, u.items, u.period, account=u.account)
            for u in read_usage([USAGE], rules).accounts()}


def test_it_validates_and_lints_clean(capsys):
    code, out, _ = run(capsys, "validate", RULES)
    assert code == 0 and "valid — 7 categories" in out and "package, percentage" in out
    code, out, _ = run(capsys, "lint", RULES)
    assert code == 0 and "0 warnings" in out


def test_every_model_and_adjustment_priced_as_worked_out_by_hand(bills):
    acme, globex = bills["acme"], bills["globex"]
    assert [(line.category, line.model, line.amount) for line in acme.lines] == [
        ("image-tagging", "tiered", 32), ("text-recognition", "tiered", 29),
        ("batch-rendering", "package", 12), ("bulk-export", "package", 40),
        ("payments", "percentage", D("34.60")), ("payouts", "percentage", 160),
        ("storage", "tiered", D("2.7575"))]
    assert [(a.kind, a.name, a.amount, a.scope) for a in acme.adjustments] == [
        ("discount", "Launch discount on tagging", D("-3.20"), "list"),
        ("discount", "Negotiated discount", D("-46.073625"), "account"),
        ("credit", "Welcome credit", -10, "list")]
    assert (acme.subtotal, str(acme.total)) == (D("251.083875"), "251.08")
    assert [(a.kind, a.amount) for a in globex.adjustments] == [
        ("discount", D("-0.51")), ("commitment", D("45.41")), ("credit", -10)]
    assert str(globex.total) == "40.00"


def test_the_bill_json_validates_and_reads_back(bills):
    for bill in bills.values():
        data = bill.to_dict()
        BILL_SCHEMA.validate(data)
        assert data["schema_version"] == 2 and Bill.from_dict(json.loads(json.dumps(data))).to_dict() == data


def test_a_plain_bill_is_still_written_and_read_as_version_1(bills):
    shipped = load_rules(ROOT / "rules" / "face-recognition")
    data = rate(shipped, {"SearchFaces": 3_000_001}, "2020-09", account="acme").to_dict()
    assert data["schema_version"] == 1 and "adjustments" not in data and "model" not in data["lines"][0]
    BILL_SCHEMA.validate(data)
    back = Bill.from_dict(json.loads(json.dumps(data)))
    assert back.to_dict() == data and back.adjustments == () and back.lines[0].model == "tiered"
    # a bill that needs version 2 cannot claim version 1's reading of it
    assert bills["acme"].to_dict()["schema_version"] == 2


def test_quote_with_amounts_and_decimal_quantities_explains_every_part(capsys):
    code, out, err = run(capsys, "quote", "--rules", RULES, "--period", "2024-01", "--explain",
                         "TagImage=1500", "Charge=3@300", "StoreObject=150.5", "RenderBatch=2600")
    assert code == 0, err
    assert "Launch discount on tagging   -3.20  (10% of 32.00 USD)" in out
    assert "package (volume): 500 free = 0.00 USD; Tier 1 (volume): 2,100 in 3 blocks of 1,000 x 4 = 12.00 USD" in out
    assert "2.9% of 300.00 = 8.70 USD; Fixed fee: 3 x 0.3 = 0.90 USD" in out
    assert "Tier 2 (graduated): 50.5 GB x 0.015 = 0.7575 USD" in out
    assert "Welcome credit (credit on the bill, the price book's terms): 10.00 USD credit: -10.00 USD." in out
    code, out, _ = run(capsys, "quote", "--rules", RULES, "--period", "2024-01", "--format", "json", "Charge=1@100")
    BILL_SCHEMA.validate(json.loads(out))


@pytest.mark.parametrize("fmt, expected", [
    ("text", ["Tier 2 (volume): 1,500 x 0.008 + flat 20", "1 transaction held to the maximum of 25 per transaction",
              "Negotiated discount", "15% of 307.1575 USD (your terms)", "Minimum monthly spend", "TOTAL USD"]),
    ("markdown", ["2,100 in 3 blocks of 1,000 x 4", "Welcome credit: 10.00 USD credit"]),
    ("html", ["Tier 1: 1% of 10,000.00", "<tr class=\"adjustment\"><td>Negotiated discount: 15% of 307.1575 USD"]),
])
def test_bill_renders_each_fee_discount_shortfall_and_credit_as_a_line(capsys, tmp_path, fmt, expected):
    code, out, err = run(capsys, "bill", "--rules", RULES, "--usage", USAGE, "--format", fmt)
    assert code == 0, err
    for text in expected:
        assert text in out, text


def test_bill_json_lines_validate(capsys):
    code, out, _ = run(capsys, "bill", "--rules", RULES, "--usage", USAGE, "--format", "jsonl")
    assert code == 0
    for line in out.splitlines():
        if line.startswith("{") and "schema_version" in line:
            BILL_SCHEMA.validate(json.loads(line))


def test_it_settles_into_the_ledger(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "ledger.db"
    for account in ("acme", "globex"):
        assert run(capsys, "account", "create", account, "--currency", "USD", "--at", "2024-01-01T00:00:00Z",
                   "--db", db)[0] == 0
        assert run(capsys, "account", "activate", account, "--rules", RULES, "--terms", "v1",
                   "--at", "2024-01-01T00:00:00Z", "--db", db)[0] == 0
        assert run(capsys, "topup", account, "1000", "--at", "2024-01-02T00:00:00Z", "--db", db)[0] == 0
    args = ("settle", "--rules", RULES, "--period", "2024-01", "--usage", USAGE, "--at", "2024-02-01T10:00:00Z",
            "--db", db, "--format", "json")
    code, out, err = run(capsys, *args)
    assert code == 0, err
    totals = {a["account"]: a["total"] for a in json.loads(out)["accounts"]}
    assert totals == {"acme": "251.08", "globex": "40.00"}
    code, again, _ = run(capsys, *args)  # settling twice changes nothing
    assert code == 0 and {a["outcome"] for a in json.loads(again)["accounts"]} == {"already-settled"}
    code, out, _ = run(capsys, "statement", "acme", "--db", db)
    assert code == 0 and "251.08" in out


def test_rate_card_shows_every_model_and_term(capsys):
    code, out, _ = run(capsys, "ratecard", "--rules", RULES, "--period", "2024-01")
    assert code == 0
    for text in ("| 1 | calls ≤ 1,000 | 0.01 + 5 flat |", "| 1 | calls ≤ 10,000 | 25 flat |", "4 per 1,000",
                 "2.9% + 0.3 per transaction", "0.5% + 10 flat", "at most 25.00 USD per transaction",
                 "Launch discount on tagging: 10% off Image tagging from 2024-01 to 2024-03",
                 "Minimum monthly spend: every bill comes to at least 50.00 USD"):
        assert text in out, text
    code, out, _ = run(capsys, "ratecard", "--rules", RULES, "--format", "html")
    assert code == 0 and "<h2>Terms</h2>" in out


def test_diff_counts_the_adjustments(capsys, tmp_path):
    changed = tmp_path / "every-model"
    shutil.copytree(RULES, changed)
    pricing = changed / "pricing.yaml"
    pricing.write_text(pricing.read_text().replace("minimum_commitment: { amount: 50,", "minimum_commitment: { amount: 60,"))
    code, out, err = run(capsys, "diff", "--base", RULES, "--rules", changed, "--usage", USAGE, "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["total"]["change"] == "10.00"  # globex's shortfall grows by 10; acme is above both
    assert any(c["key"] == "(bill adjustments)" and D(c["change"]) == 10 for c in report["categories"])


def test_a_stored_bill_finds_the_versions_that_priced_it_account_terms_included(rules, bills):
    from ratecard.versions import versions_of

    book, _, _ = versions_of(rules, Bill.from_dict(bills["acme"].to_dict()))
    assert book.source.endswith("pricing.yaml") and bills["acme"].rule_versions["account-terms"] == "2024-01-01"


def test_a_correction_lists_a_changed_adjustment_as_a_line(bills):
    from ratecard.documents import correction

    before = bills["globex"].to_dict()
    after = copy.deepcopy(before)
    after["adjustments"] = [a for a in after["adjustments"] if a["kind"] != "credit"]  # the credit withdrawn
    after["total"] = "50.00"
    found = correction(before, after)
    assert found.kind == "supplementary-invoice" and found.amount == 10
    assert [(c.name, c.amount_before, c.amount_after) for c in found.lines] == [("Welcome credit", D("-10.00"), 0)]


def test_a_bills_line_figures_and_list_price_cost_are_the_same_with_its_lines_built_or_not(rules):
    """A settlement's list-price cost reads the rated figures without building the lines: the same
    (category, billable calls, exact amount) as the lines say, every price model and a decimal unit."""
    from ratecard import settlement as S
    from ratecard.bill import Lines
    from ratecard.rating import line_figures, tariff

    usage = {u.account: u for u in read_usage([USAGE], rules).accounts()}
    assert usage
    for account, u in usage.items():
        book = tariff(rules, u.period).book
        fresh = rate(rules, u.items, u.period, account=account)
        assert type(fresh.lines) is Lines and fresh.lines._lines is None
        figures, cost = line_figures(fresh), S.list_price_cost(book, fresh)
        assert fresh.lines._lines is None  # nothing built for them
        lines = tuple(fresh.lines)
        assert figures == [(line.category, line.calls, line.amount) for line in lines]
        assert [type(calls) for _, calls, _ in figures] == [type(line.calls) for line in lines]
        assert line_figures(fresh) == figures  # the same once they are built
        # A bill whose lines are a plain tuple (read back from JSON) gives the same.
        again = Bill.from_dict(json.loads(json.dumps(fresh.to_dict())))
        assert line_figures(again) == figures and S.list_price_cost(book, again) == cost
    assert any(line.model == "percentage" for u in usage.values()
               for line in rate(rules, u.items, u.period, account=u.account).lines)
