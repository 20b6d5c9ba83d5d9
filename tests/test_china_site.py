"""The China-site rule set (SPEC §4) billed by the same engine: free quota, packs, suspension.

Every expected figure below is worked out by hand from SPEC §4's tables, not from the engine:
tiers ≤ 3,000,000 / ≤ 15,000,000 / above; 10,000 free calls per category per month, used first and
not granted while suspended; then packs (soonest-expiring first); the pay-as-you-go remainder
decides its tier, and all of it is billed at that tier's price ("volume", as on the international
site). Totals are rounded once per bill to 0.01 CNY, half up.
"""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal as D

import pytest

import engine
from engine.billrun import render_bill
from engine.rating import PackBalance, UsageItem, rate
from engine.render import render_rate_card
from engine.usage import UsageReader

from conftest import ROOT

CN = ROOT / "rules" / "face-recognition-cn"
EXAMPLE = ROOT / "examples" / "usage-cn-2020-09.csv"
PERIOD = "2020-09"


@pytest.fixture(scope="module")
def cn():
    return engine.load_rules(CN)


def line(bill, category):
    (found,) = [x for x in bill.lines if x.category == category]
    return found


def test_the_book_is_cny_with_free_quota_packs_and_a_freeze(cn):
    book, mapping, policy = cn.in_force(PERIOD)
    assert book.currency == "CNY" and book.pack_validity_months == 12
    assert {c.id: c.free_quota for c in book.categories.values()} == dict.fromkeys(book.categories, 10_000)
    assert book.free_quota_while_suspended is False
    assert policy.deposit_freeze_percent == D("120") and policy.resume_when == "freeze-succeeds"
    prices = {c.id: [str(t.unit_price) for t in c.tiers] for c in book.categories.values()}
    assert prices == {
        "face-detection": ["0.0005", "0.0004", "0.0003"],
        "facial-feature-localization": ["0.002", "0.0018", "0.0015"],
        "face-comparison": ["0.0032", "0.003", "0.0027"],
        "face-verification": ["0.0032", "0.003", "0.0027"],
        "face-search": ["0.0032", "0.003", "0.0027"],
        "group-management": ["0.0032", "0.003", "0.0027"],
        "liveness-detection": ["0.0019", "0.0017", "0.0013"],
    }
    packs = {c.id: {p.units: str(p.price) for p in c.packs} for c in book.categories.values()}
    comparison_class = {100_000: "318", 1_000_000: "3100", 10_000_000: "30400", 50_000_000: "142500",
                        100_000_000: "255000"}
    assert packs == {
        "face-detection": {100_000: "48", 1_000_000: "450", 10_000_000: "4100", 50_000_000: "17500",
                           100_000_000: "25000"},
        "facial-feature-localization": {100_000: "198", 1_000_000: "1900", 10_000_000: "18200",
                                        50_000_000: "82500", 100_000_000: "135000"},
        "face-comparison": comparison_class, "face-verification": comparison_class,
        "face-search": comparison_class, "group-management": comparison_class,
        "liveness-detection": {1_000_000: "1800", 10_000_000: "17400", 50_000_000: "75000",
                               100_000_000: "110000"},
    }


def test_facial_feature_localization_within_the_free_quota_costs_nothing(cn):
    # 8,000 + 1,500 = 9,500 billable calls ≤ 10,000 free: nothing to pay.
    bill = rate(cn, {"AnalyzeFace": 8_000, "AnalyzeDenseLandmarks": 1_500}, PERIOD)
    ffl = line(bill, "facial-feature-localization")
    assert (ffl.calls, ffl.free_quota_used, ffl.payg_calls, ffl.amount) == (9_500, 9_500, 0, 0)
    assert bill.total == D("0.00") and bill.currency == "CNY"


def test_facial_feature_localization_in_tier_1_after_the_free_quota(cn):
    # 2,500,000 − 10,000 free = 2,490,000 pay-as-you-go, tier 1: × 0.002 = 4,980.00 CNY.
    bill = rate(cn, {"AnalyzeFace": 2_500_000}, PERIOD)
    ffl = line(bill, "facial-feature-localization")
    assert (ffl.free_quota_used, ffl.payg_calls, ffl.tier, ffl.unit_price) == (10_000, 2_490_000, 1, D("0.002"))
    assert bill.total == D("4980.00")


@pytest.mark.parametrize("create_face, tier, total", [
    # 2,000,000 + 1,010,000 = 3,010,000 billable; − 10,000 free = 3,000,000: still tier 1, × 0.0032.
    (1_010_000, 1, D("9600.00")),
    # One more: 3,000,001 pay-as-you-go is tier 2, all of it × 0.003 = 9,000.003 → 9,000.00.
    (1_010_001, 2, D("9000.00")),
])
def test_group_management_mixes_billable_and_free_apis_across_a_tier_bound(cn, create_face, tier, total):
    usage = {"CreatePerson": 2_000_000, "CreateFace": create_face, "GetGroupList": 500_000, "DeletePerson": 1_200}
    gm = line(rate(cn, usage, PERIOD), "group-management")
    assert gm.free_calls == 501_200  # free APIs: shown, never charged, never counted toward the tier
    assert (gm.calls, gm.payg_calls, gm.tier) == (2_000_000 + create_face, 1_990_000 + create_face, tier)
    assert rate(cn, usage, PERIOD).total == total


def test_usage_overflowing_a_pack(cn):
    # A 1,000,000 face-search pack: 1,500,000 calls − 10,000 free − 1,000,000 from the pack
    # = 490,000 pay-as-you-go, tier 1: × 0.0032 = 1,568.00 CNY. The pack is used up.
    pack = PackBalance("fs-1m", "face-search", 1_000_000, date(2021, 9, 10))
    fs = line(rate(cn, {"SearchFaces": 1_500_000}, PERIOD, packs=[pack]), "face-search")
    assert (fs.free_quota_used, fs.payg_calls, fs.amount) == (10_000, 490_000, D("1568.0000"))
    assert [(u.pack_id, u.units_used, u.units_left) for u in fs.packs_used] == [("fs-1m", 1_000_000, 0)]


def test_packs_are_used_soonest_expiring_first_and_the_remainder_decides_the_tier(cn):
    # 20,000,000 calls − 10,000 free; packs: 10M expiring 2021-03, 10M expiring 2021-01 (used first).
    # 19,990,000 − 10,000,000 − 9,990,000 → 0 pay-as-you-go; the later pack keeps 10,000.
    late = PackBalance("late", "face-search", 10_000_000, date(2021, 3, 1))
    early = PackBalance("early", "face-search", 10_000_000, date(2021, 1, 1))
    fs = line(rate(cn, {"SearchFaces": 20_000_000}, PERIOD, packs=[late, early]), "face-search")
    assert [(u.pack_id, u.units_used, u.units_left) for u in fs.packs_used] == [
        ("early", 10_000_000, 0), ("late", 9_990_000, 10_000)]
    assert (fs.payg_calls, fs.amount) == (0, 0)


def test_a_pack_that_expired_before_the_period_is_not_used(cn):
    expired = PackBalance("old", "face-search", 500_000, date(2020, 9, 1))  # expires as September begins
    fs = line(rate(cn, {"SearchFaces": 110_000}, PERIOD, packs=[expired]), "face-search")
    assert fs.packs_used == () and fs.payg_calls == 100_000 and fs.amount == D("320.0000")


def test_a_suspended_account_gets_no_free_quota(cn):
    # 8,000 facial-feature calls: free when active; while suspended all 8,000 × 0.002 = 16.00 CNY.
    assert rate(cn, {"AnalyzeFace": 8_000}, PERIOD).total == D("0.00")
    suspended = rate(cn, {"AnalyzeFace": 8_000}, PERIOD, suspended=True)
    assert line(suspended, "facial-feature-localization").free_quota_used == 0
    assert suspended.total == D("16.00")


def test_billable_error_codes_follow_the_mapping(cn):
    usage = [UsageItem("DetectFace", 40_000, "success"),
             UsageItem("DetectFace", 2_500, "InvalidParameterValue.NoFaceInPhoto"),
             UsageItem("DetectFace", 900, "FailedOperation.ImageDecodeFailed")]
    fd = line(rate(cn, usage, PERIOD), "face-detection")
    # 42,500 billable − 10,000 free = 32,500 × 0.0005 = 16.25; the 900 failed calls are free.
    assert (fd.calls, fd.free_calls, fd.amount) == (42_500, 900, D("16.2500"))


# -- invoices and the rate card, guarded by snapshots ------------------------------------------------


def _accounts():
    with open(EXAMPLE, newline="", encoding="utf-8") as fh:
        return sorted({row["account"] for row in csv.DictReader(fh)})


@pytest.fixture(scope="module")
def cn_usage(cn):
    reader = UsageReader(cn).read(str(EXAMPLE))
    reader.raise_for_rejects()
    return {u.account: u for u in reader.accounts()}


@pytest.mark.parametrize("account", _accounts())
@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_cn_invoice(account, fmt, cn, cn_usage, snapshot_txt, snapshot_md, snapshot_html):
    usage = cn_usage[account]
    text = render_bill(rate(cn, usage.items, usage.period, account=account), cn, fmt)
    assert text == {"text": snapshot_txt, "markdown": snapshot_md, "html": snapshot_html}[fmt]


@pytest.mark.parametrize("fmt", ["markdown", "html"])
def test_cn_rate_card(fmt, cn, snapshot_md, snapshot_html):
    assert render_rate_card(cn, fmt, PERIOD) == {"markdown": snapshot_md, "html": snapshot_html}[fmt]
