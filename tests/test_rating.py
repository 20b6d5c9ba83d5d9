"""Rating from rule sets written here, which the engine has never seen; the bill JSON; and the rule
that no product fact lives in engine/.

Expected amounts are worked by hand in the comments next to them.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import decimal
import io
import json
import pickle
import re
import shutil
import tokenize
from datetime import date
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
import yaml

import ratecard
from ratecard.bill import ApiUsage, BillLine, TierCharge, builder
from ratecard.errors import NoRulesInForce, PeriodError, RatingError, UnknownApi
from ratecard.rating import PackBalance, UsageItem, rate

from conftest import ROOT, SHIPPED, TOY_APIS, TOY_PRICING, TOY_SETTLEMENT, write_rule_set

BILL_SCHEMA = json.loads((ROOT / "schemas" / "bill.schema.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(BILL_SCHEMA, format_checker=jsonschema.FormatChecker())
PERIOD = "2024-03"
D = Decimal


def rules_from(tmp_path, name="rules", **files):
    return ratecard.load_rules(write_rule_set(tmp_path / name, **files))


def settlement(mode="half-even", apply="per-line", quantum="0.01"):
    return TOY_SETTLEMENT.replace("rounding: { quantum: 0.01, mode: half-even, apply: per-line }",
                                  f"rounding: {{ quantum: {quantum}, mode: {mode}, apply: {apply} }}")


def line_of(bill, category):
    (line,) = [line for line in bill.lines if line.category == category]
    return line


def valid(bill) -> dict:
    data = bill.to_dict()
    VALIDATOR.validate(data)
    return data


# -- new categories, APIs and prices ------------------------------------------------------------


def test_a_new_category_reached_by_a_new_api(tmp_path):
    pricing = TOY_PRICING + """\
  teleports:
    name: Teleportation
    tiers:
      - { up_to: 5, unit_price: 2 }
      - { unit_price: 1.75 }
"""
    apis = TOY_APIS + """\
  teleports:
    billable: [Beam]
"""
    rules = rules_from(tmp_path, pricing=pricing, apis=apis)
    bill = rate(rules, {"Beam": 6, "LookupGadget": 1}, PERIOD)
    # Lines follow the price book's order: gadgets, then teleports.
    assert [line.category for line in bill.lines] == ["gadgets", "teleports"]
    beam = line_of(bill, "teleports")
    assert (beam.name, beam.calls, beam.tier, beam.unit_price, beam.amount) == ("Teleportation", 6, 2, D("1.75"), D("10.50"))
    assert [(a.api, a.calls) for a in beam.apis] == [("Beam", 6)]
    # 6 × 1.75 = 10.50, plus 1 × 1.5 = 1.5; per-line half-even to the cent: 10.50 + 1.50.
    assert (bill.subtotal, bill.total, bill.currency, bill.unit) == (D("12.00"), D("12.00"), "EUR", "request")


def _shipped_copy(tmp_path, name="shipped") -> Path:
    target = tmp_path / name
    shutil.copytree(SHIPPED, target)
    return target


def _set_face_search_tier1(folder: Path, price: str) -> None:
    path = folder / "pricing.yaml"
    text = path.read_text(encoding="utf-8")
    head, tail = text.split("  face-search:\n", 1)
    tail = tail.replace("unit_price: 0.0008", f"unit_price: {price}", 1)
    path.write_text(head + "  face-search:\n" + tail, encoding="utf-8")


def test_a_changed_price_is_billed_and_changes_the_fingerprint(tmp_path, shipped_rules):
    folder = _shipped_copy(tmp_path)
    _set_face_search_tier1(folder, "0.00085")
    changed = ratecard.load_rules(folder)
    usage = {"SearchFaces": 1000, "CompareFace": 1000}
    before, after = rate(shipped_rules, usage, "2020-09"), rate(changed, usage, "2020-09")
    assert line_of(before, "face-search").amount == D("0.8000")
    assert line_of(after, "face-search").amount == D("0.85000")  # 1000 × 0.00085
    assert line_of(after, "face-comparison").amount == line_of(before, "face-comparison").amount
    # A bill records the fingerprint of the versions in force for its period (see RuleSet.fingerprint_of).
    assert after.rules_fingerprint == changed.fingerprint_of(*changed.in_force("2020-09"))
    assert before.rules_fingerprint == shipped_rules.fingerprint_of(*shipped_rules.in_force("2020-09"))
    assert after.rules_fingerprint != before.rules_fingerprint and changed.fingerprint != shipped_rules.fingerprint


def test_fingerprint_ignores_comments_and_layout_but_not_the_digits_bills_show(tmp_path, shipped_rules):
    folder = _shipped_copy(tmp_path)
    path = folder / "pricing.yaml"
    text = path.read_text(encoding="utf-8")
    text = "# a new comment at the top\n\n" + text.replace("tier_mode: volume", "tier_mode:   volume   # same")
    text = text.replace("up_to: 3000000", "up_to: 03000000")  # the same whole number in YAML 1.2
    # Block style instead of flow style for one category, keys in another order.
    text = text.replace("      - { up_to: 15000000, unit_price: 0.0004 }\n",
                        "      - unit_price: 0.0004\n        up_to: 15000000\n", 1)
    path.write_text(text, encoding="utf-8")
    reformatted = ratecard.load_rules(folder)
    assert path.read_text(encoding="utf-8") != (SHIPPED / "pricing.yaml").read_text(encoding="utf-8")
    assert reformatted.fingerprint == shipped_rules.fingerprint
    usage = {"DetectFace": 3_000_001, "SearchFaces": 7}
    bills = [rate(r, usage, "2020-09").to_dict() for r in (reformatted, shipped_rules)]
    assert bills[0] | {"rules": None} == bills[1] | {"rules": None}  # the same bill but for the folder's name
    # 0.00050 is the same price, but a bill would show it as written: a different fingerprint.
    path.write_text(text.replace("unit_price: 0.0005", "unit_price: 0.00050"), encoding="utf-8")
    respelled = ratecard.load_rules(folder)
    assert respelled.fingerprint != shipped_rules.fingerprint
    assert rate(respelled, usage, "2020-09").total == rate(shipped_rules, usage, "2020-09").total


# -- graduated tiers ------------------------------------------------------------------------------


def test_graduated_mode_prices_each_tier_separately(tmp_path):
    rules = rules_from(tmp_path, pricing=TOY_PRICING.replace("tier_mode: volume", "tier_mode: graduated"))
    # widgets: 1–100 at 0.10, 101–1000 at 0.05, above at 0.01.

    def widgets(calls):
        return line_of(rate(rules, {"RenderWidget": calls}, PERIOD), "widgets")

    # 1500 = 100 × 0.10 (10.00) + 900 × 0.05 (45.00) + 500 × 0.01 (5.00) = 60.00
    line = widgets(1500)
    assert [(c.tier, c.calls, c.unit_price, c.amount) for c in line.charges] == [
        (1, 100, D("0.10"), D("10.00")), (2, 900, D("0.05"), D("45.00")), (3, 500, D("0.01"), D("5.00"))]
    assert (line.amount, line.tier, line.unit_price, line.tier_mode) == (D("60.00"), 3, D("0.01"), "graduated")
    # At the bound the next tier is not touched; one above it, it prices exactly one unit.
    assert [(c.tier, c.calls) for c in widgets(100).charges] == [(1, 100)]
    assert widgets(100).amount == D("10.00")
    assert [(c.tier, c.calls, c.amount) for c in widgets(101).charges] == [(1, 100, D("10.00")), (2, 1, D("0.05"))]
    assert widgets(101).amount == D("10.05")
    # 1000 = 10.00 + 900 × 0.05 = 55.00; 1001 = 55.00 + 0.01 = 55.01 (no cliff, unlike volume)
    assert (widgets(1000).amount, widgets(1001).amount) == (D("55.00"), D("55.01"))
    # Volume would bill all 1500 at 0.01 = 15.00.
    assert line_of(rate(rules_from(tmp_path, "volume"), {"RenderWidget": 1500}, PERIOD), "widgets").amount == D("15.00")


def test_graduated_zero_calls_is_one_empty_tier(tmp_path):
    rules = rules_from(tmp_path, pricing=TOY_PRICING.replace("tier_mode: volume", "tier_mode: graduated"))
    line = line_of(rate(rules, {"ListWidgets": 9}, PERIOD), "widgets")
    assert [(c.tier, c.calls, c.amount) for c in line.charges] == [(1, 0, 0)]
    assert (line.calls, line.free_calls, line.amount) == (0, 9, 0)


def test_a_category_may_override_the_books_tier_mode(tmp_path):
    pricing = TOY_PRICING.replace("    name: Gadget lookups\n", "    name: Gadget lookups\n    tier_mode: graduated\n")
    bill = rate(rules_from(tmp_path, pricing=pricing), {"LookupGadget": 12, "RenderWidget": 101}, PERIOD)
    # gadgets graduated: 10 × 1.5 + 2 × 1.25 = 17.50; widgets still volume: 101 × 0.05 = 5.05
    assert (line_of(bill, "gadgets").amount, line_of(bill, "gadgets").tier_mode) == (D("17.50"), "graduated")
    assert (line_of(bill, "widgets").amount, line_of(bill, "widgets").tier_mode) == (D("5.05"), "volume")


# -- rounding -----------------------------------------------------------------------------------

HALF_CENT = """\
kind: pricing
effective_from: 2024-01-01
currency: EUR
tier_mode: volume
categories:
  widgets:
    name: Widget rendering
    tiers:
      - { unit_price: 0.005 }
  gadgets:
    name: Gadget lookups
    tiers:
      - { unit_price: 0.001 }
"""


def test_per_line_and_per_bill_rounding_differ(tmp_path):
    usage = {"RenderWidget": 1, "LookupGadget": 5}  # 0.005 and 0.005: half a cent each
    per_line = rate(rules_from(tmp_path, "a", pricing=HALF_CENT, settlement=settlement("half-up", "per-line")),
                    usage, PERIOD)
    per_bill = rate(rules_from(tmp_path, "b", pricing=HALF_CENT, settlement=settlement("half-up", "per-bill")),
                    usage, PERIOD)
    # Per line: 0.005 → 0.01 twice = 0.02. Per bill: 0.005 + 0.005 = 0.010 → 0.01.
    assert [line.charge for line in per_line.lines] == [D("0.01"), D("0.01")]
    assert (per_line.subtotal, per_line.total, per_line.rounding_adjustment) == (D("0.010"), D("0.02"), D("0.010"))
    assert [line.charge for line in per_bill.lines] == [D("0.005"), D("0.005")]
    assert (per_bill.subtotal, per_bill.total, per_bill.rounding_adjustment) == (D("0.010"), D("0.01"), D("0.000"))
    assert per_line.rounding["apply"] == "per-line" and per_bill.rounding["apply"] == "per-bill"
    assert str(per_line.total) == "0.02" and str(per_bill.total) == "0.01"


# calls of a 0.001 price → amount; then the expected total per mode at quantum 0.01 (amounts ≥ 0, so
# ceiling behaves as up and floor as down).
ROUNDING_CASES = {
    #             0.125    0.135    0.131
    "half-up":   ("0.13", "0.14", "0.13"),
    "half-even": ("0.12", "0.14", "0.13"),
    "half-down": ("0.12", "0.13", "0.13"),
    "up":        ("0.13", "0.14", "0.14"),
    "down":      ("0.12", "0.13", "0.13"),
    "ceiling":   ("0.13", "0.14", "0.14"),
    "floor":     ("0.12", "0.13", "0.13"),
}


@pytest.mark.parametrize("mode", sorted(ROUNDING_CASES))
@pytest.mark.parametrize("apply", ["per-line", "per-bill"])
def test_each_rounding_mode(tmp_path, mode, apply):
    rules = rules_from(tmp_path, pricing=HALF_CENT, settlement=settlement(mode, apply))
    got = tuple(str(rate(rules, {"LookupGadget": calls}, PERIOD).total) for calls in (125, 135, 131))
    assert got == ROUNDING_CASES[mode]


def test_rounding_to_whole_units(tmp_path):
    rules = rules_from(tmp_path, pricing=HALF_CENT, settlement=settlement("half-up", "per-bill", quantum="1"))
    assert str(rate(rules, {"RenderWidget": 100}, PERIOD).total) == "1"  # 0.500 → 1
    assert str(rate(rules, {"RenderWidget": 99}, PERIOD).total) == "0"  # 0.495 → 0


def test_an_empty_bill_is_zero_on_the_quantum(tmp_path):
    for apply in ("per-line", "per-bill"):
        bill = rate(rules_from(tmp_path, apply, settlement=settlement(apply=apply)), {}, PERIOD)
        assert (bill.lines, str(bill.subtotal), str(bill.total)) == ((), "0", "0.00")
        valid(bill)


# -- unknown APIs and outcomes -----------------------------------------------------------------


def test_unknown_api_is_an_error_naming_it(toy_rules_dir):
    rules = ratecard.load_rules(toy_rules_dir)
    with pytest.raises(UnknownApi, match="Frobnicate") as caught:
        rate(rules, {"RenderWidget": 1, "Frobnicate": 3}, PERIOD)
    assert caught.value.apis == ("Frobnicate",)
    assert isinstance(caught.value, RatingError)


def test_unknown_api_report_lists_it_and_warns(tmp_path):
    rules = rules_from(tmp_path, apis=TOY_APIS.replace("unknown_api: error", "unknown_api: report"))
    bill = rate(rules, [("RenderWidget", 1), ("Frobnicate", 3), ("Frobnicate", 1_000, "success")], PERIOD)
    assert [(u.api, u.calls) for u in bill.unrated] == [("Frobnicate", 1003)]
    assert len(bill.warnings) == 1 and "Frobnicate" in bill.warnings[0] and "1,003" in bill.warnings[0]
    assert bill.total == D("0.10")  # only the known call is billed
    assert bill.calls == 1004  # nothing lost
    data = valid(bill)
    assert data["unrated"] == [{"api": "Frobnicate", "calls": 1003}]


def test_unknown_api_ignore_keeps_it_without_warning(tmp_path):
    rules = rules_from(tmp_path, apis=TOY_APIS.replace("unknown_api: error", "unknown_api: ignore"))
    bill = rate(rules, {"RenderWidget": 1, "Frobnicate": 3}, PERIOD)
    assert ([(u.api, u.calls) for u in bill.unrated], bill.warnings, bill.total) == ([("Frobnicate", 3)], (), D("0.10"))


def test_unknown_outcome_free(tmp_path):
    rules = rules_from(tmp_path, apis=TOY_APIS.replace("unknown_outcome: billable", "unknown_outcome: free"))
    aggregated = line_of(rate(rules, {"RenderWidget": 50}, PERIOD), "widgets")
    assert (aggregated.calls, aggregated.free_calls, aggregated.amount) == (0, 50, 0)
    bill = rate(rules, [UsageItem("RenderWidget", 50, None), UsageItem("RenderWidget", 7, ""),
                        UsageItem("RenderWidget", 3, "success"), UsageItem("RenderWidget", 2, "Quota.Partial"),
                        UsageItem("RenderWidget", 11, "Quota.Exceeded")], PERIOD)
    line = line_of(bill, "widgets")
    # success and the listed error code are billed: 5 × 0.10; unknown, empty and other codes are free.
    assert (line.calls, line.free_calls, line.amount) == (5, 68, D("0.50"))


def test_success_can_be_free_and_free_apis_stay_free(tmp_path):
    rules = rules_from(tmp_path, apis=TOY_APIS.replace("success: true", "success: false"))
    bill = rate(rules, [("RenderWidget", 4, "success"), ("RenderWidget", 2, "Quota.Partial"),
                        ("ListWidgets", 9, "Quota.Partial")], PERIOD)
    line = line_of(bill, "widgets")
    assert (line.calls, line.free_calls, line.amount) == (2, 13, D("0.20"))
    assert [(a.api, a.billable_api, a.calls, a.billable_calls) for a in line.apis] == [
        ("ListWidgets", False, 9, 0), ("RenderWidget", True, 6, 2)]


def test_calls_of_an_api_are_pooled_across_items_and_apis(toy_rules_dir):
    rules = ratecard.load_rules(toy_rules_dir)
    bill = rate(rules, [("RenderWidget", 60), ("RenderWidgetBatch", 40), ("RenderWidget", 1, "success")], PERIOD)
    line = line_of(bill, "widgets")
    # 101 calls pooled: tier 2 for all of them (volume), 101 × 0.05 = 5.05
    assert (line.calls, line.tier, line.amount) == (101, 2, D("5.05"))
    assert [(a.api, a.calls) for a in line.apis] == [("RenderWidget", 61), ("RenderWidgetBatch", 40)]


# -- free quota and resource packs (SPEC §4 semantics) -------------------------------------------

WITH_QUOTA = TOY_PRICING.replace("tier_mode: volume\n", """\
tier_mode: volume
free_quota: { units: 10 }
resource_packs: { valid_for_months: 12 }
""")


def pack(pack_id, units, expires=None, category="widgets"):
    return PackBalance(pack_id, category, units, expires)


def test_free_quota_is_used_first(tmp_path):
    rules = rules_from(tmp_path, pricing=WITH_QUOTA)
    line = line_of(rate(rules, {"RenderWidget": 5}, PERIOD), "widgets")
    assert (line.calls, line.free_quota_used, line.payg_calls, line.amount) == (5, 5, 0, 0)
    line = line_of(rate(rules, {"RenderWidget": 15}, PERIOD), "widgets")
    assert (line.free_quota_used, line.payg_calls, line.amount) == (10, 5, D("0.50"))


def test_quota_then_packs_soonest_expiring_first_then_payg_decides_the_tier(tmp_path):
    rules = rules_from(tmp_path, pricing=WITH_QUOTA)
    packs = [pack("late", 150, date(2024, 12, 1)), pack("never", 10_000), pack("soon", 100, date(2024, 6, 1)),
             pack("other", 10_000, category="gadgets")]
    line = line_of(rate(rules, {"RenderWidget": 1_200}, PERIOD, packs=packs[:1] + packs[2:]), "widgets")
    # 1,200 billable: 10 free, then 100 from "soon", 150 from "late"; 940 pay-as-you-go fall in
    # tier 2 (101–1,000): 940 × 0.05 = 47.00. The gadgets pack is not touched.
    assert line.free_quota_used == 10
    assert [(u.pack_id, u.units_used, u.units_left) for u in line.packs_used] == [("soon", 100, 0), ("late", 150, 0)]
    assert (line.payg_calls, line.tier, line.unit_price, line.amount) == (940, 2, D("0.05"), D("47.00"))
    # Without packs, 1,190 pay-as-you-go calls reach tier 3: 1,190 × 0.01 = 11.90.
    alone = line_of(rate(rules, {"RenderWidget": 1_200}, PERIOD), "widgets")
    assert (alone.payg_calls, alone.tier, alone.amount) == (1_190, 3, D("11.90"))
    # A never-expiring pack comes last and keeps what it does not need.
    line = line_of(rate(rules, {"RenderWidget": 1_200}, PERIOD, packs=packs), "widgets")
    assert [(u.pack_id, u.units_used, u.units_left) for u in line.packs_used] == [
        ("soon", 100, 0), ("late", 150, 0), ("never", 940, 9_060)]
    assert (line.payg_calls, line.tier, line.amount) == (0, 1, 0)


def test_packs_are_used_in_a_stable_order(tmp_path):
    rules = rules_from(tmp_path, pricing=WITH_QUOTA)
    packs = [pack("b", 5, date(2024, 6, 1)), pack("a", 5, date(2024, 6, 1))]
    for order in (packs, packs[::-1]):
        line = line_of(rate(rules, {"RenderWidget": 13}, PERIOD, packs=order), "widgets")
        assert [(u.pack_id, u.units_used) for u in line.packs_used] == [("a", 3)]


def test_a_pack_expired_before_the_period_is_not_used(tmp_path):
    rules = rules_from(tmp_path, pricing=WITH_QUOTA)
    line = line_of(rate(rules, {"RenderWidget": 30}, PERIOD, packs=[pack("old", 100, date(2024, 3, 1))]), "widgets")
    assert (line.packs_used, line.payg_calls) == ((), 20)


def test_a_suspended_account_gets_no_free_quota_unless_the_book_says_so(tmp_path):
    rules = rules_from(tmp_path, "plain", pricing=WITH_QUOTA)
    line = line_of(rate(rules, {"RenderWidget": 5}, PERIOD, suspended=True), "widgets")
    assert (line.free_quota_used, line.payg_calls, line.amount) == (0, 5, D("0.50"))
    generous = rules_from(tmp_path, "generous",
                          pricing=WITH_QUOTA.replace("{ units: 10 }", "{ units: 10, while_suspended: true }"))
    line = line_of(rate(generous, {"RenderWidget": 5}, PERIOD, suspended=True), "widgets")
    assert (line.free_quota_used, line.amount) == (5, 0)


def test_a_category_may_override_the_free_quota(tmp_path):
    pricing = WITH_QUOTA.replace("    name: Gadget lookups\n", "    name: Gadget lookups\n    free_quota: 0\n")
    bill = rate(rules_from(tmp_path, pricing=pricing), {"LookupGadget": 3, "RenderWidget": 3}, PERIOD)
    assert (line_of(bill, "gadgets").free_quota_used, line_of(bill, "gadgets").amount) == (0, D("4.5"))
    assert line_of(bill, "widgets").free_quota_used == 3


def test_free_quota_and_packs_cover_billable_calls_only(tmp_path):
    rules = rules_from(tmp_path, pricing=WITH_QUOTA)
    line = line_of(rate(rules, [("ListWidgets", 500), ("RenderWidget", 4, "Quota.Exceeded")], PERIOD,
                        packs=[pack("p", 50)]), "widgets")
    assert (line.calls, line.free_calls, line.free_quota_used, line.packs_used) == (0, 504, 0, ())


def test_bad_pack_balances_raise(tmp_path):
    rules = rules_from(tmp_path, pricing=WITH_QUOTA)
    for units in (-1, 1.5, None):
        with pytest.raises(RatingError, match="pack p"):
            rate(rules, {"RenderWidget": 50}, PERIOD, packs=[pack("p", units)])


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("calls", [-1, 1.5, "3", True, None, D("3"), float("nan")])
def test_bad_calls_raise_rating_error(toy_rules_dir, calls):
    rules = ratecard.load_rules(toy_rules_dir)
    for usage in ({"RenderWidget": calls}, [UsageItem("RenderWidget", calls)], [("RenderWidget", calls, "success")]):
        with pytest.raises(RatingError, match="RenderWidget"):
            rate(rules, usage, PERIOD)


@pytest.mark.parametrize("item", [("RenderWidget",), ("RenderWidget", 1, "success", "extra"), 42, "RenderWidget"])
def test_bad_usage_items_raise_rating_error(toy_rules_dir, item):
    with pytest.raises(RatingError, match="bad usage item"):
        rate(ratecard.load_rules(toy_rules_dir), [item], PERIOD)


def test_a_period_with_no_rules_in_force(toy_rules_dir, shipped_rules):
    with pytest.raises(NoRulesInForce, match="2024-01-01"):
        rate(ratecard.load_rules(toy_rules_dir), {"RenderWidget": 1}, "2023-12")
    with pytest.raises(NoRulesInForce):
        rate(shipped_rules, {"SearchFaces": 1}, "2020-08")
    # The first version prices the whole month it starts in (2020-09-15 → 2020-09).
    assert rate(shipped_rules, {"SearchFaces": 1}, "2020-09").total == D("0.00")
    with pytest.raises(PeriodError):
        rate(shipped_rules, {"SearchFaces": 1}, "2020-13")


def test_amounts_too_large_to_be_exact_raise_rating_error(toy_rules_dir):
    rules = ratecard.load_rules(toy_rules_dir)
    huge = rate(rules, {"RenderWidget": 10**40}, PERIOD)
    assert huge.total == D(10**38)  # 10^40 × 0.01, exact
    with pytest.raises(RatingError, match="too large"):
        rate(rules, {"RenderWidget": 10**250}, PERIOD)


def test_the_callers_decimal_context_does_not_matter(toy_rules_dir):
    rules = ratecard.load_rules(toy_rules_dir)
    usage = {"RenderWidget": 123_456_789_123, "LookupGadget": 7}
    expected = rate(rules, usage, PERIOD)
    with decimal.localcontext(decimal.Context(prec=3, rounding=decimal.ROUND_FLOOR)):
        assert rate(rules, usage, PERIOD) == expected
    assert line_of(expected, "widgets").amount == D("1234567891.23")  # 123,456,789,123 × 0.01


# -- the bill as data ---------------------------------------------------------------------------


MONEY = re.compile(BILL_SCHEMA["$defs"]["money"]["pattern"])


def _money_fields(data):
    yield from (data["subtotal"], data["total"], data["rounding"]["quantum"])
    for line in data["lines"]:
        yield from (line["unit_price"], line["amount"], line["charge"])
        for charge in line["tiers"]:
            yield from (charge["unit_price"], charge["amount"])


def test_bill_json_validates_and_money_is_exact_text(tmp_path, shipped_rules):
    bills = [
        rate(shipped_rules, {"SearchFaces": 3_000_001, "CreateGroup": 12, "DetectFace": 10**12}, "2020-09",
             account="acme"),
        rate(rules_from(tmp_path, "quota", pricing=WITH_QUOTA), {"RenderWidget": 1_200, "LookupGadget": 3}, PERIOD,
             packs=[pack("soon", 100, date(2024, 6, 1))]),
        rate(rules_from(tmp_path, "graduated", pricing=TOY_PRICING.replace("tier_mode: volume", "tier_mode: graduated")),
             {"RenderWidget": 1_500}, PERIOD),
        rate(rules_from(tmp_path, "report", apis=TOY_APIS.replace("unknown_api: error", "unknown_api: report")),
             {"Frobnicate": 2, "ListWidgets": 1}, PERIOD),
    ]
    for bill in bills:
        data = valid(bill)
        text = json.dumps(data)  # no Decimal or float left to serialise
        assert json.loads(text, parse_float=lambda s: pytest.fail(f"a float in the bill JSON: {s}")) == data
        for value in _money_fields(data):
            assert isinstance(value, str) and MONEY.fullmatch(value), value
        assert isinstance(data["rounding_adjustment"], str)
        assert D(data["subtotal"]) == sum((D(line["amount"]) for line in data["lines"]), D(0))
        assert D(data["total"]) - D(data["subtotal"]) == D(data["rounding_adjustment"])
        assert data["rules_fingerprint"] == bill.rules_fingerprint and data["schema_version"] == 1
    assert bills[0].to_dict()["total"] == "300001800.00"  # 10^12 × 0.0003 + 1,800.0006 → cents


def test_the_schema_rejects_what_the_bill_must_not_be(shipped_rules):
    data = rate(shipped_rules, {"SearchFaces": 3_000_001}, "2020-09").to_dict()
    for broken in ({**data, "total": 1800.0}, {**data, "total": "1.8E+3"}, {**data, "schema_version": 3},
                   {**data, "surprise": True}, {k: v for k, v in data.items() if k != "rules_fingerprint"},
                   {**data, "lines": [{**data["lines"][0], "amount": "1,800.0006"}]}):
        with pytest.raises(jsonschema.ValidationError):
            VALIDATOR.validate(broken)


def test_bills_are_plain_frozen_values(toy_rules_dir):
    rules = ratecard.load_rules(toy_rules_dir)
    bill = rate(rules, [("RenderWidget", 101), ("LookupGadget", 2)], PERIOD, account="acme")
    assert bill == rate(rules, [("LookupGadget", 2), ("RenderWidget", 101)], PERIOD, account="acme")
    with pytest.raises(dataclasses.FrozenInstanceError):
        bill.total = D(0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        bill.lines[0].amount = D(0)
    assert pickle.loads(pickle.dumps(bill)) == bill == copy.deepcopy(bill)
    assert bill.to_dict()["lines"][0]["apis"][0]["api"] == "RenderWidget"
    assert dataclasses.replace(bill, account="other").account == "other"
    with pytest.raises(TypeError):
        bill.rounding["mode"] = "changed"  # shared by every bill of the tariff, so read-only
    assert rate(rules, {"RenderWidget": 1}, PERIOD).rounding["mode"] == "half-even"
    assert repr(bill).startswith("Bill(account='acme'")


def test_lines_are_built_from_the_usage_as_it_was_when_rated(toy_rules_dir):
    rules = ratecard.load_rules(toy_rules_dir)
    usage = {"RenderWidget": 101, "ListWidgets": 4}
    items = [UsageItem("RenderWidget", 101), UsageItem("ListWidgets", 4)]
    by_dict, by_items = rate(rules, usage, PERIOD), rate(rules, items, PERIOD)
    usage["RenderWidget"] = 5  # the caller changes its mapping after rating
    items.append(UsageItem("LookupGadget", 9))
    for bill in (by_dict, by_items):
        (widgets,) = bill.lines
        assert [(a.api, a.calls, a.billable_calls) for a in widgets.apis] == [("ListWidgets", 4, 0),
                                                                           ("RenderWidget", 101, 101)]
        assert (widgets.calls, widgets.free_calls, widgets.tier, widgets.amount) == (101, 4, 2, D("5.05"))
        assert bill.lines == tuple(bill.lines) and len(bill.lines) == 1


def test_builder_makes_the_same_frozen_objects_as_the_class():
    for cls, args in ((ApiUsage, ("X", True, 3, 2)), (TierCharge, (2, 5, D("0.5"), D("2.5")))):
        built = builder(cls)(*args)
        assert type(built) is cls and built == cls(*args) and hash(built) == hash(cls(*args))
        assert repr(built) == repr(cls(*args))
        with pytest.raises(dataclasses.FrozenInstanceError):
            built.__setattr__(dataclasses.fields(cls)[0].name, None)
    assert builder(BillLine)  # every record the rating core builds qualifies

    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        value: int

        def __post_init__(self):
            raise ValueError  # builder() would skip this, so it must refuse the class

    for unsuitable in (Checked, int, dataclasses.make_dataclass("Plain", ["x"], frozen=True)):
        with pytest.raises(TypeError):
            builder(unsuitable)


def test_the_public_api():
    import subprocess
    import sys

    code = ("import sys, ratecard; assert 'jsonschema' not in sys.modules and 'ratecard.rating' not in sys.modules; "
            f"rules = ratecard.load_rules({str(SHIPPED)!r}); "
            "bill = ratecard.rate(rules, {'SearchFaces': 3000001}, period='2020-09'); "
            "assert isinstance(bill, ratecard.Bill) and issubclass(ratecard.UnknownApi, ratecard.RatecardError); "
            "assert ratecard.UsageItem and ratecard.PackBalance and ratecard.RatingError and ratecard.NoRulesInForce; "
            "print(bill.to_dict()['total'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "1800.00", "")
    with pytest.raises(AttributeError):
        ratecard.no_such_thing  # noqa: B018
    assert {"load_rules", "rate", "Bill", "UsageItem", "PackBalance", "RatingError"} <= set(ratecard.__all__)


# -- no product facts in engine/ ---------------------------------------------------------------


def _product_facts() -> set[str]:
    """Every category id and name, API name, billed error code, price, tier bound and time zone of
    the shipped rules, read from the rule files themselves."""
    facts = set()
    for path in SHIPPED.glob("*.yaml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        facts.add(str(data.get("time_zone", "")))
        facts.update(data.get("billable_outcomes", {}).get("error_codes", []))
        for cid, category in data.get("categories", {}).items():
            facts.add(cid)
            facts.add(category.get("name", ""))
            facts.update(category.get("billable", []) + category.get("free", []))
            for tier in category.get("tiers", []):
                facts.add(format(D(str(tier["unit_price"])), "f"))
                facts.add(str(tier.get("up_to", "")))
    facts.discard("")
    return facts


FACTS = _product_facts()
ENGINE_FILES = sorted((ROOT / "engine").rglob("*.py"))


def _pattern(fact: str) -> re.Pattern:
    return re.compile(r"(?<![\w.])" + re.escape(fact) + r"(?![\w])")


def test_the_fact_list_is_complete():
    # The scan is only as good as its list: the SPEC's facts must all be in it.
    for fact in ("face-search", "Face search", "SearchFaces", "CreateGroup", "InvalidParameterValue.NoFaceInPhoto",
                 "0.0005", "0.0008", "0.0003", "3000000", "15000000", "Asia/Shanghai", "Image-based liveness detection"):
        assert fact in FACTS
    assert len(ENGINE_FILES) >= 10


def _code_values(path: Path):
    """(line, text) of what the code can act on: identifiers, numbers, and string values that are not
    prose (docstrings, and messages or help containing spaces, are prose; comments are skipped)."""
    source = path.read_text(encoding="utf-8")
    docstrings = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(first.value.lineno)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name):
            yield node.lineno, node.id
        elif isinstance(node, ast.Attribute):
            yield node.lineno, node.attr
        elif isinstance(node, ast.Constant) and node.lineno not in docstrings:
            if isinstance(node.value, str) and not re.search(r"\s", node.value):
                yield node.lineno, node.value
            elif isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
                yield node.lineno, str(node.value)
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.NUMBER:  # 3_000_000 as written, and 0.0005 before float rounding
            yield token.start[0], token.string.replace("_", "")


def test_no_product_fact_in_engine_code():
    found = []
    for path in ENGINE_FILES:
        for line, value in _code_values(path):
            for fact in FACTS:
                if _pattern(fact).search(value):
                    found.append(f"{path.relative_to(ROOT)}:{line}: {fact}")
    assert not found, "product facts belong in rules/, not in engine/:\n" + "\n".join(sorted(set(found)))


def test_the_code_scan_would_catch_a_fact(tmp_path):
    leaky = tmp_path / "leaky.py"
    leaky.write_text('ZONE = "Asia/Shanghai"\nif calls <= 3_000_000:\n    price = Decimal("0.0008")\n'
                     'def f(api):\n    return api == "SearchFaces"\nPRICE = 0.0005\n', encoding="utf-8")
    caught = {fact for _, value in _code_values(leaky) for fact in FACTS if _pattern(fact).search(value)}
    assert caught == {"Asia/Shanghai", "3000000", "0.0008", "SearchFaces", "0.0005"}


def test_no_product_fact_anywhere_in_engine_text():
    found = []
    for path in ENGINE_FILES:
        text = path.read_text(encoding="utf-8")
        for fact in FACTS:
            for match in _pattern(fact).finditer(text):
                found.append(f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, match.start()) + 1}: {fact}")
    assert not found, "\n".join(sorted(found))


# -- outcomes: one rule for every surface (issue 11 item 5) ------------------------------------------

@pytest.mark.parametrize("written", ["SUCCESS", "Success", " success ", "success"])
def test_success_is_success_in_any_case_on_every_surface(written, tmp_path, capsys, monkeypatch):
    from ratecard.cli import main

    rules = ratecard.load_rules(SHIPPED)
    # The Python API
    bill = rate(rules, [UsageItem("SearchFaces", 3_000_000, written)], "2020-09")
    assert bill.total == D("2400.00")
    assert rate(rules, [("SearchFaces", 3_000_000, written)], "2020-09").total == D("2400.00")
    # quote, as a user writes it (it quoted 0.00 for SUCCESS: an unknown error code)
    assert main(["quote", f"SearchFaces:{written.strip()}=3000000", "--period", "2020-09"]) == 0
    assert "2,400.00" in capsys.readouterr().out
    # a usage file
    monkeypatch.chdir(tmp_path)
    Path("u.csv").write_text(f"account,period,api,calls,outcome\nacme,2020-09,SearchFaces,3000000,{written}\n")
    assert main(["bill", "--usage", "u.csv", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["total"] == "2400.00"


def test_an_error_code_is_case_sensitive_and_blank_is_unknown():
    rules = ratecard.load_rules(SHIPPED)
    billed = rate(rules, [("SearchFaces", 1000, "InvalidParameterValue.NoFaceInPhoto")], "2020-09").total
    free = rate(rules, [("SearchFaces", 1000, "invalidparametervalue.nofaceinphoto")], "2020-09").total
    assert (billed, free) == (D("0.80"), D("0.00"))
    assert rate(rules, [("SearchFaces", 1000, " InvalidParameterValue.NoFaceInPhoto ")], "2020-09").total == D("0.80")
    # The shipped rules bill unknown outcomes: nothing and blanks are unknown, not an error code.
    assert rate(rules, [("SearchFaces", 1000, "  ")], "2020-09").total == D("0.80")
    with pytest.raises(RatingError, match="bad outcome 7"):
        rate(rules, [("SearchFaces", 1000, 7)], "2020-09")


def test_a_bill_keeps_the_usage_it_was_rated_from_when_the_callers_mapping_changes(shipped_rules):
    # The per-API breakdown is built on first read, from the bill's own copy of the usage.
    usage = {"SearchFaces": 3_000_001, "DetectFace": 10}
    bill = rate(shipped_rules, usage, "2020-09")
    usage["SearchFaces"] = 1
    usage["CompareFace"] = 99
    del usage["DetectFace"]
    assert [a.api for line in bill.lines for a in line.apis] == ["DetectFace", "SearchFaces"]
    assert sum(a.calls for line in bill.lines for a in line.apis) == 3_000_011
    assert bill == rate(shipped_rules, {"SearchFaces": 3_000_001, "DetectFace": 10}, "2020-09")


def test_free_outcomes_a_log_repeats_are_remembered_within_a_bound_and_never_change_a_verdict(shipped_rules):
    from ratecard.rating import _FREE_OUTCOMES_KEPT, tariff

    codes = [f"Code{i}" for i in range(_FREE_OUTCOMES_KEPT + 500)]
    usage = [UsageItem("SearchFaces", 1, code) for code in codes] + [UsageItem("SearchFaces", 2, " SUCCESS ")]
    first = rate(shipped_rules, usage, "2020-09")
    remembered = tariff(shipped_rules, "2020-09").free_outcomes
    assert len(remembered) == _FREE_OUTCOMES_KEPT  # bounded, whatever the log holds
    assert " SUCCESS " not in remembered  # a billed spelling is never remembered as free
    again = rate(shipped_rules, usage, "2020-09")
    assert first == again and [line.calls for line in again.lines] == [2]
