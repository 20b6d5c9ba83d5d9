"""Each price model, with amounts worked out by hand, and worked examples from other engines'
public documentation, each with its source named. (Adjustments: tests/test_adjustments.py;
properties against an independent reference: tests/test_price_model_properties.py.)"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from models_helpers import amount_of, bill, rules
from ratecard.errors import RatingError

VOLUME_FLAT = """\
tagging:
  name: Tagging
  tiers:
    - { up_to: 1000, unit_price: 0.01, flat_amount: 5 }
    - { unit_price: 0.008, flat_amount: 20 }
"""

GRADUATED_FLAT = """\
ocr:
  name: OCR
  tier_mode: graduated
  tiers:
    - { up_to: 10000, flat_amount: 25 }
    - { up_to: 20000, unit_price: 0.002, flat_amount: 3 }
    - { unit_price: 0.001 }
"""


# -- tiered with flat amounts -------------------------------------------------------------------


@pytest.mark.parametrize("calls, amount", [(0, "0"), (1, "5.01"), (1000, "15.00"), (1001, "28.008"),
                                           (1500, "32.000")])
def test_volume_adds_the_flat_amount_of_the_tier_reached_once(tmp_path, calls, amount):
    assert amount_of(rules(tmp_path, VOLUME_FLAT), "tagging", calls) == D(amount)


@pytest.mark.parametrize("calls, amount", [(0, "0"), (5000, "25"), (10000, "25"), (10001, "28.002"),
                                           (25000, "53.000")])
def test_graduated_adds_the_flat_amount_of_every_tier_entered(tmp_path, calls, amount):
    # 25,000: 25 (tier 1, flat only) + 10,000 × 0.002 + 3 (tier 2) + 5,000 × 0.001 (tier 3) = 53
    assert amount_of(rules(tmp_path, GRADUATED_FLAT), "ocr", calls) == D(amount)


def test_a_flat_amount_is_its_own_part_of_the_line(tmp_path):
    (line,) = bill(rules(tmp_path, GRADUATED_FLAT), {"ocr": 10001}).lines
    assert [(c.tier, c.calls, c.flat_amount, c.amount) for c in line.charges] == [
        (1, 10000, D(25), D(25)), (2, 1, D(3), D("3.002"))]
    assert (line.model, line.tier, line.unit_price) == ("tiered", 2, D("0.002"))


TYPOGRAPHIC = """\
fonts:
  name: Fonts
  tiers:
    - { up_to: 5, unit_price: 7 }
    - { up_to: 10, unit_price: 6.5 }
    - { unit_price: 6 }
"""


@pytest.mark.parametrize("fonts, volume, graduated", [(1, "7", "7"), (5, "35", "35"), (6, "39", "41.5"),
                                                      (20, "120", "127.5"), (25, "150", "157.5")])
def test_stripe_typographic_example(tmp_path, fonts, volume, graduated):
    """Stripe, "Set up tiered pricing" (docs.stripe.com/subscriptions/pricing-models/tiered-pricing):
    tiers 1-5 at 7 USD, 6-10 at 6.5 USD, 11+ at 6 USD. The volume totals are the page's table (1 →
    7, 5 → 35, 6 → 39, 20 → 120, 25 → 150); the graduated ones follow its rule, each tier pricing the
    fonts inside it (6 → 5 × 7 + 1 × 6.5 = 41.5)."""
    assert amount_of(rules(tmp_path / "v", TYPOGRAPHIC), "fonts", fonts) == D(volume)
    assert amount_of(rules(tmp_path / "g", TYPOGRAPHIC, mode="graduated"), "fonts", fonts) == D(graduated)


# -- package ------------------------------------------------------------------------------------


def package(rounding="up", free=0) -> str:
    return f"""\
render:
  name: Rendering
  model: package
  package: {{ size: 1000, price: 4, rounding: {rounding}, free_units: {free} }}
"""


@pytest.mark.parametrize("units, amount", [(0, 0), (500, 0), (501, 4), (1500, 4), (1501, 8), (2600, 12)])
def test_package_rounds_part_blocks_up_after_the_free_units(tmp_path, units, amount):
    assert amount_of(rules(tmp_path, package("up", 500)), "render", units) == amount


@pytest.mark.parametrize("rounding, units, amount", [("down", 999, 0), ("down", 1999, 4), ("down", 2000, 8),
                                                     ("nearest", 1499, 4), ("nearest", 1500, 8),
                                                     ("nearest", 2499, 8), ("nearest", 499, 0)])
def test_package_rounding_down_and_to_nearest(tmp_path, rounding, units, amount):
    assert amount_of(rules(tmp_path, package(rounding)), "render", units) == amount


BLOCKS_PER_TIER = """\
export:
  name: Export
  model: package
  tier_mode: {mode}
  package: {{}}
  tiers:
    - {{ up_to: 10000, package_size: 1000, package_price: 3 }}
    - {{ package_size: 5000, package_price: 10 }}
"""


@pytest.mark.parametrize("mode, units, amount", [("volume", 9400, 30), ("volume", 10001, 30), ("volume", 15001, 40),
                                                 ("graduated", 9400, 30), ("graduated", 13400, 40),
                                                 ("graduated", 20001, 60)])
def test_package_blocks_per_tier(tmp_path, mode, units, amount):
    # volume 10,001: tier 2 prices all of them: ⌈10,001 / 5,000⌉ = 3 blocks × 10 = 30
    # graduated 20,001: 10 blocks × 3 + ⌈10,001 / 5,000⌉ = 3 blocks × 10 = 60
    assert amount_of(rules(tmp_path, BLOCKS_PER_TIER.format(mode=mode)), "export", units) == amount


def test_package_line_says_how_many_blocks(tmp_path):
    (line,) = bill(rules(tmp_path, package("up", 500)), {"render": 2600}).lines
    assert [(c.note, c.calls, c.blocks, c.package_size, c.amount) for c in line.charges] == [
        ("free units", 500, None, None, 0), ("3 blocks of 1,000", 2100, 3, 1000, 12)]


def test_lago_package_example(tmp_path):
    """Lago, "Package" charge model (getlago.com/docs/guide/plans/charges/charge-models/package):
    5 USD per 100 units with the first 100 free; 201 units cost 0 + 5 + 5 = 10 USD."""
    book = rules(tmp_path, "api:\n  name: API\n  model: package\n  package: { size: 100, price: 5, free_units: 100 }\n")
    assert amount_of(book, "api", 201) == 10


@pytest.mark.parametrize("tokens, amount", [(10, "1.25"), (1_000_000, "1.25"), (1_500_000, "2.50")])
def test_chargebee_package_example(tmp_path, tokens, amount):
    """Chargebee, "Package Pricing" (chargebee.com/docs/billing/2.0/product-catalog/package-pricing):
    1,000,000 tokens for 1.25 USD; 10 tokens → one package, 1.5M tokens → two packages, 2.50 USD."""
    book = rules(tmp_path, "tokens:\n  name: Tokens\n  model: package\n  package: { size: 1000000, price: 1.25 }\n")
    assert amount_of(book, "tokens", tokens) == D(amount)


def test_lemon_squeezy_and_flexprice_package_examples(tmp_path):
    """Lemon Squeezy, "Pricing models" (docs.lemonsqueezy.com/help/products/pricing-models): 100
    credits for 10 USD, 120 credits → 2 packages = 20 USD. Flexprice, "Tiered" (docs.flexprice.io,
    package size in a tier): packages of 1,000 calls at 1 USD, 4,500 calls → 5 packages = 5 USD."""
    credits = rules(tmp_path / "a", "credits:\n  name: Credits\n  model: package\n  package: { size: 100, price: 10 }\n")
    assert amount_of(credits, "credits", 120) == 20
    calls = rules(tmp_path / "b", "calls:\n  name: Calls\n  model: package\n  package: {}\n  tiers:\n"
                  "    - { up_to: 100000, package_size: 1000, package_price: 1 }\n"
                  "    - { package_size: 1000, package_price: 0.5 }\n")
    assert amount_of(calls, "calls", 4500) == 5


# -- percentage ---------------------------------------------------------------------------------

CARD = """\
card:
  name: Card payments
  model: percentage
  percentage: { rate: 2.9, fixed_fee: 0.30 }
"""


def test_percentage_with_a_fixed_fee_per_transaction(tmp_path):
    """Lago's template of Stripe's card pricing (getlago.com/docs/templates/per-transaction/stripe):
    2.9% of the transaction amount plus 0.30 USD per transaction; 100 USD → 3.20 USD."""
    book = rules(tmp_path, CARD)
    assert amount_of(book, "card", (1, "100")) == D("3.20")
    # three transactions of 100 together: 2.9% of 300 + 3 × 0.30 = 8.70 + 0.90
    assert amount_of(book, "card", (3, "300")) == D("9.60")
    assert amount_of(book, "card", (0, "0")) == 0


BOUNDED = """\
orders:
  name: Orders
  model: percentage
  percentage: { rate: 1, per_transaction_min: 1, per_transaction_max: 100 }
"""


@pytest.mark.parametrize("transactions, amount, fee", [(1, "50", "1"), (1, "5000", "50"), (1, "20000", "100"),
                                                       (4, "200", "4"), (2, "40000", "200")])
def test_per_transaction_minimum_and_maximum(tmp_path, transactions, amount, fee):
    """Upvest, "Designing your transaction fee model" (docs.upvest.co, fees): 1% per order, not
    less than 1 EUR, not more than 100 EUR (here in the book's currency). 4 orders of 50: 4 × 1."""
    assert amount_of(rules(tmp_path, BOUNDED), "orders", (transactions, amount)) == D(fee)


def test_transactions_of_different_amounts_are_bounded_one_by_one(tmp_path):
    # 50 → 1 (raised by 0.50), 5,000 → 50, 20,000 → 100 (held down by 100): 151
    line, = bill(rules(tmp_path, BOUNDED), [("orders", (1, "50")), ("orders", (1, "5000")),
                                            ("orders", (1, "20000"))]).lines
    assert line.amount == 151
    assert [(c.note, c.calls, c.amount) for c in line.charges] == [
        ("1% of the transaction amount", 3, D("250.50")),
        ("raised to the minimum of 1 per transaction", 1, D("0.50")),
        ("held to the maximum of 100 per transaction", 1, D("-100.00"))]


def test_percentage_refuses_usage_it_cannot_price_exactly(tmp_path):
    book = rules(tmp_path, BOUNDED)
    with pytest.raises(RatingError, match="not one exact amount per transaction"):
        bill(book, {"orders": (3, "100")})  # 33.33…
    with pytest.raises(RatingError, match="carries no amount"):
        bill(book, {"orders": 3})


LAGO_GRADUATED = """\
transfers:
  name: Transfers
  model: percentage
  percentage: {}
  tiers:
    - { up_to: 1000, rate: 1, flat_amount: 200 }
    - { up_to: 10000, rate: 2, flat_amount: 300 }
    - { rate: 3, flat_amount: 400 }
"""


@pytest.mark.parametrize("total, fee", [("500", "205"), ("1050", "511"), ("5050", "591"), ("12000", "1150")])
def test_lago_graduated_percentage_example(tmp_path, total, fee):
    """Lago, "Graduated percentage" (getlago.com/docs/guide/plans/charges/charge-models/graduated-percentage):
    tiers 0-1,000 at 1% + 200 flat, 1,001-10,000 at 2% + 300, above at 3% + 400. Its transactions
    of 500, 550 and 4,000 cost 205, 306 and 80: the period's totals 500, 1,050 and 5,050 cost 205,
    511 and 591. 12,000 enters tier 3: 1,000 × 1% + 200 + 9,000 × 2% + 300 + 2,000 × 3% + 400 = 1,150."""
    assert amount_of(rules(tmp_path, LAGO_GRADUATED), "transfers", (1, total)) == D(fee)


# -- decimal units ------------------------------------------------------------------------------

STORAGE = """\
storage:
  name: Storage
  unit: { name: GB, precision: 3 }
  tier_mode: graduated
  tiers:
    - { up_to: 100, unit_price: 0.02 }
    - { unit_price: 0.015 }
"""


@pytest.mark.parametrize("gb, amount", [(D("150.5"), "2.7575"), (D("99.995"), "1.9999"), (D("0.001"), "0.00002"),
                                        (10, "0.20"), (D("100.001"), "2.000015")])
def test_decimal_quantities_priced_exactly(tmp_path, gb, amount):
    assert amount_of(rules(tmp_path, STORAGE), "storage", gb) == D(amount)


def test_decimal_quantities_keep_to_the_declared_precision(tmp_path):
    book = rules(tmp_path, STORAGE + "calls:\n  name: Calls\n  tiers: [{ unit_price: 0.1 }]\n")
    with pytest.raises(RatingError, match="more decimal places than its unit allows"):
        bill(book, {"storage": D("1.0005")})
    with pytest.raises(RatingError, match="must be a whole number"):
        bill(book, {"calls": D("1.5")})  # calls stay whole numbers
    (line,) = bill(book, {"storage": D("1.5000")}).lines  # trailing zeros are not decimal places
    assert (line.unit, line.amount) == ("GB", D("0.03"))
