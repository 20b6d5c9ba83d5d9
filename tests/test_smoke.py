from decimal import Decimal

import ratecard
from ratecard.rating import rate


def test_shipped_rules_load_and_price_the_spec_cliff(shipped_rules):
    assert rate(shipped_rules, {"SearchFaces": 3_000_000}, "2020-09").total == Decimal("2400.00")
    bill = rate(shipped_rules, {"SearchFaces": 3_000_001}, "2020-09")
    assert bill.subtotal == Decimal("1800.0006")
    assert bill.total == Decimal("1800.00")


def test_toy_rule_set_loads(toy_rules_dir):
    rules = ratecard.load_rules(toy_rules_dir)
    bill = rate(rules, {"RenderWidget": 101, "ListWidgets": 7}, "2024-03")
    assert bill.currency == "EUR"
    assert bill.total == Decimal("5.05")
