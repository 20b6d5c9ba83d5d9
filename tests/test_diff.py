"""`ratecard diff`: the same usage billed by two rule sets, compared per category and per account."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
from decimal import ROUND_HALF_UP, Decimal as D
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from conftest import ROOT, SHIPPED, TOY_APIS, TOY_PRICING, TOY_SETTLEMENT, write_rule_set
from ratecard.cli import main
from ratecard.diff import diff_rules, percent, rises_above
from ratecard.errors import RatecardError
from ratecard.rules import load_rules
from ratecard.usage import UsageReader
from ratecard.versions import load_git_rules

EXAMPLE = ROOT / "examples" / "usage-2020-09.csv"

# SPEC §1 and §2, copied by hand: category → (tier-1, tier-2, tier-3 USD price, billable APIs).
SPEC = {
    "face-detection": ("0.0005", "0.0004", "0.0003", {"DetectFace", "DetectFaceAttributes"}),
    "facial-feature-localization": ("0.0005", "0.0004", "0.0003", {"AnalyzeFace", "AnalyzeDenseLandmarks"}),
    "face-comparison": ("0.0008", "0.0006", "0.0004", {"CompareFace", "CompareMaskFace"}),
    "face-verification": ("0.0008", "0.0006", "0.0004", {"VerifyFace", "VerifyPerson"}),
    "face-search": ("0.0008", "0.0006", "0.0004", {"SearchFaces", "SearchFacesReturnsByGroup", "SearchPersons",
                                                   "SearchPersonsReturnsByGroup"}),
    "group-management": ("0.0008", "0.0006", "0.0004", {"CreatePerson", "CreateFace"}),
    "liveness-detection": ("0.0008", "0.0006", "0.0004", {"DetectLiveFace"}),
}
BILLED_OUTCOMES = {"success", "InvalidParameterValue.NoFaceInPhoto", ""}  # "" = not said: billable


def by_hand(rise: D):
    """Per account and per category: (billable calls, exact amount), from the example file and SPEC.

    Every price times `rise`; the bill total is rounded half up to the cent (SPEC §3 policy).
    """
    category_of = {api: cid for cid, (*_, apis) in SPEC.items() for api in apis}
    calls: dict[tuple[str, str], int] = {}
    with open(EXAMPLE, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["api"] == "DetectLiveFaceAccurate":
                continue  # not in the 2020-09 mapping: the bad row of line 30
            cid = category_of.get(row["api"])
            billed = int(row["calls"]) if cid and row["outcome"] in BILLED_OUTCOMES else 0
            calls.setdefault((row["account"], cid), 0)
            calls[(row["account"], cid)] += billed
    lines = {}
    for (account, cid), n in calls.items():
        if cid is None:
            continue
        t1, t2, t3, _ = SPEC[cid]
        price = D(t1) if n <= 3_000_000 else D(t2) if n <= 15_000_000 else D(t3)
        lines[(account, cid)] = (n, price * rise * n)
    accounts = {}
    for (account, _), (n, amount) in lines.items():
        c, a = accounts.get(account, (0, D(0)))
        accounts[account] = (c + n, a + amount)
    for account in {row for row, _ in calls}:  # accounts with only free calls have a bill of 0.00
        accounts.setdefault(account, (0, D(0)))
    totals = {account: (n, a.quantize(D("0.01"), ROUND_HALF_UP)) for account, (n, a) in accounts.items()}
    categories = {}
    for (_, cid), (n, amount) in lines.items():
        c, a = categories.get(cid, (0, D(0)))
        categories[cid] = (c + n, a + amount)
    return totals, categories


def raised_copy(tmp_path, factor: str) -> Path:
    """A copy of the shipped rules with every unit price multiplied by `factor`, exactly."""
    folder = tmp_path / "raised" / SHIPPED.name
    shutil.copytree(SHIPPED, folder)
    pricing = folder / "pricing.yaml"
    text = re.sub(r"unit_price: ([0-9.]+)", lambda m: f"unit_price: {D(m.group(1)) * D(factor)}",
                  pricing.read_text(encoding="utf-8"))
    pricing.write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def ten_percent(tmp_path_factory, shipped_rules):
    new = load_rules(raised_copy(tmp_path_factory.mktemp("diff"), "1.1"))
    rejected = []
    usage = list(UsageReader(new, on_reject=rejected.append).read(EXAMPLE).accounts())

    def again(pct):
        return diff_rules(shipped_rules, new, usage, alert_pct=pct)

    return again(D("10")), rejected, again


def test_a_uniform_ten_percent_rise_on_the_example_usage_equals_the_hand_computed_figures(ten_percent):
    result, rejected, _ = ten_percent
    assert [(r.line, r.code) for r in rejected] == [(30, "unknown-api")]
    old, old_categories = by_hand(D(1))
    new, new_categories = by_hand(D("1.1"))
    expected_old = sum(total for _, total in old.values())
    expected_new = sum(total for _, total in new.values())
    # The figures themselves, as a reader would check them: 61,503.80 USD today, 67,654.18 after.
    assert (expected_old, expected_new) == (D("61503.80"), D("67654.18"))
    assert result.total.base_total == expected_old and result.total.new_total == expected_new
    assert result.total.change == D("6150.38")
    assert result.total.percent == D("10.00")  # 6,150.38 / 61,503.80 = 10.0000032...%
    assert result.total.base_calls == result.total.new_calls == sum(n for n, _ in old.values())
    assert {a.key: (a.new_calls, a.base_total, a.new_total) for a in result.accounts} == {
        account: (n, old[account][1], total) for account, (n, total) in new.items()}
    assert {c.key: (c.base_calls, c.base_total, c.new_total) for c in result.categories} == {
        cid: (n, amount, new_categories[cid][1]) for cid, (n, amount) in old_categories.items()}
    for category in result.categories:  # exact amounts: exactly 10% more, category by category
        assert category.change * 10 == category.base_total and category.percent == D("10.00")
    assert result.currency == "USD" and result.periods == ("2020-09",) and result.bills == 13
    assert result.tier_changes == ()  # the same calls reach the same tiers
    assert result.not_billed == ()


def test_rows_are_sorted_by_impact_then_name(ten_percent):
    result, _, _ = ten_percent
    for rows in (result.categories, result.accounts):
        keys = [(-abs(r.change), r.name) for r in rows]
        assert keys == sorted(keys)
    assert result.accounts[0].key == "umbrella"  # 15,000.00 → 16,500.00, the largest change
    assert result.accounts[-1].key == "piedpiper"  # only free APIs: 0.00 → 0.00


def test_alerts_are_exact_although_percentages_are_rounded(ten_percent):
    result, _, _ = ten_percent
    old, _ = by_hand(D(1))
    new, _ = by_hand(D("1.1"))
    # By hand: a rounded total can rise by a hair more (or less) than 10%; only "more" is an alert.
    expected = {a for a in old if new[a][1] > old[a][1] and (new[a][1] - old[a][1]) * 100 > 10 * old[a][1]}
    assert {a.account for a in result.alerts} == expected == set()  # here, no rounding tips one over
    lower = ten_percent[2](D("9.99"))
    assert {a.account for a in lower.alerts} == set(old) - {"piedpiper"}  # every bill above 0.00
    assert [a.account for a in lower.alerts][:2] == ["umbrella", "soylent"]  # largest rise first
    cyberdyne = next(a for a in result.accounts if a.key == "cyberdyne")
    assert (cyberdyne.base_total, cyberdyne.new_total) == (D("3.80"), D("4.18"))  # exactly 10% more: no alert
    assert "cyberdyne" not in expected


def test_the_json_report(ten_percent, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    new = raised_copy(tmp_path, "1.1")
    code = main(["diff", "--base", "rules/face-recognition", "--rules", str(new), "--usage", str(EXAMPLE),
                 "--rejects", str(tmp_path / "bad.csv"), "--alert-pct", "10", "--format", "json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    result, _, _ = ten_percent
    assert out["total"] == {"key": "total", "name": "Total", "base_calls": result.total.base_calls,
                            "new_calls": result.total.new_calls, "base_total": "61503.80",
                            "new_total": "67654.18", "change": "6150.38", "percent": "10.00"}
    assert [a["key"] for a in out["accounts"]] == [a.key for a in result.accounts]
    assert out["alert_pct"] == "10" and len(out["alerts"]) == len(result.alerts)
    assert out["versions"] == [{"period": "2020-09", "base": {"pricing": "2020-09-15", "api-mapping": "2020-09-15",
                                                              "settlement": "2020-09-15"},
                                "new": {"pricing": "2020-09-15", "api-mapping": "2020-09-15",
                                        "settlement": "2020-09-15"}}]
    bad = (tmp_path / "bad.csv").read_text(encoding="utf-8").splitlines()
    assert len(bad) == 2 and bad[1].startswith("examples/usage-2020-09.csv,30,unknown API 'DetectLiveFaceAccurate'")


def test_the_text_report(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    new = raised_copy(tmp_path, "1.1")
    assert main(["diff", "--base", "rules/face-recognition", "--rules", str(new), "--usage", str(EXAMPLE),
                 "--rejects", str(tmp_path / "bad.csv"), "--alert-pct", "10"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "13 bills in 2020-09, USD"
    total = next(line for line in out if line.startswith("Total "))
    assert total.split() == ["Total", "129,005,502", "129,005,502", "61,503.80", "67,654.18", "+6,150.38", "+10.00%"]
    umbrella = next(line for line in out if line.startswith("umbrella "))
    assert umbrella.split()[-4:] == ["15,000.00", "16,500.00", "+1,500.00", "+10.00%"]
    assert "Tier changes: none" in out
    assert out[-1] == "1 bad row written to " + str(tmp_path / "bad.csv")


def test_bad_usage_rows_stop_the_diff_unless_written_to_a_rejects_file(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["diff", "--base", "rules/face-recognition", "--usage", "examples/usage-2020-09.csv"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("examples/usage-2020-09.csv:30: unknown API 'DetectLiveFaceAccurate'")
    assert "Traceback" not in err


# -- tiers, new bills, alerts, percentages ------------------------------------------------------------------

def _usage(path: Path, rows: str) -> Path:
    path.write_text("account,period,api,calls,outcome\n" + rows, encoding="utf-8")
    return path


def _diff(base_dir, new_dir, usage, **kw):
    new = load_rules(new_dir)
    return diff_rules(load_rules(base_dir), new, UsageReader(new).read(usage).accounts(), **kw)


def test_tier_changes_new_categories_and_not_billed_usage(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = write_rule_set(Path("base"))
    # New: the widgets tier 1 ends at 50 (not 100), and ListWidgets moves from free to a new billable category.
    new = write_rule_set(Path("new"),
                         pricing=TOY_PRICING.replace("up_to: 100,", "up_to: 50,") + (
                             "  listings:\n    name: Listings\n    tiers:\n      - { unit_price: 0.5 }\n"),
                         apis=TOY_APIS.replace("    free: [ListWidgets]\n", "") + "  listings:\n"
                                                                                "    billable: [ListWidgets]\n")
    usage = _usage(tmp_path / "u.csv", "a,2024-02,RenderWidget,60,success\na,2024-02,ListWidgets,4,success\n"
                                       "b,2024-02,RenderWidget,40,success\n")
    result = _diff(base, new, usage, alert_pct=D(0))
    (change,) = result.tier_changes
    assert (change.account, change.category, change.base_tier, change.new_tier, change.new_calls) == \
        ("a", "widgets", 1, 2, 60)
    listings = next(c for c in result.categories if c.key == "listings")
    assert (listings.base_total, listings.new_total, listings.percent) == (D(0), D("2.0"), None)
    widgets = next(c for c in result.categories if c.key == "widgets")
    assert (widgets.base_total, widgets.new_total) == (D("10.00"), D("7.00"))  # 100×0.10 → 60×0.05 + 40×0.10
    assert [a.key for a in result.accounts] == ["a", "b"]  # a: 6.00 → 5.00 (−1.00); b: no change
    assert result.alerts == ()  # a's bill falls; b's is unchanged: neither rises above 0%
    assert result.not_billed == ()  # ListWidgets was free in the base, not unknown


def test_usage_the_base_mapping_does_not_list_is_shown_as_not_billed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = write_rule_set(Path("base"))
    new = write_rule_set(Path("new"), apis=TOY_APIS.replace("[LookupGadget]", "[LookupGadget, LookupGadgetV2]"))
    usage = _usage(tmp_path / "u.csv", "a,2024-02,LookupGadgetV2,3,success\n")
    result = _diff(base, new, usage, alert_pct=D(50))
    assert [(n.side, n.account, n.api, n.calls) for n in result.not_billed] == [("base", "a", "LookupGadgetV2", 3)]
    (account,) = result.accounts
    assert (account.base_total, account.new_total, account.percent) == (D("0.00"), D("4.50"), None)
    assert [a.account for a in result.alerts] == ["a"]  # a rise from nothing is above any percentage
    assert result.to_dict()["accounts"][0]["percent"] == "new"


def test_different_currencies_cannot_be_compared(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = write_rule_set(Path("base"))
    new = write_rule_set(Path("new"), pricing=TOY_PRICING.replace("EUR", "USD"))
    with pytest.raises(RatecardError, match="different currencies: base rules base bill in EUR, new rules new in USD"):
        _diff(base, new, _usage(tmp_path / "u.csv", "a,2024-02,RenderWidget,1,success\n"))


def test_a_period_the_base_rules_do_not_cover_is_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = write_rule_set(Path("base"), *(text.replace("2024-01-01", "2024-06-01")
                                          for text in (TOY_PRICING, TOY_APIS, TOY_SETTLEMENT)))
    new = write_rule_set(Path("new"))
    with pytest.raises(RatecardError, match="base rules base: no price book is in force for period 2024-02"):
        _diff(base, new, _usage(tmp_path / "u.csv", "a,2024-02,RenderWidget,1,success\n"))


def test_exactly_the_alert_percentage_is_not_an_alert():
    assert not rises_above(D("100.00"), D("110.00"), D("10"))
    assert rises_above(D("100.00"), D("110.01"), D("10"))
    assert rises_above(D("0"), D("0.01"), D("1000"))
    assert not rises_above(D("0"), D("0"), D("0"))
    assert not rises_above(D("5"), D("4"), D("0"))


def test_percent_rounds_half_up_and_a_change_from_zero_is_new():
    assert percent(D("3"), D("3.00015")) == D("0.01")  # 0.005% exactly: half up
    assert percent(D("3"), D("2.99985")) == D("-0.01")  # half away from zero on the way down too
    assert percent(D("3"), D("3.000149")) == D("0.00")
    assert percent(D("80"), D("0")) == D("-100.00")
    assert percent(D("0"), D("0")) == D("0.00")
    assert percent(D("0"), D("1")) is None


@given(st.decimals(min_value=D("0.01"), max_value=D("1000000"), places=4),
       st.decimals(min_value=D("0"), max_value=D("1000000"), places=4))
def test_percent_is_the_exact_ratio_rounded_to_the_nearest_hundredth(base, new):
    shown = percent(base, new)
    exact = (new - base) * 100 / base  # 28 significant digits: far below the hundredth
    assert abs(shown - exact) <= D("0.005") + D("1e-20")
    assert shown.as_tuple().exponent == -2


# -- git:REV --------------------------------------------------------------------------------------------------

def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A git repository with the toy rules committed, then one price changed and committed again."""
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q")
    folder = write_rule_set(root / "rules" / "toy")
    _usage(root / "usage.csv", "a,2024-02,RenderWidget,50,success\nb,2024-02,LookupGadget,20,success\n")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "rules")
    pricing = folder / "pricing.yaml"
    pricing.write_text(pricing.read_text(encoding="utf-8").replace("unit_price: 0.10", "unit_price: 0.11"),
                       encoding="utf-8")
    _git(root, "commit", "-q", "-am", "widgets +10%")
    monkeypatch.chdir(root)
    return root


def test_git_rev_is_the_rules_folder_as_committed_at_that_revision(repo, capsys):
    assert main(["diff", "--base", "git:HEAD~1", "--rules", "rules/toy", "--usage", "usage.csv",
                 "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["base"]["path"] == "git:HEAD~1:rules/toy" and out["base"]["name"] == "toy"
    assert out["rules"]["path"] == "rules/toy"
    assert {a["key"]: (a["base_total"], a["new_total"], a["change"], a["percent"]) for a in out["accounts"]} == {
        "a": ("5.00", "5.50", "0.50", "10.00"),  # 50 × 0.10 → 50 × 0.11
        "b": ("25.00", "25.00", "0.00", "0.00"),  # 20 gadgets: tier 2 (volume), 20 × 1.25 on both sides
    }
    # The new side may be the revision too: git:REV is then a revision of the folder --base names.
    assert main(["diff", "--base", "rules/toy", "--rules", "git:HEAD~1", "--usage", "usage.csv", "--format",
                 "json"]) == 0


def test_git_rev_loads_the_same_rules_as_the_commit_had(repo):
    committed = load_git_rules("HEAD", repo / "rules" / "toy")
    assert committed.fingerprint == load_rules(repo / "rules" / "toy").fingerprint
    assert load_git_rules("HEAD~1", "rules/toy").fingerprint != committed.fingerprint


@pytest.mark.parametrize("spec, message", [
    ("git:no-such-branch", "git:no-such-branch: unknown revision 'no-such-branch' in the git repository at "),
    ("git:", "git:: no revision given"),
    ("git:--output=x", "unknown revision '--output=x'"),
])
def test_git_rev_errors_are_clear(repo, capsys, spec, message):
    assert main(["diff", "--base", spec, "--rules", "rules/toy", "--usage", "usage.csv"]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (repo / "x").exists()


def test_a_folder_missing_at_the_revision(repo, capsys):
    write_rule_set(repo / "rules" / "other")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "another rule set")
    assert main(["diff", "--base", "git:HEAD~1", "--rules", "rules/other", "--usage", "usage.csv"]) == 1
    assert "git:HEAD~1: there are no rule files (*.yaml) in rules/other at revision HEAD~1" in capsys.readouterr().err


def test_problems_in_rules_from_git_are_located_in_the_revision(repo, capsys):
    pricing = repo / "rules" / "toy" / "pricing.yaml"
    pricing.write_text(pricing.read_text(encoding="utf-8").replace("currency: EUR", "currency: EUX"), encoding="utf-8")
    _git(repo, "commit", "-q", "-am", "a typo")
    pricing.write_text(pricing.read_text(encoding="utf-8").replace("currency: EUX", "currency: EUR"), encoding="utf-8")
    assert main(["diff", "--base", "git:HEAD", "--rules", "rules/toy", "--usage", "usage.csv"]) == 1
    err = capsys.readouterr().err
    assert "git:HEAD:rules/toy/pricing.yaml:3:11: error: currency: the text 'EUX' is not a known currency" in err


def test_git_rev_outside_a_repository(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_rule_set(Path("rs"))
    _usage(tmp_path / "u.csv", "a,2024-02,RenderWidget,1,success\n")
    env_ceiling = str(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", env_ceiling)
    assert main(["diff", "--base", "git:HEAD", "--rules", "rs", "--usage", "u.csv"]) == 1
    assert "rs is not inside a git repository, so git:HEAD cannot be read" in capsys.readouterr().err
