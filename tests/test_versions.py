"""Dated rule versions: each period is rated with the versions in force at its start, validation
rejects overlapping or ambiguous versions where they are written, and a stored bill re-renders
byte for byte with the versions it records."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal as D
from pathlib import Path

import pytest

import ratecard
from conftest import ROOT, SHIPPED, TOY_APIS, TOY_PRICING, TOY_SETTLEMENT, write_rule_set
from ratecard.bill import Bill
from ratecard.cli import main
from ratecard.errors import RatecardError, UnknownApi
from ratecard.render import render_invoice
from ratecard.rules import check_rules, load_rules
from ratecard.usage import UsageReader, read_usage
from ratecard.versions import versions_of

EXAMPLE = ROOT / "examples" / "usage-2020-09.csv"


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    # Problems name files relative to the working directory: run where the rule sets are written.
    monkeypatch.chdir(tmp_path)


def errors(**files):
    """(file, line, column, code) of every error of the toy set with `files` changed or added."""
    write_rule_set(Path("rs"), **files)
    _, problems = check_rules("rs")
    return [(p.location.file, p.location.line, p.location.column, p.code) for p in problems if p.severity == "error"]


def line_of(bill, category):
    (line,) = [line for line in bill.lines if line.category == category]
    return line


# -- the shipped second version (SPEC §2) ------------------------------------------------------------

def test_the_shipped_rules_have_two_api_mapping_versions(shipped_rules):
    assert [m.effective_from.isoformat() for m in shipped_rules.mappings] == ["2020-09-15", "2022-08-01"]
    assert [m.source for m in shipped_rules.mappings] == ["rules/face-recognition/apis.yaml",
                                                          "rules/face-recognition/apis-2022-08.yaml"]
    assert shipped_rules.in_force("2022-07")[1] is shipped_rules.mappings[0]
    assert shipped_rules.in_force("2022-08")[1] is shipped_rules.mappings[1]
    assert shipped_rules.in_force("2030-01")[1] is shipped_rules.mappings[1]


@pytest.mark.parametrize("period", ["2020-09", "2022-07"])
def test_detect_live_face_accurate_is_an_unknown_api_before_2022_08(shipped_rules, period):
    with pytest.raises(UnknownApi) as caught:
        ratecard.rate(shipped_rules, {"DetectLiveFaceAccurate": 1200, "DetectLiveFace": 5}, period)
    assert caught.value.apis == ("DetectLiveFaceAccurate",)


def test_detect_live_face_accurate_is_billed_as_liveness_from_2022_08(shipped_rules):
    bill = ratecard.rate(shipped_rules, {"DetectLiveFaceAccurate": 2_000_000, "DetectLiveFace": 1_000_001}, "2022-08")
    line = line_of(bill, "liveness-detection")
    # Both APIs count toward the tier: 3,000,001 calls reach tier 2 (SPEC §1, 0.0006 a call).
    assert (line.calls, line.tier, line.unit_price, line.amount) == (3_000_001, 2, D("0.0006"), D("1800.0006"))
    assert [(a.api, a.billable_api, a.billable_calls) for a in line.apis] == [
        ("DetectLiveFace", True, 1_000_001), ("DetectLiveFaceAccurate", True, 2_000_000)]
    assert bill.total == D("1800.00")
    assert bill.rule_versions == {"pricing": "2020-09-15", "api-mapping": "2022-08-01", "settlement": "2020-09-15"}


def test_usage_rows_are_checked_against_the_mapping_of_their_own_period(tmp_path, shipped_rules):
    usage = tmp_path / "u.csv"
    usage.write_text("account,period,api,calls,outcome\n"
                     "acme,2020-09,DetectLiveFaceAccurate,1200,success\n"
                     "acme,2022-07,DetectLiveFaceAccurate,7,success\n"
                     "acme,2022-08,DetectLiveFaceAccurate,1200,success\n", encoding="utf-8")
    rejected = []
    reader = read_usage(usage, shipped_rules, on_reject=rejected.append)
    assert [(r.line, r.code) for r in rejected] == [(2, "unknown-api"), (3, "unknown-api")]
    assert "the API mapping in force for 2020-09 (" in rejected[0].reason and "apis.yaml)" in rejected[0].reason
    assert "the API mapping in force for 2022-07 (" in rejected[1].reason
    (august,) = reader.accounts()
    assert (august.period, august.calls) == ("2022-08", 1200)
    bill = ratecard.rate(shipped_rules, august.items, august.period, account=august.account)
    assert line_of(bill, "liveness-detection").amount == D("0.9600")  # 1,200 × 0.0008


def test_the_example_usage_names_detect_live_face_accurate_in_2020_09_as_a_bad_row(shipped_rules):
    rejected = []
    reader = UsageReader(shipped_rules, on_reject=rejected.append).read(EXAMPLE).run()
    assert [(r.line, r.code) for r in rejected] == [(30, "unknown-api")]
    assert "DetectLiveFaceAccurate" in rejected[0].reason
    assert reader.reconciliation.rows_rejected == 1 and reader.reconciliation.calls_rejected == 1200


def test_adding_the_2022_version_does_not_change_any_2020_bill(tmp_path, shipped_rules):
    # The rule set as it was before the second version: its September bills must come out the same.
    before = tmp_path / "before" / SHIPPED.name  # the same name: invoice numbers derive from it
    shutil.copytree(SHIPPED, before, ignore=shutil.ignore_patterns("apis-2022-08.yaml"))
    old_rules = load_rules(before)
    assert len(old_rules.mappings) == 1 and old_rules.fingerprint != shipped_rules.fingerprint
    for usage in UsageReader(shipped_rules, on_reject=lambda r: None).read(EXAMPLE).accounts():
        old = ratecard.rate(old_rules, usage.items, usage.period, account=usage.account)
        new = ratecard.rate(shipped_rules, usage.items, usage.period, account=usage.account)
        assert old.to_dict() == new.to_dict()  # fingerprint included: it is that of the versions in force
        policy = shipped_rules.in_force(usage.period)[2]
        assert render_invoice(old, policy, "text") == render_invoice(new, policy, "text")


# -- periods before and after a change (rule sets the engine never saw) ------------------------------

PRICE_RISE = TOY_PRICING.replace("2024-01-01", "2024-03-01").replace("unit_price: 0.10", "unit_price: 0.12")


def test_periods_before_and_after_a_price_change_are_each_billed_with_their_own_version():
    rules = load_rules(write_rule_set(Path("rs"), pricing2=PRICE_RISE))
    usage = {"RenderWidget": 50, "LookupGadget": 2}
    january, february, march, december = (ratecard.rate(rules, usage, p) for p in
                                          ("2024-01", "2024-02", "2024-03", "2024-12"))
    assert line_of(february, "widgets").amount == D("5.00")  # 50 × 0.10
    assert line_of(march, "widgets").amount == D("6.00")  # 50 × 0.12
    assert line_of(december, "widgets").amount == D("6.00")
    assert line_of(march, "gadgets").amount == line_of(february, "gadgets").amount == D("3.0")
    assert january.to_dict() == february.to_dict() | {"period": "2024-01"}
    assert february.rule_versions["pricing"] == "2024-01-01"
    assert march.rule_versions["pricing"] == "2024-03-01"
    assert february.rule_versions["api-mapping"] == march.rule_versions["api-mapping"] == "2024-01-01"
    assert february.rules_fingerprint != march.rules_fingerprint


def test_a_later_version_leaves_the_fingerprint_and_invoice_of_earlier_periods_unchanged():
    # Two folders of the same name, the second with a later version: the rule set as it was, and as it is.
    one = load_rules(write_rule_set(Path("was/rs")))
    two = load_rules(write_rule_set(Path("is/rs"), pricing2=PRICE_RISE))
    assert one.fingerprint != two.fingerprint  # the rule sets differ ...
    usage = {"RenderWidget": 150}
    feb_one, feb_two = ratecard.rate(one, usage, "2024-02"), ratecard.rate(two, usage, "2024-02")
    assert feb_one.rules_fingerprint == feb_two.rules_fingerprint == one.fingerprint  # ... February's rules do not
    assert render_invoice(feb_one, one.in_force("2024-02")[2]) == render_invoice(feb_two, two.in_force("2024-02")[2])
    assert ratecard.rate(two, usage, "2024-03").rules_fingerprint == two.fingerprint_of(*two.in_force("2024-03"))


def test_a_first_version_may_start_mid_month_and_prices_its_whole_first_period():
    rules = load_rules(write_rule_set(Path("rs"), pricing=TOY_PRICING.replace("2024-01-01", "2024-01-15")))
    assert ratecard.rate(rules, {"RenderWidget": 1}, "2024-01").rule_versions["pricing"] == "2024-01-15"
    with pytest.raises(ratecard.NoRulesInForce, match="no price book is in force for period 2023-12"):
        ratecard.rate(rules, {"RenderWidget": 1}, "2023-12")


def test_each_mapping_version_is_checked_against_the_price_book_in_force_with_it():
    later = TOY_APIS.replace("2024-01-01", "2024-05-01").replace("  gadgets:\n", "  sprockets:\n")
    assert errors(apis2=later) == [
        ("rs/apis2.yaml", 13, 3, "unknown-category"),
        ("rs/pricing.yaml", 13, 3, "unreachable-category"),  # gadgets: no billable API from 2024-05
    ]


# -- overlapping and ambiguous versions, located --------------------------------------------------------

def test_two_versions_with_the_same_date_are_rejected_at_the_later_file():
    found = errors(pricing2=TOY_PRICING.replace("unit_price: 0.10", "unit_price: 0.20"))
    assert found == [("rs/pricing2.yaml", 2, 17, "overlapping-versions")]


def test_two_versions_in_one_period_are_rejected_at_the_later_one():
    # The same month twice: whichever version priced March would be a guess.
    found = errors(pricing2=PRICE_RISE, pricing3=PRICE_RISE.replace("2024-03-01", "2024-03-20"))
    assert found == [("rs/pricing3.yaml", 2, 17, "overlapping-versions")]
    _, problems = check_rules("rs")
    assert "starts on 2024-03-20, in the same billing period (2024-03) as the version in rs/pricing2.yaml " \
           "(from 2024-03-01)" in problems[0].message
    assert "e.g. 2024-04-01" in problems[0].message


def test_a_first_version_mid_month_and_a_later_one_in_the_same_month_are_ambiguous():
    found = errors(pricing=TOY_PRICING.replace("2024-01-01", "2024-01-15"),
                   pricing2=TOY_PRICING.replace("unit_price: 0.10", "unit_price: 0.20"))
    assert found == [("rs/pricing.yaml", 2, 17, "overlapping-versions")]


def test_a_later_version_starting_mid_period_is_rejected():
    found = errors(settlement2=TOY_SETTLEMENT.replace("2024-01-01", "2024-06-15"))
    assert found == [("rs/settlement2.yaml", 2, 17, "mid-period-version")]


def test_first_versions_of_the_kinds_must_start_in_the_same_period():
    # A mapping from March only: January and February would have prices but no mapping.
    found = errors(apis=TOY_APIS.replace("2024-01-01", "2024-03-01"))
    assert found == [("rs/apis.yaml", 2, 17, "first-versions-apart")]
    _, problems = check_rules("rs")
    assert "no API mapping would be in force for 2024-01 to 2024-02" in problems[0].message


def test_first_versions_in_the_same_month_on_different_days_are_fine():
    rules = load_rules(write_rule_set(Path("rs"), apis=TOY_APIS.replace("2024-01-01", "2024-01-20")))
    assert ratecard.rate(rules, {"RenderWidget": 1}, "2024-01").rule_versions["api-mapping"] == "2024-01-20"


def test_validate_reports_every_version_problem_as_file_line_col(capsys):
    write_rule_set(Path("rs"), pricing2=TOY_PRICING, settlement2=TOY_SETTLEMENT.replace("2024-01-01", "2024-02-02"))
    assert main(["validate", "rs"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("rs/pricing2.yaml:2:17: error: effective_from: two price book versions start on "
                             "2024-01-01 (the other is rs/pricing.yaml)")
    assert out[1].startswith("rs/settlement2.yaml:2:17: error: effective_from: 2024-02-02 starts in the middle")


# -- stored bills re-render byte for byte -------------------------------------------------------------------

def _stored(bill) -> Bill:
    return Bill.from_dict(json.loads(json.dumps(bill.to_dict(), ensure_ascii=False)))


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_a_stored_bill_re_renders_byte_for_byte(shipped_rules, fmt):
    usages = list(UsageReader(shipped_rules, on_reject=lambda r: None).read(EXAMPLE).accounts())
    bills = [ratecard.rate(shipped_rules, u.items, u.period, account=u.account) for u in usages]
    bills.append(ratecard.rate(shipped_rules, {"DetectLiveFaceAccurate": 3_000_001}, "2022-08", account="late"))
    assert len(bills) == 14
    for bill in bills:
        sent = render_invoice(bill, shipped_rules.in_force(bill.period)[2], fmt)
        stored = _stored(bill)
        assert stored == bill and stored.to_dict() == bill.to_dict()
        again = render_invoice(stored, versions_of(shipped_rules, stored)[2], fmt)
        assert again == sent


def test_a_stored_bill_keeps_re_rendering_after_a_later_version_is_added(tmp_path):
    one = load_rules(write_rule_set(Path("one")))
    bill = _stored(ratecard.rate(one, {"RenderWidget": 150, "ListWidgets": 3}, "2024-02", account="a"))
    sent = render_invoice(bill, one.in_force("2024-02")[2])
    two = load_rules(write_rule_set(Path("two"), pricing2=PRICE_RISE))
    assert render_invoice(bill, versions_of(two, bill)[2]) == sent


def test_a_stored_bill_is_not_re_rendered_with_rules_that_changed_since():
    one = load_rules(write_rule_set(Path("one")))
    bill = _stored(ratecard.rate(one, {"RenderWidget": 150}, "2024-02", account="a"))
    changed = load_rules(write_rule_set(Path("changed"), settlement=TOY_SETTLEMENT.replace("bill_issue_day: 2",
                                                                                           "bill_issue_day: 3")))
    with pytest.raises(RatecardError, match="fingerprint .* they were changed since"):
        versions_of(changed, bill)
    moved = load_rules(write_rule_set(Path("moved"), pricing2=PRICE_RISE.replace("2024-03-01", "2024-02-01")))
    with pytest.raises(RatecardError, match="priced by the versions"):
        versions_of(moved, bill)


def test_from_dict_refuses_what_is_not_a_stored_bill():
    with pytest.raises(RatecardError, match="schema version"):
        Bill.from_dict({"schema_version": 99})
    with pytest.raises(RatecardError, match="not a stored bill"):
        Bill.from_dict({"schema_version": 1, "account": "a"})
