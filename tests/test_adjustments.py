"""Each adjustment (docs/rules.md, "Adjustments"), with amounts worked out by hand, their order,
account terms, and the checks of their rules."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from conftest import write_rule_set
from models_helpers import SETTLEMENT, bill, category_ids, mapping, pricing, rules
from ratecard.lint import lint
from ratecard.rules import check_rules

CATS = """\
alpha:
  name: Alpha
  tiers: [{ unit_price: 1 }]
beta:
  name: Beta
  tiers: [{ unit_price: 2 }]
"""


def adjusted(tmp_path, top="", usage=None, *, cats=CATS, period="2024-01", account="", **kw):
    b = bill(rules(tmp_path, cats, top, **kw), usage or {"alpha": 100, "beta": 25}, period=period, account=account)
    return b, [(a.kind, a.name, a.category, a.amount) for a in b.adjustments]


def test_no_terms_no_adjustments(tmp_path):
    b, made = adjusted(tmp_path)
    assert (made, b.subtotal, b.total) == ([], 150, D("150.00"))


def test_a_percentage_discount_on_a_category(tmp_path):
    b, made = adjusted(tmp_path, "discounts:\n  - { name: Ten off alpha, percent: 10, category: alpha }\n")
    assert made == [("discount", "Ten off alpha", "alpha", D(-10))]
    assert b.total == D("140.00")  # 100 − 10 + 50


def test_a_fixed_discount_never_takes_more_than_it_applies_to(tmp_path):
    b, made = adjusted(tmp_path, "discounts:\n  - { name: Big, amount: 150, category: alpha }\n")
    assert made == [("discount", "Big", "alpha", D(-100))]
    assert b.total == 50 and "limited to the 100.00 USD" in b.adjustments[0].note


def test_bill_discounts_apply_after_category_discounts(tmp_path):
    top = ("discounts:\n  - { name: Half the bill, percent: 50 }\n"
           "  - { name: Ten off alpha, percent: 10, category: alpha }\n")
    b, made = adjusted(tmp_path, top)
    # alpha 100 − 10 = 90, + beta 50 = 140; half of 140 = 70
    assert made == [("discount", "Ten off alpha", "alpha", D(-10)), ("discount", "Half the bill", None, D(-70))]
    assert b.total == 70


@pytest.mark.parametrize("period, applies", [("2024-01", False), ("2024-02", True), ("2024-03", True),
                                             ("2024-04", False)])
def test_a_discount_for_a_number_of_periods(tmp_path, period, applies):
    b, made = adjusted(tmp_path, "discounts:\n  - { name: Intro, percent: 20, from: 2024-02, periods: 2 }\n",
                       period=period)
    assert made == ([("discount", "Intro", None, D(-30))] if applies else [])


def test_a_discount_for_a_date_range(tmp_path):
    top = "discounts:\n  - { name: Spring, amount: 5, from: 2024-03, until: 2024-05 }\n"
    assert [adjusted(tmp_path / p, top, period=p)[0].total for p in ("2024-02", "2024-03", "2024-05", "2024-06")] \
        == [150, 145, 145, 150]


def test_maximum_then_minimum_spend_per_category(tmp_path):
    cats = CATS.replace("tiers: [{ unit_price: 1 }]", "tiers: [{ unit_price: 1 }]\n  maximum_spend: 80") \
               .replace("tiers: [{ unit_price: 2 }]", "tiers: [{ unit_price: 2 }]\n  minimum_spend: 60")
    b, made = adjusted(tmp_path, "discounts:\n  - { name: Ten off alpha, percent: 10, category: alpha }\n", cats=cats)
    # alpha: 100 − 10 = 90, held to 80; beta: 25 × 2 = 50, raised to 60
    assert made == [("discount", "Ten off alpha", "alpha", D(-10)), ("maximum-spend", "Alpha: maximum spend", "alpha", D(-10)),
                    ("minimum-spend", "Beta: minimum spend", "beta", D(10))]
    assert b.total == 140


def test_minimum_spend_needs_usage_in_the_category(tmp_path):
    cats = CATS.replace("tiers: [{ unit_price: 2 }]", "tiers: [{ unit_price: 2 }]\n  minimum_spend: 60")
    assert adjusted(tmp_path, cats=cats, usage={"alpha": 10})[1] == []


@pytest.mark.parametrize("usage, shortfall", [({"alpha": 60}, D(40)), ({"alpha": 150}, None), ({}, D(100))])
def test_minimum_commitment_shortfall_is_its_own_line(tmp_path, usage, shortfall):
    b = bill(rules(tmp_path, CATS, "minimum_commitment: { amount: 100 }\n"), usage)
    assert [(a.kind, a.name, a.amount) for a in b.adjustments] == (
        [("commitment", "Minimum commitment", shortfall)] if shortfall else [])
    assert b.total == max(100, sum(usage.values()))


def test_the_commitment_counts_what_is_left_after_discounts(tmp_path):
    b, made = adjusted(tmp_path, "discounts:\n  - { name: Half, percent: 50 }\n"
                                 "minimum_commitment: { amount: 100, name: Committed }\n")
    assert made == [("discount", "Half", None, D(-75)), ("commitment", "Committed", None, D(25))]
    assert b.total == 100


def test_credits_never_take_a_bill_below_zero_unless_the_rule_says_so(tmp_path):
    b, made = adjusted(tmp_path / "a", "credits:\n  - { name: First, amount: 20 }\n  - { name: Second, amount: 50 }\n",
                       usage={"alpha": 60})
    assert made == [("credit", "First", None, D(-20)), ("credit", "Second", None, D(-40))] and b.total == 0
    b, made = adjusted(tmp_path / "b", "credits:\n  - { name: Goodwill, amount: 50, below_zero: true }\n",
                       usage={"alpha": 30})
    assert made == [("credit", "Goodwill", None, D(-50))] and b.total == D("-20.00")


def test_credits_come_after_the_commitment(tmp_path):
    b, made = adjusted(tmp_path, "minimum_commitment: { amount: 100 }\ncredits:\n  - { name: Welcome, amount: 30 }\n",
                       usage={"alpha": 60})
    assert made == [("commitment", "Minimum commitment", None, D(40)), ("credit", "Welcome", None, D(-30))]
    assert b.total == 70


def test_per_line_rounding_rounds_each_adjustment(tmp_path):
    cats = "alpha:\n  name: Alpha\n  tiers: [{ unit_price: 0.001 }]\n"
    b = bill(rules(tmp_path, cats, "discounts:\n  - { name: Ten, percent: 10, category: alpha }\n", apply="per-line"),
             {"alpha": 333})
    (line,) = b.lines
    (discount,) = b.adjustments
    # the line 0.333 is charged 0.33; 10% of 0.33 = 0.033, charged −0.03
    assert (line.charge, discount.basis, discount.amount, discount.charge, b.total) == (
        D("0.33"), D("0.33"), D("-0.033"), D("-0.03"), D("0.30"))


ACCOUNT_TERMS = """\
kind: account-terms
effective_from: 2024-01-01
accounts:
  acme:
    discounts:
      - { name: Negotiated, percent: 20 }
    minimum_commitment: { amount: 500, name: Committed spend }
    maximum_spend: { alpha: 30 }
  globex:
    discounts:
      - { name: Pilot, percent: 50, from: 2024-03, periods: 1 }
"""


def test_account_terms_replace_the_list_terms_of_their_kind(tmp_path):
    book = rules(tmp_path, CATS, "discounts:\n  - { name: List, percent: 10 }\nminimum_commitment: { amount: 100 }\n",
                 terms=ACCOUNT_TERMS)
    acme = bill(book, {"alpha": 100, "beta": 25}, account="acme")
    # alpha held to 30 (acme's own maximum), + 50 = 80; 20% off (not the list's 10%) = 64;
    # acme's commitment of 500 (not the list's 100): shortfall 436
    assert [(a.kind, a.name, a.amount, a.scope) for a in acme.adjustments] == [
        ("maximum-spend", "Alpha: maximum spend", D(-70), "account"), ("discount", "Negotiated", D(-16), "account"),
        ("commitment", "Committed spend", D(436), "account")]
    other = bill(book, {"alpha": 100, "beta": 25}, account="initech")
    assert [(a.name, a.amount, a.scope) for a in other.adjustments] == [("List", D(-15), "list")]
    assert acme.rule_versions["account-terms"] == "2024-01-01" and acme.rules_fingerprint == other.rules_fingerprint


def test_account_terms_apply_only_in_their_window(tmp_path):
    book = rules(tmp_path, CATS, "discounts:\n  - { name: List, percent: 10 }\n", terms=ACCOUNT_TERMS)
    names = {p: [a.name for a in bill(book, {"alpha": 10}, account="globex", period=p).adjustments]
             for p in ("2024-02", "2024-03", "2024-04")}
    assert names == {"2024-02": ["List"], "2024-03": ["Pilot"], "2024-04": ["List"]}


# -- checks of the rules --------------------------------------------------------------------------


def problems(tmp_path, categories=CATS, top="", **extra):
    folder = write_rule_set(tmp_path / "rs", pricing=pricing(categories, top), apis=mapping(category_ids(categories)),
                            settlement=SETTLEMENT % "per-bill", **extra)
    _, found = check_rules(folder)
    return [(Path(p.location.file).name, p.location.line, p.location.column, p.code, p.message)
            for p in found if p.severity == "error"]


def test_a_flat_fee_without_tiers(tmp_path):
    (found,) = problems(tmp_path, CATS.replace("  tiers: [{ unit_price: 2 }]\n", ""))
    assert found[:4] == ("pricing.yaml", 10, 3, "no-tiers") and "a flat fee is a tier too" in found[4]


def test_a_package_size_of_zero(tmp_path):
    (found,) = problems(tmp_path, "render:\n  name: R\n  model: package\n  package: { size: 0, price: 4 }\n")
    assert found[:4] == ("pricing.yaml", 10, 22, "schema:exclusiveMinimum") and "greater than 0" in found[4]


def test_a_package_without_sizes(tmp_path):
    (found,) = problems(tmp_path, "render:\n  name: R\n  model: package\n  package: { price: 4 }\n")
    assert found[:4] == ("pricing.yaml", 10, 5, "package-terms") and "needs `package.size`" in found[4]


def test_a_discount_over_100_percent(tmp_path):
    (found,) = problems(tmp_path, top="discounts:\n  - { name: Too much, percent: 120 }\n")
    assert found[:4] == ("pricing.yaml", 7, 32, "discount-over-100")


def test_overlapping_discount_windows(tmp_path):
    top = ("discounts:\n  - { name: Spring, percent: 10, from: 2024-03, until: 2024-05 }\n"
           "  - { name: May, percent: 5, from: 2024-05, periods: 2 }\n"
           "  - { name: On alpha, percent: 5, category: alpha }\n")  # another target: no overlap
    (found,) = problems(tmp_path, top=top)
    assert found[:4] == ("pricing.yaml", 8, 5, "overlapping-discounts") and "'Spring'" in found[4]


def test_a_discount_on_an_unknown_category_and_bad_windows(tmp_path):
    top = ("discounts:\n  - { name: X, percent: 10, category: gamma }\n"
           "  - { name: Y, amount: 1, periods: 2, category: beta }\n  - { name: Z, amount: 1, from: 2024-05, until: 2024-02 }\n")
    assert [f[3] for f in problems(tmp_path, top=top)] == ["unknown-category", "window", "window"]


def test_account_terms_are_validated_like_the_rest(tmp_path):
    terms = ACCOUNT_TERMS.replace("maximum_spend: { alpha: 30 }", "maximum_spend: { gamma: 30 }") \
                         .replace("percent: 20", "percent: 200")
    found = problems(tmp_path, terms=terms)
    assert [(f[0], f[1], f[3]) for f in found] == [("terms.yaml", 6, "discount-over-100"),
                                                    ("terms.yaml", 8, "unknown-category")]


def test_lint_warns_of_a_maximum_below_the_minimum(tmp_path):
    cats = CATS.replace("tiers: [{ unit_price: 1 }]", "tiers: [{ unit_price: 1 }]\n  minimum_spend: 50\n  maximum_spend: 20")
    warnings = [(p.code, p.message) for p in lint(rules(tmp_path, cats))]
    assert warnings == [("max-below-min", "Alpha: the maximum spend 20.00 USD is below the minimum spend 50.00 USD; "
                         "the maximum is applied first and the minimum then raises the category to 50.00 USD, so "
                         "the maximum never applies: correct one of them")]


def test_lint_price_cliff_counts_flat_amounts(tmp_path):
    # 1,000 calls cost 1,000 × 0.01 + 20 flat = 30.00; 1,001 cost 10.01 (no flat in tier 2), and every
    # count up to 2,999 costs less than 30.00 (3,000 × 0.01 = 30.00).
    cats = "alpha:\n  name: Alpha\n  tiers:\n    - { up_to: 1000, unit_price: 0.01, flat_amount: 20 }\n" \
           "    - { unit_price: 0.01 }\n"
    (cliff,) = [p for p in lint(rules(tmp_path / "a", cats)) if p.code == "price-cliff"]
    assert "1,000 calls cost 30.00 USD but 1,001 cost 10.01 USD" in cliff.message
    assert "so every count from 1,001 to 2,999 is cheaper than 1,000 calls" in cliff.message
    # a flat amount on the higher tier can close the cliff a lower unit price opens
    closed = "alpha:\n  name: Alpha\n  tiers:\n    - { up_to: 1000, unit_price: 0.02 }\n" \
             "    - { unit_price: 0.01, flat_amount: 15 }\n"
    assert [p.code for p in lint(rules(tmp_path / "b", closed))] == []


def test_model_terms_are_checked(tmp_path):
    """A percentage counts whole transactions; a model's terms belong to that model."""
    bad = ("pay:\n  name: Pay\n  model: percentage\n  unit: { name: tx, precision: 2 }\n  percentage: { rate: 1 }\n"
           "other:\n  name: Other\n  package: { size: 10, price: 1 }\n  tiers: [{ unit_price: 1 }]\n"
           "bounded:\n  name: B\n  model: percentage\n  percentage: { rate: 1, per_transaction_min: 5, "
           "per_transaction_max: 2 }\n")
    assert [f[3] for f in problems(tmp_path, bad)] == ["percentage-terms", "model-terms", "max-below-min"]
