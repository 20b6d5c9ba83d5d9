"""The analyst's page: revenue per category, the accounts that change most, tier crossings, cost curves."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

import ratecard
from ratecard.cli import main
from ratecard.impact import impact_report, render_impact
from ratecard.usage import UsageReader

from conftest import ROOT, write_rule_set
from serving import USAGE

SHIPPED = ROOT / "rules" / "face-recognition"


def moved_bound(tmp_path, name="face-recognition"):
    """The shipped rules with the first bound moved from 3,000,000 to 2,500,000 calls."""
    folder = tmp_path / "new" / name
    __import__("shutil").copytree(SHIPPED, folder)
    pricing = folder / "pricing.yaml"
    pricing.write_text(pricing.read_text("utf-8").replace("up_to: 3000000", "up_to: 2500000"), encoding="utf-8")
    return folder


def report_of(base_dir, new_dir, usage_text, tmp_path, **kwargs):
    base, new = ratecard.load_rules(base_dir), ratecard.load_rules(new_dir)
    usage = tmp_path / "usage.csv"
    usage.write_text(usage_text, encoding="utf-8")
    reader = UsageReader(new).read(usage)
    return impact_report(ratecard.diff_rules(base, new, reader.accounts()), base, new, **kwargs)


def test_the_cost_curve_is_priced_by_the_rating_engine_and_shows_the_spec_cliff(tmp_path):
    report = report_of(SHIPPED, SHIPPED, USAGE, tmp_path)
    search = next(c for c in report.curves if c.category == "face-search")
    points = {x: (b, n) for x, b, n in search.points}
    assert points[3_000_000] == (Decimal("2400.0000"), Decimal("2400.0000"))
    assert points[3_000_001] == (Decimal("1800.0006"), Decimal("1800.0006"))
    assert points[0] == (0, 0)
    cliffs = [(c.side, c.calls, c.cost, c.cost_after) for c in search.cliffs]
    assert ("both", 3_000_000, Decimal("2400.0000"), Decimal("1800.0006")) in cliffs
    assert [c.calls for c in search.cliffs] == [3_000_000, 15_000_000]
    # SPEC: 3,000,000 × 0.0008 = 2,400; 3,000,001 × 0.0006 = 1,800.0006; more calls stay cheaper up to 3,999,999.
    assert search.cliffs[0].last_cheaper == 3_999_999
    assert search.x_max >= 15_000_001


def test_every_point_equals_a_quote_for_that_many_calls(tmp_path):
    new = moved_bound(tmp_path)
    report = report_of(SHIPPED, new, USAGE, tmp_path)
    rules = ratecard.load_rules(new)
    for curve in report.curves:
        for x, _, cost in curve.points:
            bill = ratecard.rate(rules, [ratecard.UsageItem(curve.api, x, curve.outcome)], "2020-09")
            assert bill.lines[0].charge == cost


def test_free_quota_moves_the_cliffs(tmp_path):
    cn = ROOT / "rules" / "face-recognition-cn"
    usage = "account,period,api,calls,outcome\nlotus,2020-09,SearchFaces,3010001,success\n"
    report = report_of(cn, cn, usage, tmp_path)
    search = next(c for c in report.curves if c.category == "face-search")
    assert search.free_quota == (10_000, 10_000)
    assert search.cliffs[0].calls == 3_010_000
    points = {x: b for x, b, _ in search.points}
    assert points[10_000] == 0 and points[3_010_000] > points[3_010_001]


def test_a_moved_bound_shows_tier_crossings_and_new_cliffs(tmp_path):
    report = report_of(SHIPPED, moved_bound(tmp_path), USAGE, tmp_path)
    crossings = {(t.account, t.category, t.base_tier, t.new_tier) for t in report.diff.tier_changes}
    assert ("acme", "face-search", 1, 2) in crossings
    search = next(c for c in report.curves if c.category == "face-search")
    assert {(c.side, c.calls) for c in search.cliffs} >= {("base", 3_000_000), ("rules", 2_500_000),
                                                          ("both", 15_000_000)}
    assert report.top_accounts[0].key == "acme"  # 2,400 → 1,800: the largest change


def test_graduated_tiers_have_a_curve_and_no_cliff(tmp_path):
    from conftest import TOY_PRICING

    folder = write_rule_set(tmp_path / "grad", pricing=TOY_PRICING.replace("tier_mode: volume", "tier_mode: graduated"))
    usage = "account,period,api,calls,outcome\nx,2024-03,RenderWidget,5000,success\n"
    report = report_of(folder, folder, usage, tmp_path)
    widgets = next(c for c in report.curves if c.category == "widgets")
    assert widgets.cliffs == ()
    costs = [b for _, b, _ in widgets.points]
    assert costs == sorted(costs)  # graduated: never cheaper for more


def test_the_page_has_its_charts_and_tables_and_nothing_from_the_network(tmp_path):
    html = render_impact(report_of(SHIPPED, moved_bound(tmp_path), USAGE, tmp_path))
    assert html.startswith("<!DOCTYPE html>")
    assert html.count("<svg") == 2 + 7  # categories, accounts, one curve per category
    assert 'id="chart-categories"' in html and 'id="chart-accounts"' in html
    assert html.count('class="cliff"') >= 7 * 2
    assert "<script" not in html and "<link" not in html
    urls = set(re.findall(r'(?:src|href)="([^"]+)"', html)) | set(re.findall(r"url\(([^)]+)\)", html))
    assert not urls
    assert set(re.findall(r"https?://[^\"' )]+", html)) == {"http://www.w3.org/2000/svg"}
    assert "Tier crossings" in html and "acme" in html


def test_the_page_is_deterministic_and_escapes_what_the_data_says(tmp_path):
    usage = USAGE + '"<script>alert(1)</script>",2020-09,DetectFace,5,success\n'
    new = moved_bound(tmp_path)
    first = render_impact(report_of(SHIPPED, new, usage, tmp_path))
    second = render_impact(report_of(SHIPPED, new, usage, tmp_path))
    assert first == second
    assert "<script>" not in first and "&lt;script&gt;" in first


def test_diff_format_html_writes_the_page_the_server_serves(tmp_path, capsys):
    pytest.importorskip("starlette")
    from serving import READ, client, make_app

    new = moved_bound(tmp_path, "face-recognition-next")
    usage = tmp_path / "u.csv"
    usage.write_text(USAGE, encoding="utf-8")
    assert main(["diff", "--base", str(SHIPPED), "--rules", str(new), "--usage", str(usage), "--format", "html"]) == 0
    page = capsys.readouterr().out
    assert page.count("<svg") == 9
    with client(make_app(tmp_path, rules=(SHIPPED, new), usage=(usage,))) as c:
        served = c.get("/v1/diff?base=face-recognition&rules=face-recognition-next", headers=READ)
    assert served.status_code == 200 and served.text == page
