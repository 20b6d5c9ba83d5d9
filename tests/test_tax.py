"""Taxes as rules (`kind: tax`): one hand-computed example per mode, rounding per line against per
invoice, the effective date, located rule problems, and taxed documents through the ledger.

Toy prices (tests/conftest.py), volume tiers, rounded per line to the cent (half-even), in EUR:
  widgets (RenderWidget): ≤100 → 0.10;  gadgets (LookupGadget): ≤10 → 1.50
so 100 widgets + 4 gadgets = 10.00 + 6.00 = 16.00 before tax. The tax rules below are this test's
own (no shipped rule set has a tax file).
"""

from __future__ import annotations

import json
from decimal import Decimal as D

import jsonschema
import pytest

import ratecard
from ratecard.bill import Bill
from ratecard.billrun import render_bill
from ratecard.errors import RuleSetInvalid
from ratecard.model import Party
from ratecard.tax import TaxError

from conftest import ROOT, TOY_SETTLEMENT, write_rule_set
from test_ledger import berlin, cli, write_usage  # noqa: F401  (cli is a fixture)

TAX = """\
kind: tax
effective_from: 2024-01-01
prices: exclusive
rounding: { mode: half-up, apply: per-invoice }
rates:
  - { country: DE, rate: 19, label: "VAT 19%" }
  - { country: FR, rate: 20, label: "TVA 20%" }
  - { country: US, rate: 0, label: "No sales tax" }
  - { country: US, region: CA, rate: 7.25, label: "CA sales tax 7.25%" }
exemptions:
  - categories: [gadgets]
    countries: [FR]
    label: "Exonéré"
    wording: "Exonération de TVA (toy rule for tests)."
reverse_charge:
  countries: [FR, DE]
  label: "Reverse charge"
  wording: "Reverse charge: the recipient accounts for the VAT (toy wording for tests)."
"""

USAGE = {"RenderWidget": 100, "LookupGadget": 4}
BILL_SCHEMA = jsonschema.Draft202012Validator(json.loads((ROOT / "schemas" / "bill.schema.json").read_text("utf-8")))


def rules_with(tmp_path, tax=TAX, **extra):
    return ratecard.load_rules(write_rule_set(tmp_path / "taxed", tax=tax, **extra))


def buyer(country, tax_id=""):
    return Party("Buyer Ltd", ("1 Road",), country, tax_id)


def taxed(rules, usage=USAGE, period="2024-01", who=None):
    bill = ratecard.rate(rules, usage, period, account="ada", buyer=who)
    BILL_SCHEMA.validate(bill.to_dict())
    return bill


# -- one hand-computed example per mode ---------------------------------------------------------------

def test_exclusive_prices_add_the_buyers_rate(tmp_path):
    bill = taxed(rules_with(tmp_path), who=buyer("DE"))
    # 16.00 net × 19% = 3.04; gross 19.04, which is the total the ledger debits.
    assert (bill.tax.net, bill.tax.tax, bill.tax.gross, bill.total) == (D("16.00"), D("3.04"), D("19.04"), D("19.04"))
    (line,) = bill.tax.lines
    assert (line.label, line.treatment, line.rate, line.basis, line.tax) == ("VAT 19%", "standard", 19, D("16.00"),
                                                                              D("3.04"))
    assert bill.schema_version == 3 and bill.rule_versions["tax"] == "2024-01-01"
    assert bill.rounding_adjustment == 0  # rounding is before tax: the tax is not a rounding difference


def test_inclusive_prices_have_the_tax_worked_out_of_them(tmp_path):
    rules = rules_with(tmp_path, tax=TAX.replace("prices: exclusive", "prices: inclusive"))
    bill = taxed(rules, who=buyer("DE"))
    # 16.00 gross × 19 / 119 = 2.5546… → 2.55; net 16.00 − 2.55 = 13.45; the buyer pays the prices.
    assert (bill.tax.net, bill.tax.tax, bill.tax.gross, bill.total) == (D("13.45"), D("2.55"), D("16.00"), D("16.00"))
    text = render_bill(bill, rules, "text")
    assert "VAT 19% included in 16.00" in text and "Prices include tax." in text


def test_reverse_charge_for_a_business_buyer_with_a_tax_id(tmp_path):
    rules = rules_with(tmp_path)
    bill = taxed(rules, who=buyer("DE", "DE999999999"))
    assert (bill.tax.net, bill.tax.tax, bill.total) == (D("16.00"), D("0.00"), D("16.00"))
    (line,) = bill.tax.lines
    assert line.treatment == "reverse-charge" and line.basis == D("16.00")
    for fmt in ("text", "markdown", "html"):
        assert "Reverse charge: the recipient accounts for the VAT (toy wording for tests)." in render_bill(
            bill, rules, fmt)
    # The same buyer without a tax id is a consumer: taxed at the rate.
    assert taxed(rules, who=buyer("DE")).tax.tax == D("3.04")


def test_an_exempt_category_carries_no_tax_and_says_why(tmp_path):
    rules = rules_with(tmp_path)
    bill = taxed(rules, who=buyer("FR"))
    # widgets 10.00 × 20% = 2.00; gadgets 6.00 exempt for FR buyers; gross 16.00 + 2.00 = 18.00.
    assert [(t.label, t.treatment, t.basis, t.tax) for t in bill.tax.lines] == [
        ("TVA 20%", "standard", D("10.00"), D("2.00")), ("Exonéré", "exempt", D("6.00"), D("0.00"))]
    assert (bill.tax.net, bill.tax.tax, bill.total) == (D("16.00"), D("2.00"), D("18.00"))
    assert "Tax exemption: Exonération de TVA (toy rule for tests)." in render_bill(bill, rules, "text")
    # An exemption comes before reverse charge: a business buyer's gadgets are exempt, its widgets reverse charged.
    assert [t.treatment for t in taxed(rules, who=buyer("FR", "FR1")).tax.lines] == ["reverse-charge", "exempt"]


def test_a_regional_rate_comes_before_its_countrys(tmp_path):
    rules = rules_with(tmp_path)
    # 16.00 × 7.25% = 1.16
    assert taxed(rules, who=buyer("US-CA")).tax.tax == D("1.16")
    assert taxed(rules, who=buyer("US-NY")).tax.lines[0].label == "No sales tax"


def test_rounding_per_line_and_per_invoice_differ(tmp_path):
    usage = {"RenderWidget": 3, "LookupGadget": 1}  # 0.30 + 1.50 = 1.80
    per_invoice = taxed(rules_with(tmp_path / "a"), usage, who=buyer("DE"))
    per_line = taxed(rules_with(tmp_path / "b", tax=TAX.replace("per-invoice", "per-line")), usage, who=buyer("DE"))
    # per invoice: 1.80 × 19% = 0.342 → 0.34; per line: 0.057 → 0.06 and 0.285 → 0.29 (half-up), 0.35.
    assert (per_invoice.tax.tax, per_invoice.total) == (D("0.34"), D("2.14"))
    assert (per_line.tax.tax, per_line.total) == (D("0.35"), D("2.15"))
    # The rule's mode is the one used: half-even takes 0.285 to 0.28.
    half_even = taxed(rules_with(tmp_path / "c", tax=TAX.replace("per-invoice", "per-line").replace(
        "half-up", "half-even")), usage, who=buyer("DE"))
    assert half_even.tax.tax == D("0.34")


def test_a_later_version_applies_from_its_effective_date(tmp_path):
    later = TAX.replace("2024-01-01", "2024-03-01").replace("rate: 19, label: \"VAT 19%\"", "rate: 16, label: \"VAT 16%\"")
    rules = rules_with(tmp_path, tax_2024_03=later)
    assert taxed(rules, period="2024-02", who=buyer("DE")).tax.tax == D("3.04")
    march = taxed(rules, period="2024-03", who=buyer("DE"))
    assert (march.tax.tax, march.tax.lines[0].label, march.rule_versions["tax"]) == (D("2.56"), "VAT 16%", "2024-03-01")


def test_tax_applies_after_adjustments(tmp_path):
    from conftest import TOY_PRICING

    book = TOY_PRICING + "discounts:\n  - { name: Launch, category: widgets, percent: 50 }\n"
    rules = ratecard.load_rules(write_rule_set(tmp_path / "d", pricing=book, tax=TAX))
    bill = taxed(rules, who=buyer("DE"))
    # widgets 10.00 − 50% = 5.00, gadgets 6.00: net 11.00 × 19% = 2.09, gross 13.09.
    assert (bill.tax.net, bill.tax.tax, bill.total) == (D("11.00"), D("2.09"), D("13.09"))


def test_a_buyer_the_rules_cannot_tax_is_refused_not_billed_untaxed(tmp_path):
    rules = rules_with(tmp_path)
    with pytest.raises(TaxError, match="account ada has none; set it"):
        ratecard.rate(rules, USAGE, "2024-01", account="ada")
    with pytest.raises(TaxError, match="no rate for buyers in JP"):
        ratecard.rate(rules, USAGE, "2024-01", account="ada", buyer=buyer("JP"))
    other = rules_with(tmp_path / "o", tax=TAX + "other_countries: { label: Not taxed, wording: Outside the scope "
                       "of the tax (toy wording). }\n")
    bill = taxed(other, who=buyer("JP"))
    assert [(t.treatment, t.tax) for t in bill.tax.lines] == [("outside-scope", D("0.00"))] and bill.total == D("16.00")


def test_a_taxed_bill_reads_back_and_an_untaxed_one_stays_as_it_was(tmp_path):
    bill = taxed(rules_with(tmp_path), who=buyer("DE"))
    assert Bill.from_dict(json.loads(json.dumps(bill.to_dict()))).to_dict() == bill.to_dict()
    plain = ratecard.rate(ratecard.load_rules(write_rule_set(tmp_path / "plain")), USAGE, "2024-01", account="ada",
                          buyer=buyer("DE"))
    assert plain.schema_version == 1 and "tax" not in plain.to_dict() and plain.total == D("16.00")


# -- located rule problems ----------------------------------------------------------------------------

def problems_of(tmp_path, tax):
    with pytest.raises(RuleSetInvalid) as info:
        rules_with(tmp_path, tax=tax)
    return [str(p) for p in info.value.problems]


def test_schema_problems_point_at_the_value(tmp_path):
    found = problems_of(tmp_path, TAX.replace("rate: 19,", "rate: 119,").replace("apply: per-invoice",
                                                                                 "apply: per-month"))
    assert any("taxed/tax.yaml:6:" in p and "119" in p for p in found), found
    assert any("taxed/tax.yaml:4:" in p and "per-month" in p for p in found), found


def test_semantic_problems_point_at_the_rule(tmp_path):
    tax = TAX.replace("  - { country: FR, rate: 20", "  - { country: DE, rate: 7, label: twice }\n  - { country: FR, rate: 20")
    tax = tax.replace("categories: [gadgets]", "categories: [gizmos]")
    found = problems_of(tmp_path, tax)
    assert any("taxed/tax.yaml:7:" in p and "buyers in DE have two rates" in p for p in found), found
    assert any("taxed/tax.yaml:12:" in p and "category 'gizmos' is not in the price book" in p
               for p in found), found
