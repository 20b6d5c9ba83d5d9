"""The analyst's page: what a rule change does, drawn. Built from a `RulesDiff` and the compiled tariffs.

- revenue per category before and after (the diff's line amounts);
- the accounts with the largest change (the diff's bill totals);
- the tier crossings (the diff's tier changes);
- for each category, the cost-versus-calls curve of one account-month under the base and the new
  rules, with the volume cliffs marked.

Every point of a curve is priced by `ratecard.rating.rate` itself: one billable API of the category,
N calls with a billed outcome. Both pricing modes are straight lines between tier bounds (and the
end of the free quota), so rating exactly those points, and one call past each bound, draws the
curve exactly: its vertical drops are the cliffs. Nothing here multiplies a price.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from .diff import RulesDiff
from .errors import NoRulesInForce
from .model import RuleSet

if TYPE_CHECKING:
    from .rating import Tariff

TOP_ACCOUNTS = 10


@dataclass(frozen=True)
class Cliff:
    """At `calls` calls a month costs `cost`; one more call costs `cost_after` (less): a cliff."""

    side: str  # "base", "rules", or "both" when the two rule sets have the same cliff
    calls: int
    tier: int  # the tier of `calls`; one more call reaches tier + 1
    cost: Decimal
    cost_after: Decimal
    last_cheaper: int | None  # the largest count that still costs less than `calls` do (None: all do)


@dataclass(frozen=True)
class Curve:
    category: str
    name: str
    api: str  # the billable API the curve is priced with
    outcome: str | None
    period: str
    x_max: int
    points: tuple[tuple[int, Decimal | None, Decimal | None], ...]  # calls, base cost, new cost
    cliffs: tuple[Cliff, ...]
    free_quota: tuple[int, int]  # base, new


@dataclass(frozen=True)
class ImpactReport:
    diff: RulesDiff
    curves: tuple[Curve, ...]
    period: str  # the period whose tariffs the curves show
    top_accounts: tuple  # diff.accounts, largest change first, at most TOP_ACCOUNTS


def impact_report(diff: RulesDiff, base: RuleSet, rules: RuleSet, *, period: str | None = None,
                  top: int = TOP_ACCOUNTS) -> ImpactReport:
    """The page's content. Curves use the tariffs in force for `period` (default: the diff's latest
    period, else the newest versions of the new rules)."""
    from .rating import tariff

    if period is None:
        period = diff.periods[-1] if diff.periods else _latest_period(rules)
    sides: list[Tariff | None] = []  # None: no rules in force for the period on that side
    for rs in (base, rules):
        try:
            sides.append(tariff(rs, period))
        except NoRulesInForce:
            sides.append(None)
    order: list[str] = []
    names: dict[str, str] = {}
    for t in reversed([s for s in sides if s is not None]):  # new rules' order and names first
        for c in t.categories:
            if c.id not in names:
                order.append(c.id)
                names[c.id] = c.name
    curves = tuple(c for c in (_curve((base, rules), sides, cid, names[cid], period) for cid in order) if c)
    return ImpactReport(diff, curves, period, tuple(diff.accounts[:top]))


def _latest_period(rules: RuleSet) -> str:
    book, mapping, policy = rules.latest
    start = max(book.effective_from, mapping.effective_from, policy.effective_from)
    return f"{start.year:04d}-{start.month:02d}"


def _pricing_usage(t, category: str):
    """One billable API of the category and an outcome the rules bill, or None when nothing is billed."""
    from .rating import SUCCESS

    apis = t.mapping.apis_of(category, billable=True)
    if not apis:
        return None
    outcomes = t.billed_outcomes
    if SUCCESS in outcomes:
        return apis[0], SUCCESS
    named = sorted(o for o in outcomes if o)
    if named:
        return apis[0], named[0]
    return (apis[0], None) if None in outcomes else None


def _cost(rs: RuleSet, period: str, how, calls: int) -> tuple[Decimal, int]:
    """(cost, tier) of `calls` calls of one account-month: the line's charge as the bill has it."""
    from .rating import UsageItem, rate

    api, outcome = how
    bill = rate(rs, [UsageItem(api, calls, outcome)], period)
    line = bill.lines[0]
    return line.charge, line.tier


def _curve(rule_sets, tariffs, category: str, name: str, period: str) -> Curve | None:
    from .lint import volume_cliff

    hows, compiled = [], []
    for t in tariffs:
        cat = next((c for c in t.categories if c.id == category), None) if t is not None else None
        # A percentage is priced on transaction amounts, not counts: it has no cost curve over calls.
        how = _pricing_usage(t, category) if cat is not None and cat.model != "percentage" else None
        hows.append(how)
        compiled.append(cat if how is not None else None)
    if all(c is None for c in compiled):
        return None
    breaks: set[int] = {0}
    top = 0
    for cat in compiled:
        if cat is None:
            continue
        quota = cat.free_quota or 0
        breaks.add(quota)
        for bound, _ in cat.tiers:
            if bound is not None:
                breaks.update((quota + bound, quota + bound + 1))
                top = max(top, quota + bound)
    from .svg import nice_ceiling

    # A quarter past the last bound shows the top tier's slope; without bounds, twice the free quota.
    x_max = int(nice_ceiling(Decimal(top) * Decimal("1.25") if top else Decimal(2 * max(breaks) or 1000)))
    breaks = {b for b in breaks if b <= x_max} | {x_max}
    points: list[tuple[int, Decimal | None, Decimal | None]] = []
    costs: list[dict[int, tuple[Decimal, int]]] = [{}, {}]
    for x in sorted(breaks):
        row: list[Decimal | None] = []  # the base's cost, the new rules' cost
        for side, (rs, how, cat) in enumerate(zip(rule_sets, hows, compiled)):
            if cat is None:
                row.append(None)
                continue
            priced = costs[side][x] = _cost(rs, period, how, x)
            row.append(priced[0])
        points.append((x, row[0], row[1]))
    cliffs = []
    for side, (cat, label) in enumerate(zip(compiled, ("base", "rules"))):
        if cat is None or not cat.volume:
            continue
        quota = cat.free_quota or 0
        for i, (bound, price) in enumerate(cat.tiers[:-1]):
            at, after = quota + bound, quota + bound + 1
            if at not in costs[side] or after not in costs[side]:
                continue
            (cost, tier), (cost_after, _) = costs[side][at], costs[side][after]
            if cost_after < cost:
                found = volume_cliff(bound, price, cat.tiers[i + 1][1], cat.tiers[i + 1][0])
                last = None if found is None or found[2] is None else found[2] + quota
                cliffs.append(Cliff(label, at, tier, cost, cost_after, last))
    # A cliff both rule sets have is one cliff, marked once.
    both = {(c.calls, c.cost, c.cost_after, c.last_cheaper) for c in cliffs if c.side == "base"} & \
        {(c.calls, c.cost, c.cost_after, c.last_cheaper) for c in cliffs if c.side == "rules"}
    merged = []
    for c in cliffs:
        key = (c.calls, c.cost, c.cost_after, c.last_cheaper)
        if key in both:
            if c.side == "base":
                merged.append(Cliff("both", c.calls, c.tier, c.cost, c.cost_after, c.last_cheaper))
        else:
            merged.append(c)
    cliffs = sorted(merged, key=lambda c: (c.calls, c.side))
    base_quota, new_quota = ((c.free_quota or 0) if c is not None else 0 for c in compiled)
    how = hows[1] or hows[0]
    assert how is not None  # a side without one has no category here, and some side has one
    return Curve(category, name, how[0], how[1], period, x_max, tuple(points), tuple(cliffs),
                 (base_quota, new_quota))


_SIDE = {"base": "base rules", "rules": "new rules", "both": "both rule sets"}


def render_impact(report: ImpactReport, env=None) -> str:
    """The page as one self-contained HTML document (reports/impact.html.j2), charts inline as SVG."""
    from markupsafe import Markup

    from .formatting import format_amount, format_count
    from .render import render
    from .svg import PALETTE, Marker, Series, bar_chart, line_chart

    diff = report.diff
    cur = diff.currency
    money = lambda v: format_amount(v, cur)  # noqa: E731
    base_label, new_label = f"base ({diff.base.name})", f"new ({diff.rules.name})"
    if diff.base.name == diff.rules.name:
        base_label, new_label = "base rules", "new rules"
    categories_svg = Markup(bar_chart(
        "Revenue per category, before and after", [(c.name, (c.base_total, c.new_total)) for c in diff.categories],
        [base_label, new_label], PALETTE[:2], value_format=money))
    accounts_svg = Markup(bar_chart(
        "Accounts with the largest change", [(a.name, (a.change,)) for a in report.top_accounts],
        [f"change ({cur})"], (PALETTE[1],), value_format=lambda v: ("+" if v > 0 else "") + money(v)))
    curves = []
    for curve in report.curves:
        series = []
        for side, (label, color, dashed) in enumerate(((base_label, PALETTE[0], False), (new_label, PALETTE[1], True))):
            pts = [(x, y) for x, base_cost, new_cost in curve.points
                   if (y := new_cost if side else base_cost) is not None]
            if pts:
                series.append(Series(label, color, pts, dashed))
        markers = [Marker(c.calls, c.cost, f"{_SIDE[c.side]}: {format_count(c.calls)} "
                          f"calls cost {money(c.cost)}, {format_count(c.calls + 1)} cost {money(c.cost_after)}")
                   for c in curve.cliffs]
        svg = line_chart(f"{curve.name}: cost of one account-month by calls", series, markers,
                         x_max=Decimal(curve.x_max), y_label=f"cost ({cur})", x_label=f"calls in the month "
                         f"({curve.api})", y_format=money)
        curves.append({"curve": curve, "svg": Markup(svg)})
    context = {"sides": _SIDE, "report": report, "diff": diff, "currency": cur, "curves": curves,
               "categories_svg": categories_svg, "accounts_svg": accounts_svg,
               "base_label": base_label, "new_label": new_label}
    return render("impact.html.j2", context, env)
