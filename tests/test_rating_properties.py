"""Property tests: the engine, over the shipped rules, against a reference written here from SPEC §1-2.

The reference below is deliberately naive and shares nothing with the engine: the price book and
the API lists are copied from the product brief, prices are exact Fractions, and the bill total is
rounded half-up to the cent with integer arithmetic.
"""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from ratecard.rating import SUCCESS, UsageItem, rate

PERIOD = "2020-09"
NO_FACE = "InvalidParameterValue.NoFaceInPhoto"
FREE_ERRORS = ["InvalidParameterValue.ImageEmpty", "FailedOperation.ImageDecodeFailed", "LimitExceeded"]

# SPEC §1: (category id in the shipped rules, its prices per tier). Bounds are inclusive.
BOUNDS = (3_000_000, 15_000_000)
LOW = ("0.0005", "0.0004", "0.0003")
HIGH = ("0.0008", "0.0006", "0.0004")
PRICES = {
    "face-detection": LOW,
    "facial-feature-localization": LOW,
    "face-comparison": HIGH,
    "face-verification": HIGH,
    "face-search": HIGH,
    "group-management": HIGH,
    "liveness-detection": HIGH,
}
# SPEC §2: billable and free APIs of each category.
BILLABLE = {
    "face-detection": ["DetectFace", "DetectFaceAttributes"],
    "facial-feature-localization": ["AnalyzeFace", "AnalyzeDenseLandmarks"],
    "face-comparison": ["CompareFace", "CompareMaskFace"],
    "face-verification": ["VerifyFace", "VerifyPerson"],
    "face-search": ["SearchFaces", "SearchFacesReturnsByGroup", "SearchPersons", "SearchPersonsReturnsByGroup"],
    "group-management": ["CreatePerson", "CreateFace"],
    "liveness-detection": ["DetectLiveFace"],
}
FREE = {
    "group-management": [
        "CreateGroup", "DeleteGroup", "GetGroupInfo", "GetGroupList", "ModifyGroup", "DeletePerson",
        "DeletePersonFromGroup", "GetPersonGroupInfo", "GetPersonBaseInfo", "GetPersonList", "GetPersonListNum",
        "ModifyPersonGroupInfo", "ModifyPersonBaseInfo", "CopyPerson", "DeleteFace",
        "GetUpgradeGroupFaceModelVersionJobList", "GetUpgradeGroupFaceModelVersionResult",
        "RevertGroupFaceModelVersion", "UpgradeGroupFaceModelVersion",
    ],
}
ORDER = list(PRICES)  # the order the price book lists the categories
CATEGORY_OF = {api: cat for table in (BILLABLE, FREE) for cat, apis in table.items() for api in apis}


def reference(items):
    """SPEC §1-2 by hand: {category: (billable, free, tier, unit price, amount)}, subtotal, total."""
    billable = defaultdict(int)
    free = defaultdict(int)
    for api, calls, outcome in items:
        cat = CATEGORY_OF[api]
        billed = api in BILLABLE[cat] and outcome in (None, SUCCESS, NO_FACE)
        (billable if billed else free)[cat] += calls
    lines = {}
    for cat in set(billable) | set(free):
        n = billable[cat]
        tier = 1 if n <= BOUNDS[0] else 2 if n <= BOUNDS[1] else 3
        price = Fraction(PRICES[cat][tier - 1])
        lines[cat] = (n, free[cat], tier, price, price * n)
    subtotal = sum((line[4] for line in lines.values()), Fraction(0))
    cents = subtotal * 100
    whole = cents.numerator // cents.denominator
    total = Fraction(whole + (1 if cents - whole >= Fraction(1, 2) else 0), 100)  # half up, amounts ≥ 0
    return lines, subtotal, total


# Billable calls per category: every tier bound −1/0/+1, zero, tiny, huge (10^12) and anything between.
EDGES = [0, 1, 2] + [b + d for b in BOUNDS for d in (-1, 0, 1)] + [10**12 - 1, 10**12, 10**12 + 1]
counts = st.one_of(st.sampled_from(EDGES), st.integers(0, 10**12))


@st.composite
def split(draw, total: int, parts: int) -> list[int]:
    """`total` cut into `parts` non-negative pieces."""
    cuts = sorted(draw(st.lists(st.integers(0, total), min_size=parts - 1, max_size=parts - 1)))
    return [b - a for a, b in zip([0] + cuts, cuts + [total])]


@st.composite
def usages(draw):
    """Usage items for a few categories whose billable totals hit the interesting counts, spread over
    their billable APIs and billed outcomes, plus calls that must stay free: other error codes and
    free APIs."""
    items = []
    for cat in draw(st.lists(st.sampled_from(ORDER), min_size=1, max_size=len(ORDER), unique=True)):
        target = draw(counts)
        apis = draw(st.lists(st.sampled_from(BILLABLE[cat]), min_size=1, max_size=4))
        for api, calls in zip(apis, draw(split(target, len(apis)))):
            outcome = draw(st.sampled_from([SUCCESS, NO_FACE, None]))
            items.append((api, calls, outcome))
        for api in draw(st.lists(st.sampled_from(BILLABLE[cat]), max_size=2)):
            items.append((api, draw(st.sampled_from([0, 1, 10**12]) | st.integers(0, 10**6)),
                          draw(st.sampled_from(FREE_ERRORS))))
    for api in draw(st.lists(st.sampled_from(FREE["group-management"]), max_size=3)):
        items.append((api, draw(st.sampled_from([0, 10**12]) | st.integers(0, 10**6)),
                      draw(st.sampled_from([SUCCESS, NO_FACE, None] + FREE_ERRORS))))
    return draw(st.permutations(items))


def as_items(usage):
    return [UsageItem(api, calls, outcome) for api, calls, outcome in usage]


@settings(max_examples=400, deadline=None)
@given(usages())
def test_bill_matches_the_reference(shipped_rules, usage):
    bill = rate(shipped_rules, as_items(usage), PERIOD)
    lines, subtotal, total = reference(usage)

    assert [line.category for line in bill.lines] == [c for c in ORDER if c in lines]
    for line in bill.lines:
        calls, free, tier, price, amount = lines[line.category]
        assert (line.calls, line.free_calls, line.tier) == (calls, free, tier), line.category
        assert Fraction(line.unit_price) == price
        assert isinstance(line.amount, Decimal) and Fraction(line.amount) == amount
        assert line.payg_calls == calls and line.free_quota_used == 0 and line.packs_used == ()
        assert [(c.tier, c.calls) for c in line.charges] == [(tier, calls)]
        assert sum(a.calls for a in line.apis) == calls + free
        assert sum(a.billable_calls for a in line.apis if not a.billable_api) == 0
    assert Fraction(bill.subtotal) == subtotal
    assert Fraction(bill.total) == total
    assert bill.total.as_tuple().exponent == -2  # rounded to the cent, shown to the cent
    assert bill.currency == "USD"

    # The JSON holds the same exact values, as text.
    data = bill.to_dict()
    assert Fraction(Decimal(data["subtotal"])) == subtotal and Fraction(Decimal(data["total"])) == total
    for line in data["lines"]:
        assert Fraction(Decimal(line["amount"])) == lines[line["category"]][4]


@settings(max_examples=200, deadline=None)
@given(usages(), st.randoms(use_true_random=False))
def test_rating_is_deterministic_and_order_free(shipped_rules, usage, rnd):
    first = rate(shipped_rules, as_items(usage), PERIOD)
    shuffled = list(usage)
    rnd.shuffle(shuffled)
    again = rate(shipped_rules, as_items(shuffled), PERIOD)
    assert again == first
    assert json.dumps(again.to_dict()) == json.dumps(first.to_dict())
    # Tuples and UsageItems are the same usage.
    assert rate(shipped_rules, [tuple(u) for u in shuffled], PERIOD) == first


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(CATEGORY_OF)), counts, max_size=12))
def test_mapping_usage_has_unknown_outcome_and_is_billed(shipped_rules, usage):
    # Aggregated counts carry no outcome; the shipped rules bill such calls (unknown_outcome: billable).
    bill = rate(shipped_rules, usage, PERIOD)
    lines, subtotal, total = reference([(api, calls, None) for api, calls in usage.items()])
    assert {line.category: (line.calls, line.free_calls, line.tier, Fraction(line.amount)) for line in bill.lines} \
        == {cat: (n, free, tier, amount) for cat, (n, free, tier, _, amount) in lines.items()}
    assert (Fraction(bill.subtotal), Fraction(bill.total)) == (subtotal, total)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(FREE["group-management"]), counts,
                          st.sampled_from([SUCCESS, NO_FACE, None] + FREE_ERRORS)), min_size=1, max_size=6))
def test_free_apis_are_never_charged(shipped_rules, usage):
    bill = rate(shipped_rules, as_items(usage), PERIOD)
    (line,) = bill.lines
    assert line.category == "group-management"
    assert (line.calls, line.amount, bill.total) == (0, 0, 0)
    assert line.free_calls == sum(calls for _, calls, _ in usage)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(a for apis in BILLABLE.values() for a in apis)), counts,
       st.sampled_from(FREE_ERRORS))
def test_only_the_no_face_error_is_billed(shipped_rules, api, calls, error):
    billed = rate(shipped_rules, [UsageItem(api, calls, NO_FACE)], PERIOD)
    free = rate(shipped_rules, [UsageItem(api, calls, error)], PERIOD)
    succeeded = rate(shipped_rules, [UsageItem(api, calls, SUCCESS)], PERIOD)
    assert billed.total == succeeded.total == reference([(api, calls, SUCCESS)])[2]
    assert billed.lines[0].calls == calls
    assert (free.lines[0].calls, free.lines[0].free_calls, free.total) == (0, calls, 0)


def test_the_spec_cliff_at_the_first_bound(shipped_rules):
    # SPEC §1: 3,000,000 face-search calls cost 2,400.00 USD, 3,000,001 cost 1,800.0006 USD.
    at = rate(shipped_rules, {"SearchFaces": 3_000_000}, PERIOD)
    above = rate(shipped_rules, {"SearchFaces": 3_000_001}, PERIOD)
    assert (at.lines[0].tier, at.lines[0].amount, at.total) == (1, Decimal("2400.0000"), Decimal("2400.00"))
    assert (above.lines[0].tier, above.lines[0].amount, above.total) == (2, Decimal("1800.0006"), Decimal("1800.00"))
    assert str(above.total) == "1800.00"


def test_every_category_at_every_edge(shipped_rules):
    # Not left to chance: each category at each tier bound −1/0/+1, at zero and at 10^12.
    for cat in ORDER:
        api = BILLABLE[cat][0]
        for calls in EDGES:
            bill = rate(shipped_rules, {api: calls}, PERIOD)
            (n, _, tier, price, amount), = reference([(api, calls, None)])[0].values()
            line, = bill.lines
            assert (line.calls, line.tier, Fraction(line.unit_price), Fraction(line.amount)) \
                == (n, tier, price, amount), (cat, calls)
            assert Fraction(bill.total) == reference([(api, calls, None)])[2]


# -- the generated common case against the general path --------------------------------------------

def _graduated_toy(tmp_path_factory):
    from conftest import TOY_PRICING, write_rule_set

    import ratecard

    pricing = TOY_PRICING.replace("tier_mode: volume", "tier_mode: graduated\nfree_quota: { units: 50, "
                                  "while_suspended: true }")
    return ratecard.load_rules(write_rule_set(tmp_path_factory.mktemp("graduated") / "toy", pricing=pricing))


def _cn_rules():
    import ratecard

    from conftest import ROOT

    return ratecard.load_rules(ROOT / "rules" / "face-recognition-cn")


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_the_common_case_bills_exactly_as_the_general_path(shipped_rules, tmp_path_factory, data):
    """`rate` prices the common case (known APIs, no packs, plain tiered prices, no adjustments or
    tax) in one generated function, and everything else on the general path (`rating._finish`). An
    expired resource pack changes no bill but takes the general path: the two must agree, for usage
    items and for counts, suspended or not, volume or graduated, per-bill or per-line rounding."""
    from datetime import date

    from ratecard.rating import PackBalance, tariff

    rules, period = data.draw(st.sampled_from([(shipped_rules, PERIOD), ("cn", "2020-10"), ("toy", "2024-03")]))
    if rules == "cn":
        rules = _cn_rules()
    elif rules == "toy":
        rules = _graduated_toy(tmp_path_factory)
    t = tariff(rules, period)
    apis = sorted(t.index)
    outcomes = [SUCCESS, "SUCCESS", " success ", NO_FACE, None, "", *FREE_ERRORS]
    items = data.draw(st.lists(st.tuples(st.sampled_from(apis), st.sampled_from([0, 1, 10**12]) | st.integers(0, 10**8),
                                         st.sampled_from(outcomes)), max_size=14))
    suspended = data.draw(st.booleans())
    category = t.categories[0].id
    expired = (PackBalance("expired", category, 1_000, date(2000, 1, 1)),)
    for usage in (as_items(items), {api: calls for api, calls, _ in items}):
        common = rate(rules, usage, period, suspended=suspended)
        general = rate(rules, usage, period, suspended=suspended, packs=expired)
        assert common == general
        assert json.dumps(common.to_dict()) == json.dumps(general.to_dict())
