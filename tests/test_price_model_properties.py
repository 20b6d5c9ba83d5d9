"""Property tests of every price model against a reference written here.

Each reference is naive and shares nothing with the engine: Fractions instead of Decimals, a tier
found from its lower and upper bound, blocks counted with integer ceiling/floor, percentages worked
out per transaction. Quantities are drawn around every tier bound (bound − 1, bound, bound + 1),
at zero and up to 10^15, so the edges that matter are always tried.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction as F

from hypothesis import given, settings
from hypothesis import strategies as st

from ratecard.model import Category, PackageTerms, PercentageTerms, Tier
from ratecard.price import pricer_for

HUGE = 10**15
prices = st.decimals(min_value=0, max_value=100, places=4, allow_nan=False, allow_infinity=False)
flats = st.one_of(st.none(), st.decimals(min_value=0, max_value=1000, places=2, allow_nan=False, allow_infinity=False))
bound_sets = st.lists(st.integers(1, 10**7), min_size=0, max_size=4, unique=True).map(sorted)


def quantities(bounds):
    near = [b + d for b in bounds for d in (-1, 0, 1) if b + d >= 0]
    return st.one_of(st.sampled_from(near + [0, 1, HUGE]), st.integers(0, HUGE))


def spans(bounds, q):
    """(tier index, units in the tier) of every tier `q` units reach, the reference's way."""
    lowers = [0] + list(bounds)
    uppers = list(bounds) + [None]
    for i, (low, high) in enumerate(zip(lowers, uppers)):
        inside = max(0, (q if high is None else min(q, high)) - low)
        yield i, inside


def volume_index(bounds, q):
    """The tier `q` units fall in (volume): as many tiers up as there are bounds below `q`."""
    return sum(1 for bound in bounds if q > bound)


@st.composite
def tiered(draw):
    bounds = draw(bound_sets)
    tiers = [(draw(prices), draw(flats)) for _ in range(len(bounds) + 1)]
    mode = draw(st.sampled_from(["volume", "graduated"]))
    return bounds, tiers, mode, draw(quantities(bounds))


@settings(max_examples=300, deadline=None)
@given(tiered())
def test_tiered_with_flat_amounts(case):
    bounds, tiers, mode, q = case
    category = Category("c", "C", mode, tuple(Tier(b, p, f) for b, (p, f) in zip(bounds + [None], tiers)))
    if mode == "volume":
        i = volume_index(bounds, q)
        price, flat = tiers[i]
        want = F(price) * q + (F(flat) if flat is not None and q else 0)
    else:
        want = sum((F(tiers[i][0]) * n + (F(tiers[i][1]) if tiers[i][1] is not None and n else 0)
                    for i, n in spans(bounds, q)), F(0))
    assert F(pricer_for(category).cost(q)) == want


@st.composite
def packages(draw):
    bounds = draw(bound_sets)
    tiers = [(draw(st.integers(1, 10**6)), draw(prices), draw(flats)) for _ in range(len(bounds) + 1)]
    return (bounds, tiers, draw(st.sampled_from(["volume", "graduated"])), draw(st.sampled_from(["up", "down", "nearest"])),
            draw(st.integers(0, 10**4)), draw(quantities(bounds)))


def ref_blocks(units, size, rounding):
    whole, part = divmod(units, size)
    if rounding == "up":
        return whole + (part > 0)
    if rounding == "nearest":
        return whole + (2 * part >= size and part > 0)
    return whole


@settings(max_examples=300, deadline=None)
@given(packages())
def test_package(case):
    bounds, tiers, mode, rounding, free, q = case
    category = Category("c", "C", mode, tuple(Tier(b, p, f, s) for b, (s, p, f) in zip(bounds + [None], tiers)),
                        model="package", package=PackageTerms(rounding, free))
    counted = max(0, q - free)

    def part(i, n):
        size, price, flat = tiers[i]
        return F(price) * ref_blocks(n, size, rounding) + (F(flat) if flat is not None and n else 0)

    if mode == "volume":
        want = part(volume_index(bounds, counted), counted)
    else:
        want = sum((part(i, n) for i, n in spans(bounds, counted)), F(0))
    assert F(pricer_for(category).cost(q)) == want


money = st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False, allow_infinity=False)


@st.composite
def percentages(draw):
    rate = draw(st.decimals(min_value=0, max_value=100, places=3, allow_nan=False, allow_infinity=False))
    fee = draw(st.decimals(min_value=0, max_value=5, places=2, allow_nan=False, allow_infinity=False))
    low = draw(st.one_of(st.none(), st.decimals(min_value=0, max_value=10, places=2, allow_nan=False,
                                                allow_infinity=False)))
    high = draw(st.one_of(st.none(), st.decimals(min_value=10, max_value=1000, places=2, allow_nan=False,
                                                 allow_infinity=False)))
    # transactions of one amount each (n × a): per-transaction bounds then price them exactly
    items = draw(st.lists(st.tuples(st.integers(0, 10**6), money), max_size=5))
    return rate, fee, low, high, items


@settings(max_examples=300, deadline=None)
@given(percentages())
def test_percentage_per_transaction(case):
    rate, fee, low, high, items = case
    category = Category("c", "C", "graduated", (Tier(None, Decimal(0), rate=rate),), model="percentage",
                        percentage=PercentageTerms(rate, fee, low, high))
    want = F(0)
    for n, each in items:
        one = F(each) * F(rate) / 100 + F(fee)
        if low is not None:
            one = max(one, F(low))
        if high is not None:
            one = min(one, F(high))
        want += one * n
    basis = tuple((n, each * n) for n, each in items)
    assert F(pricer_for(category).cost(sum(n for n, _ in items), basis)) == want


@st.composite
def graduated_percentages(draw):
    bounds = draw(st.lists(st.integers(1, 10**7), max_size=3, unique=True).map(sorted))
    tiers = [(draw(st.decimals(min_value=0, max_value=50, places=2, allow_nan=False, allow_infinity=False)),
              draw(flats)) for _ in range(len(bounds) + 1)]
    total = draw(st.one_of(st.sampled_from([b + d for b in bounds for d in (-1, 0, 1) if b + d >= 0] + [0, HUGE]),
                           st.integers(0, HUGE)))
    return bounds, tiers, total


@settings(max_examples=300, deadline=None)
@given(graduated_percentages())
def test_graduated_percentage(case):
    bounds, tiers, total = case
    category = Category("c", "C", "graduated",
                        tuple(Tier(b, Decimal(0), f, rate=r) for b, (r, f) in zip(bounds + [None], tiers)),
                        model="percentage", percentage=PercentageTerms(None))
    want = sum((F(tiers[i][0]) * n / 100 + (F(tiers[i][1]) if tiers[i][1] is not None and n else 0)
                for i, n in spans(bounds, total)), F(0))
    assert F(pricer_for(category).cost(1, ((1, Decimal(total)),))) == want


@settings(max_examples=200, deadline=None)
@given(st.decimals(min_value=0, max_value=10**9, places=3, allow_nan=False, allow_infinity=False))
def test_decimal_quantities_graduated(gb):
    tiers = (Tier(Decimal("100.5"), Decimal("0.02")), Tier(None, Decimal("0.015"), Decimal(1)))
    category = Category("c", "C", "graduated", tiers, unit="GB", precision=3)
    q = F(gb)
    want = min(q, F("100.5")) * F("0.02") + (max(q - F("100.5"), 0) * F("0.015") + (1 if q > F("100.5") else 0))
    assert F(pricer_for(category).cost(gb)) == want


# -- adjustments, in their documented order, against a reference of Fractions --------------------

from datetime import date  # noqa: E402

from ratecard.adjust import Adjuster  # noqa: E402
from ratecard.model import Commitment, Credit, Discount, PriceBook, Terms, frozen_mapping  # noqa: E402

positive = st.decimals(min_value="0.01", max_value=10**6, places=2, allow_nan=False, allow_infinity=False)
percents = st.decimals(min_value="0.01", max_value=100, places=2, allow_nan=False, allow_infinity=False)


@st.composite
def adjusted_bills(draw):
    lines = draw(st.lists(st.decimals(min_value=0, max_value=10**6, places=4, allow_nan=False, allow_infinity=False),
                          min_size=0, max_size=3))
    discounts = []
    for pos in range(len(lines)):
        if draw(st.booleans()):
            discounts.append(Discount(f"d{pos}", draw(percents), None, f"c{pos}")
                             if draw(st.booleans()) else Discount(f"d{pos}", None, draw(positive), f"c{pos}"))
    if draw(st.booleans()):
        discounts.append(Discount("bill", draw(percents), None, None) if draw(st.booleans())
                         else Discount("bill", None, draw(positive), None))
    commitment = (Commitment(draw(positive)),) if draw(st.booleans()) else ()
    credits = tuple(Credit(f"k{i}", draw(positive), draw(st.booleans())) for i in range(draw(st.integers(0, 2))))
    maximum = {pos: draw(st.one_of(st.none(), positive)) for pos in range(len(lines))}
    minimum = {pos: draw(st.one_of(st.none(), positive)) for pos in range(len(lines))}
    return lines, tuple(discounts), commitment, credits, maximum, minimum


def _reference(lines, discounts, commitment, credits, maximum, minimum):
    cats = [F(x) for x in lines]

    def off(d, basis):
        if basis <= 0:
            return F(0)
        return basis * F(d.percent) / 100 if d.percent is not None else min(F(d.amount), basis)

    for pos in range(len(cats)):
        for d in discounts:
            if d.category == f"c{pos}":
                cats[pos] -= off(d, cats[pos])
        if maximum[pos] is not None and cats[pos] > F(maximum[pos]):
            cats[pos] = F(maximum[pos])
        if minimum[pos] is not None and cats[pos] < F(minimum[pos]):
            cats[pos] = F(minimum[pos])
    total = sum(cats, F(0))
    for d in discounts:
        if d.category is None:
            total -= off(d, total)
    for c in commitment:
        total = max(total, F(c.amount))
    for c in credits:
        total -= F(c.amount) if c.below_zero else min(F(c.amount), max(total, F(0)))
    return total


@settings(max_examples=300, deadline=None)
@given(adjusted_bills())
def test_adjustments_in_their_documented_order(case):
    lines, discounts, commitment, credits, maximum, minimum = case
    categories = tuple(Category(f"c{pos}", f"C{pos}", "volume", (Tier(None, Decimal(1)),), minimum_spend=minimum[pos],
                                maximum_spend=maximum[pos]) for pos in range(len(lines)))
    book = PriceBook(date(2024, 1, 1), "USD", "call", "volume", frozen_mapping((c.id, c) for c in categories),
                     terms=Terms(discounts, commitment, credits))
    rated = [(pos, 0, 0, (), 0, 1, Decimal(1), amount, amount, None) for pos, amount in enumerate(lines)]
    made, amount, charge = Adjuster(book, categories, None, None)(rated, "acme", "2024-01")
    total = sum((F(x) for x in lines), F(0)) + F(amount)
    assert total == _reference(lines, discounts, commitment, credits, maximum, minimum)
    assert amount == charge  # per-bill: adjustments are exact
    assert all(a.amount <= 0 for a in made if a.kind in ("discount", "credit", "maximum-spend"))
    if not any(c.below_zero for c in credits):
        assert total >= 0
