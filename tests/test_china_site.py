"""The China-site rule set (SPEC §4) billed by the same engine: free quota, packs, suspension.

Every expected figure below is worked out by hand from SPEC §4's tables, not from the engine:
tiers ≤ 3,000,000 / ≤ 15,000,000 / above; 10,000 free calls per category per month, used first and
not granted while suspended; then packs (soonest-expiring first); the pay-as-you-go remainder
decides its tier, and all of it is billed at that tier's price ("volume", as on the international
site). Totals are rounded once per bill to 0.01 CNY, half up.
"""

from __future__ import annotations

import csv
import json
import re
from datetime import date
from decimal import Decimal as D

import pytest

import ratecard
from ratecard.billrun import render_bill
from ratecard.rating import PackBalance, UsageItem, rate
from ratecard.render import render_rate_card
from ratecard.usage import UsageReader

from conftest import ROOT

CN = ROOT / "rules" / "face-recognition-cn"
EXAMPLE = ROOT / "examples" / "usage-cn-2020-09.csv"
PERIOD = "2020-09"


@pytest.fixture(scope="module")
def cn():
    return ratecard.load_rules(CN)


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


# -- the China site in the ledger: packs bought and used, expiry, suspension, the deposit freeze ------------
#
# Worked by hand from SPEC §4. The ledger settles a month on the 1st of the next one (inside the
# deduction window, so the fee is taken at once) and then holds 120% of the month's list-price cost
# (every billable call at pay-as-you-go prices, as if there were no free quota and no packs).

from datetime import datetime  # noqa: E402
from zoneinfo import ZoneInfo  # noqa: E402

from ratecard.ledger import Ledger  # noqa: E402
from ratecard.usage import AccountUsage  # noqa: E402

BEIJING = ZoneInfo("Asia/Shanghai")
SERVICE = "face-recognition-cn"


def bj(*args) -> datetime:
    return datetime(*args, tzinfo=BEIJING)


def cn_usage_of(account: str, period: str, **calls) -> list[AccountUsage]:
    return [AccountUsage(account, period, tuple(UsageItem(api, n) for api, n in calls.items()))]


def after(period: str) -> datetime:
    """The settlement time of a period: 10:00 on the 1st of the next month, Beijing time."""
    year, month = int(period[:4]), int(period[5:])
    return bj(year + month // 12, month % 12 + 1, 1, 10)


def months(first: str, last: str) -> list[str]:
    out, (year, month) = [], (int(first[:4]), int(first[5:]))
    while f"{year:04d}-{month:02d}" <= last:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def cn_account(ledger: Ledger, account: str, money: str | None) -> None:
    start = bj(2020, 9, 1)
    ledger.create_account(account, account.title(), "CNY", start)
    ledger.activate(account, SERVICE, "2020-09", start)
    if money:
        ledger.top_up(account, money, start)


def fs_line(ledger: Ledger, account: str, period: str, category: str = "face-search") -> dict:
    _, bill = ledger.invoice(account, SERVICE, period)
    (found,) = [x for x in bill["lines"] if x["category"] == category]
    return found


def test_cn_a_month_in_which_a_pack_is_bought_and_usage_overflows_it(cn, tmp_path):
    with Ledger(tmp_path / "cn.db", create=True) as ledger:
        cn_account(ledger, "peony", "20000")
        bought = ledger.buy_pack(cn, "peony", "face-search", "1M", bj(2020, 9, 10, 10))
        # The 1,000,000 face-search pack costs 3,100 CNY, taken at once; valid for 12 months.
        assert bought.applied.balance == D("16900")
        assert bought.pack.expires_at == bj(2021, 9, 10, 10)
        # September: 1,500,000 SearchFaces calls: 10,000 free, 1,000,000 from the pack, 490,000
        # pay-as-you-go at tier 1: 490,000 × 0.0032 = 1,568.00 CNY.
        report = ledger.settle(cn, cn_usage_of("peony", PERIOD, SearchFaces=1_500_000), PERIOD, after(PERIOD))
        assert report.accounts[0].total == D("1568.00")
        fs = fs_line(ledger, "peony", PERIOD)
        assert (fs["free_quota_used"], fs["payg_calls"], fs["tier"]) == (10_000, 490_000, 1)
        assert fs["packs_used"] == [{"pack_id": "PK-000001", "units_used": 1_000_000, "units_left": 0}]
        invoice, _ = ledger.invoice("peony", SERVICE, PERIOD)
        # The China site's documents are in Simplified Chinese (its settlement policy's locale).
        assert re.search(r"\n  免费额度抵扣 +10,000\n  资源包 PK-000001 抵扣 +1,000,000  （剩余 0）\n"
                         r"  按量计费 +490,000\n  阶梯 1（全量阶梯）：490,000 × 0\.0032 +1,568\.00\n", invoice)
        # 20,000 − 3,100 − 1,568.00 = 15,332.00; then 120% of 1,500,000 × 0.0032 = 4,800.00 → 5,760.00 held.
        peony = ledger.account("peony")
        assert (peony.balance, peony.frozen, peony.available) == (D("15332.00"), D("5760.00"), D("9572.00"))
        # The month's statement charges the pack and the month's bill: 3,100 + 1,568.00 = 4,668.00.
        statement = ledger.statement("peony", period=PERIOD, time_zone="Asia/Shanghai")
        assert [(c.kind, c.amount) for c in statement.charges] == [("pack-purchase", D("3100")),
                                                                   ("invoice", D("1568.00"))]
        assert statement.charges_total == D("4668.00")
        assert [e.kind for e in statement.entries][-1] == "pack-purchase"
        assert [(p.id, p.used, p.left) for p in statement.packs] == [("PK-000001", 1_000_000, 0)]
        assert ledger.verify() == []


def test_cn_a_pack_that_expires_half_used(cn, tmp_path):
    with Ledger(tmp_path / "cn.db", create=True) as ledger:
        cn_account(ledger, "plum", "10000")
        ledger.buy_pack(cn, "plum", "face-search", "1000000", bj(2020, 9, 10, 10))  # 10,000 − 3,100 = 6,900
        # September 2020: 510,000 calls: 10,000 free and 500,000 from the pack: nothing to pay.
        # 120% of 510,000 × 0.0032 = 1,632.00 → 1,958.40 held.
        ledger.settle(cn, cn_usage_of("plum", "2020-09", SearchFaces=510_000), "2020-09", after("2020-09"))
        assert fs_line(ledger, "plum", "2020-09")["packs_used"] == [
            {"pack_id": "PK-000001", "units_used": 500_000, "units_left": 500_000}]
        plum = ledger.account("plum")
        assert (plum.balance, plum.frozen) == (D("6900.00"), D("1958.40"))
        # October 2020 to September 2021: no calls. The pack expires on 10 September 2021, half used.
        for period in months("2020-10", "2021-08"):
            ledger.settle(cn, (), period, after(period))
        [pack] = ledger.packs("plum", at=bj(2021, 9, 20))
        assert (pack.state, pack.used, pack.left, pack.last_period) == ("expired", 500_000, 500_000, "2021-09")
        ledger.settle(cn, (), "2021-09", after("2021-09"))  # September's settlement records the loss
        [pack] = ledger.packs("plum", at=after("2021-09"))
        assert (pack.used, pack.lost, pack.left) == (500_000, 500_000, 0)
        [lost] = [e for e in ledger.entries("plum") if e.kind == "pack-expired"]
        assert lost.period == "2021-09" and "500,000 unused calls lost" in lost.reason
        # October 2021, the month after: 510,000 calls: 10,000 free, 500,000 pay-as-you-go × 0.0032
        # = 1,600.00 CNY; nothing from the expired pack.
        report = ledger.settle(cn, cn_usage_of("plum", "2021-10", SearchFaces=510_000), "2021-10",
                               after("2021-10"))
        assert report.accounts[0].total == D("1600.00")
        fs = fs_line(ledger, "plum", "2021-10")
        assert (fs["packs_used"], fs["payg_calls"]) == ([], 500_000)
        # 6,900 − 1,600.00 = 5,300.00; 120% of 1,632.00 held again.
        plum = ledger.account("plum")
        assert (plum.balance, plum.frozen) == (D("5300.00"), D("1958.40"))
        statement = ledger.statement("plum", period="2021-09", time_zone="Asia/Shanghai")
        assert [(p.id, p.lost, p.left, p.state) for p in statement.packs] == [("PK-000001", 500_000, 0, "expired")]
        assert ledger.verify() == []


def test_cn_a_suspended_account_gets_no_free_quota(cn, tmp_path):
    with Ledger(tmp_path / "cn.db", create=True) as ledger:
        cn_account(ledger, "willow", None)  # no money at all
        cn_account(ledger, "lotus", "100")
        for period in ("2020-09", "2020-10"):
            usage = cn_usage_of("willow", period, AnalyzeFace=8_000) + cn_usage_of("lotus", period, AnalyzeFace=8_000)
            report = ledger.settle(cn, usage, period, after(period))
            totals = {a.account: a.total for a in report.accounts}
            if period == "2020-09":
                # 8,000 facial-feature calls ≤ 10,000 free: 0.00 each. 120% of 8,000 × 0.002 = 16.00
                # → 19.20 to hold: willow has nothing available, so her service stops.
                assert totals == {"lotus": D("0.00"), "willow": D("0.00")}
                assert ledger.status("willow", SERVICE).state == "suspended"
                assert ledger.status("lotus", SERVICE).allowed
        # October: willow is suspended, so no free quota: 8,000 × 0.002 = 16.00 CNY. lotus pays nothing.
        assert totals == {"lotus": D("0.00"), "willow": D("16.00")}
        assert fs_line(ledger, "willow", "2020-10", "facial-feature-localization")["free_quota_used"] == 0
        assert fs_line(ledger, "lotus", "2020-10", "facial-feature-localization")["free_quota_used"] == 8_000
        assert ledger.account("willow").balance == D("-16.00")
        assert ledger.verify() == []


def test_cn_a_freeze_that_fails_then_a_top_up_that_lets_it_succeed(cn, tmp_path):
    with Ledger(tmp_path / "cn.db", create=True) as ledger:
        cn_account(ledger, "maple", "5000")
        # September: face search 1,010,000 − 10,000 free = 1,000,000 × 0.0032 = 3,200.00; face detection
        # 110,000 − 10,000 = 100,000 × 0.0005 = 50.00. Total 3,250.00; balance 5,000 − 3,250 = 1,750.00.
        usage = cn_usage_of("maple", PERIOD, SearchFaces=1_010_000, DetectFace=110_000)
        report = ledger.settle(cn, usage, PERIOD, after(PERIOD))
        assert report.accounts[0].total == D("3250.00")
        # List price: 1,010,000 × 0.0032 = 3,232.00 and 110,000 × 0.0005 = 55.00, 3,287.00 in all;
        # 120% = 3,944.40 to hold, but only 1,750.00 is available: the freeze fails, the service stops.
        assert ledger.bills("maple")[0].list_cost == D("3287.00")
        maple = ledger.account("maple")
        assert (maple.balance, maple.frozen) == (D("1750.00"), D("0"))
        assert ledger.status("maple", SERVICE).state == "suspended"
        [failed] = [e for e in ledger.entries("maple") if e.kind == "freeze-failed"]
        assert "deposit of 3,944.40 CNY could not be held" in failed.reason
        assert "only 1,750.00 CNY available" in failed.reason
        # A top-up of 2,000 is not enough (3,750.00 < 3,944.40): still suspended.
        ledger.top_up("maple", "2000", bj(2020, 10, 5, 9))
        assert ledger.status("maple", SERVICE).state == "suspended"
        # 194.40 more makes 3,944.40: the deposit is held and the service restarts.
        applied = ledger.top_up("maple", "194.40", bj(2020, 10, 6, 9))
        assert [e.kind for e in applied.entries] == ["top-up", "freeze", "resumed"]
        maple = ledger.account("maple")
        assert (maple.balance, maple.frozen, maple.available) == (D("3944.40"), D("3944.40"), D("0.00"))
        assert ledger.status("maple", SERVICE).allowed
        assert ledger.verify() == []


# -- the commands work on this rule set unchanged --------------------------------------------------------------


def _run(capsys, *args) -> tuple[int, str, str]:
    from ratecard.cli import main

    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cn_validate_lint_quote_bill_settle_and_packs_from_the_command_line(capsys, tmp_path):
    code, out, _ = _run(capsys, "validate", CN)
    assert code == 0 and "valid — 7 categories" in out and "CNY" in out
    code, out, _ = _run(capsys, "lint", CN)
    assert code == 0 and "face-recognition-cn: valid" in out
    code, out, _ = _run(capsys, "quote", "SearchFaces=1500000", "--rules", CN, "--period", PERIOD,
                        "--pack", "face-search=1000000", "--format", "json")
    assert code == 0 and json.loads(out)["total"] == "1568.00"
    code, out, err = _run(capsys, "bill", "--usage", EXAMPLE, "--rules", CN, "--period", PERIOD, "--quiet")
    assert code == 0 and "billed 5 invoices" in err and "CNY" in err and out.count("账单 2020") == 5

    db = tmp_path / "cn.db"
    start = "2020-09-01T00:00:00+08:00"
    assert _run(capsys, "account", "create", "peony", "--currency", "CNY", "--at", start, "--db", db)[0] == 0
    assert _run(capsys, "account", "activate", "peony", "--service", SERVICE, "--terms", "v1", "--at", start,
                "--db", db)[0] == 0
    assert _run(capsys, "topup", "peony", "20000", "--at", start, "--db", db)[0] == 0
    code, _, err = _run(capsys, "pack", "buy", "peony", "face-search", "5000", "--rules", CN, "--at",
                        "2020-09-10T10:00:00+08:00", "--db", db)
    assert code == 1 and "the sizes on sale are: 100,000 (318.00 CNY), 1,000,000 (3,100.00 CNY)" in err
    code, out, _ = _run(capsys, "pack", "buy", "peony", "face-search", "1,000,000", "--rules", CN, "--at",
                        "2020-09-10T10:00:00+08:00", "--db", db)
    assert code == 0 and "bought for 3,100.00 CNY" in out
    usage = tmp_path / "u.csv"
    usage.write_text("account,period,api,calls\npeony,2020-09,SearchFaces,1500000\n", encoding="utf-8")
    code, out, _ = _run(capsys, "settle", "--period", PERIOD, "--usage", usage, "--rules", CN, "--at",
                        "2020-10-01T10:00:00+08:00", "--db", db, "--format", "json")
    [settled] = json.loads(out)["accounts"]
    assert code == 0 and settled["total"] == "1568.00"
    assert [e["kind"] for e in settled["entries"]] == ["bill-issued", "pack-use", "debit", "freeze"]
    # Settling again takes nothing more from the pack.
    code, out, _ = _run(capsys, "settle", "--period", PERIOD, "--usage", usage, "--rules", CN, "--at",
                        "2020-10-02T10:00:00+08:00", "--db", db, "--format", "json")
    assert code == 0 and [a["outcome"] for a in json.loads(out)["accounts"]] == ["already-settled"]
    code, out, _ = _run(capsys, "pack", "list", "peony", "--at", "2020-10-02T10:00:00+08:00", "--db", db,
                        "--format", "json")
    assert [(p["used"], p["left"], p["state"]) for p in json.loads(out)["packs"]] == [(1_000_000, 0, "used-up")]
    code, out, _ = _run(capsys, "statement", "peony", "--period", PERIOD, "--rules", CN, "--db", db)
    assert code == 0 and "Charges for 2020-09" in out and "4,668.00" in out


def test_cn_a_pack_is_not_written_off_by_a_later_period_settled_first(cn, tmp_path, capsys):
    # issue 11 item 2: a 100k pack bought in 2020-09; settling 2021-10 before 2021-09 marked its units
    # lost, and September then paid 25.00 CNY although `quote --pack` says 0.00.
    from ratecard.cli import main

    calls = {"2021-09": 60_000, "2021-10": 60_000}  # 10,000 free, 50,000 from the pack or × 0.0005

    def run(order: list[str], db) -> dict:
        with Ledger(db, create=True) as ledger:
            cn_account(ledger, "lily", "1000")
            ledger.buy_pack(cn, "lily", "face-detection", "100k", bj(2020, 9, 20, 10))  # until 2021-09-20
            for n, period in enumerate(order):
                at = after("2021-10").replace(hour=10 + n // 60, minute=n % 60)
                report = ledger.settle(cn, cn_usage_of("lily", period, DetectFace=calls.get(period, 0)), period, at)
                assert report.complete, report.failed
            assert ledger.verify() == []
            return {"bills": {p: ledger.invoice("lily", SERVICE, p)[1] for p in order},
                    "balance": ledger.account("lily").balance,
                    "units": sorted(ledger._read("SELECT pack, kind, units FROM pack_units"))}

    earlier = months("2020-09", "2021-08")
    in_order = run(earlier + ["2021-09", "2021-10"], tmp_path / "in-order.db")
    out_of_order = run(earlier + ["2021-10", "2021-09"], tmp_path / "out-of-order.db")
    assert in_order == out_of_order
    capsys.readouterr()
    assert main(["quote", "DetectFace=60000", "--pack", "face-detection=100000", "--rules", str(CN),
                 "--period", "2021-09", "--format", "json"]) == 0
    quoted = json.loads(capsys.readouterr().out)["total"]
    assert D(out_of_order["bills"]["2021-09"]["total"]) == D(quoted) == D("0.00")
    assert D(out_of_order["bills"]["2021-10"]["total"]) == D("25.00")
    # 50,000 units used by September, the other 50,000 lost with the pack once September was billed.
    assert out_of_order["units"] == [("PK-000001", "pack-expired", 50_000), ("PK-000001", "pack-use", 50_000)]
