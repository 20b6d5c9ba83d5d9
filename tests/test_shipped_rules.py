"""The shipped rule set says exactly what SPEC §1–§3 say, category by category and API by API.

The tables below are copied from the SPEC by hand, not from the rule files: a typo in either shows.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

# SPEC §1: category → (display name, tier-1, tier-2, tier-3 unit price in USD).
PRICES = {
    "face-detection": ("Face detection and analysis", "0.0005", "0.0004", "0.0003"),
    "facial-feature-localization": ("Facial feature localization", "0.0005", "0.0004", "0.0003"),
    "face-comparison": ("Face comparison", "0.0008", "0.0006", "0.0004"),
    "face-verification": ("Face verification", "0.0008", "0.0006", "0.0004"),
    "face-search": ("Face search", "0.0008", "0.0006", "0.0004"),
    "group-management": ("Group management", "0.0008", "0.0006", "0.0004"),
    "liveness-detection": ("Image-based liveness detection", "0.0008", "0.0006", "0.0004"),
}
BOUNDS = (3_000_000, 15_000_000, None)  # inclusive upper bounds; the last tier is unbounded

# SPEC §2: category → (billable APIs, free APIs).
APIS = {
    "face-detection": (["DetectFace", "DetectFaceAttributes"], []),
    "facial-feature-localization": (["AnalyzeFace", "AnalyzeDenseLandmarks"], []),
    "face-comparison": (["CompareFace", "CompareMaskFace"], []),
    "face-verification": (["VerifyFace", "VerifyPerson"], []),
    "face-search": (["SearchFaces", "SearchFacesReturnsByGroup", "SearchPersons", "SearchPersonsReturnsByGroup"], []),
    "group-management": (
        ["CreatePerson", "CreateFace"],
        ["CreateGroup", "DeleteGroup", "GetGroupInfo", "GetGroupList", "ModifyGroup", "DeletePerson",
         "DeletePersonFromGroup", "GetPersonGroupInfo", "GetPersonBaseInfo", "GetPersonList", "GetPersonListNum",
         "ModifyPersonGroupInfo", "ModifyPersonBaseInfo", "CopyPerson", "DeleteFace",
         "GetUpgradeGroupFaceModelVersionJobList", "GetUpgradeGroupFaceModelVersionResult",
         "RevertGroupFaceModelVersion", "UpgradeGroupFaceModelVersion"],
    ),
    "liveness-detection": (["DetectLiveFace"], []),
}

EFFECTIVE = date(2020, 9, 15)


@pytest.fixture(scope="module")
def first(shipped_rules):
    """The first version of each kind: the one SPEC §1–§3 describe."""
    return shipped_rules.pricing[0], shipped_rules.mappings[0], shipped_rules.policies[0]


def test_price_book_terms(first):
    book = first[0]
    assert (book.currency, book.unit, book.tier_mode, book.effective_from) == ("USD", "call", "volume", EFFECTIVE)
    assert list(book.categories) == list(PRICES)  # no category more or less, in the SPEC's order


@pytest.mark.parametrize("category", PRICES)
def test_category_prices_and_bounds(first, category):
    cat = first[0].categories[category]
    name, *prices = PRICES[category]
    assert cat.name == name
    assert cat.tier_mode == "volume"
    assert [(t.up_to, t.unit_price) for t in cat.tiers] == [(b, Decimal(p)) for b, p in zip(BOUNDS, prices)]
    assert all(isinstance(t.unit_price, Decimal) for t in cat.tiers)
    # The international site has no free quota and no packs (those are SPEC §4, the China site).
    assert (cat.free_quota, cat.packs) == (0, ())


@pytest.mark.parametrize("category", APIS)
def test_category_apis(first, category):
    mapping = first[1]
    billable, free = APIS[category]
    assert sorted(mapping.apis_of(category, billable=True)) == sorted(billable)
    assert sorted(mapping.apis_of(category, billable=False)) == sorted(free)


def test_no_api_beyond_the_spec(first):
    mapping = first[1]
    listed = {api for billable, free in APIS.values() for api in billable + free}
    assert set(mapping.apis) == listed
    assert sum(len(b) for b, _ in APIS.values()) == 15 and sum(len(f) for _, f in APIS.values()) == 19


def test_billable_outcomes(first):
    mapping = first[1]
    assert mapping.effective_from == EFFECTIVE
    assert mapping.api_version == "2020-03-03"
    assert mapping.success_billable is True
    assert mapping.billable_error_codes == frozenset({"InvalidParameterValue.NoFaceInPhoto"})


def test_settlement_policy(first):
    policy = first[2]
    assert policy.effective_from == EFFECTIVE
    assert policy.billing_cycle == "calendar-month"
    assert policy.time_zone == "Asia/Shanghai"  # Beijing time, UTC+8
    assert policy.bill_issue_day == 1
    assert (policy.deduction_first_day, policy.deduction_last_day) == (1, 3)
    assert (policy.arrears_action, policy.resume_when) == ("suspend-service", "balance-not-negative")
    assert policy.deposit_freeze_percent is None  # the freeze is a China-site feature (SPEC §4)


def test_later_versions_keep_the_spec_prices(shipped_rules):
    # A later version (e.g. the dated DetectLiveFaceAccurate change of SPEC §2) may add, never reprice.
    for book in shipped_rules.pricing:
        for category, (_, *prices) in PRICES.items():
            assert [t.unit_price for t in book.categories[category].tiers] == [Decimal(p) for p in prices]
    for mapping in shipped_rules.mappings:
        for category, (billable, free) in APIS.items():
            assert set(billable) <= set(mapping.apis_of(category, billable=True))


def test_the_2022_08_mapping_adds_exactly_detect_live_face_accurate(shipped_rules):
    # SPEC §2: DetectLiveFaceAccurate is billed as image-based liveness detection from 2022-08-01; nothing else changes.
    first, second = shipped_rules.mappings
    assert second.effective_from == date(2022, 8, 1)
    assert set(second.apis) - set(first.apis) == {"DetectLiveFaceAccurate"}
    assert second.apis["DetectLiveFaceAccurate"].category == "liveness-detection"
    assert second.apis["DetectLiveFaceAccurate"].billable
    assert all(second.apis[api] == rule for api, rule in first.apis.items())
    assert (second.api_version, second.success_billable, second.billable_error_codes, second.unknown_outcome,
            second.unknown_api) == (first.api_version, first.success_billable, first.billable_error_codes,
                                    first.unknown_outcome, first.unknown_api)
    assert len(shipped_rules.pricing) == len(shipped_rules.policies) == 1
