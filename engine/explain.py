"""Why each line of a bill is priced as it is: plain sentences an analyst can check by hand."""

from __future__ import annotations

from decimal import Decimal

from .bill import Bill, BillLine
from .formatting import format_count as n
from .formatting import charge_label, format_money, format_price
from .pricing_code import graduated
from .rating import _EXACT, Tariff
from .formatting import counted


def _range(tiers, i) -> str:
    lower = tiers[i - 1][0] + 1 if i else 1
    bound = tiers[i][0]
    return f"{n(lower)}–{n(bound)}" if bound is not None else f"{n(lower)} and more"


def tier_cost(tiers, mode: str, calls: int) -> tuple[int, Decimal]:
    """(tier reached, exact cost) of `calls` pay-as-you-go units, as the rating core prices them."""
    if mode == "volume":
        for number, (bound, price) in enumerate(tiers, 1):
            if bound is None or calls <= bound:
                return number, _EXACT.multiply(price, calls)
    charges, cost = graduated(tiers, calls)
    return charges[-1].tier, cost


def explain_line(t: Tariff, line: BillLine, currency: str) -> list[str]:
    cat = next(c for c in t.categories if c.id == line.category)
    tiers = cat.tiers
    unit = line.unit or t.book.unit
    money = lambda v: format_money(v, currency)  # noqa: E731
    out = []
    billed = ", ".join(f"{a.api} {n(a.billable_calls)}" for a in line.apis if a.billable_calls)
    free = ", ".join(f"{a.api} {n(a.calls - a.billable_calls)}" for a in line.apis if a.calls > a.billable_calls)
    out.append(f"{line.name} ({line.category}): {counted(line.calls, 'billable ' + unit)}"
               + (f" ({billed})" if billed else "")
               + (f"; {n(line.free_calls)} free ({free})" if line.free_calls else "") + ".")
    if line.free_quota_used:
        out.append(f"  {n(line.free_quota_used)} are covered by the free quota.")
    for use in line.packs_used:
        out.append(f"  {n(use.units_used)} are taken from pack {use.pack_id} ({n(use.units_left)} left in it).")
    if cat.pricer is not None:
        return out + _explain_model(cat, line, unit, money)
    i = line.tier - 1
    if line.tier_mode == "volume":
        out.append(f"  {counted(line.payg_calls, 'pay-as-you-go ' + unit)} {'falls' if line.payg_calls == 1 else 'fall'} in tier {line.tier} "
                   f"({_range(tiers, i)}), so all of them are priced at {format_price(line.unit_price)}: "
                   f"{money(line.amount)}.")
    else:
        parts = "; ".join(f"tier {c.tier}: {n(c.calls)} × {format_price(c.unit_price)} = {money(c.amount)}"
                          for c in line.charges)
        out.append(f"  graduated: each tier prices the {unit}s inside it — {parts}.")
    bound = tiers[i][0]
    if bound is not None:
        nxt_tier, nxt_cost = tier_cost(tiers, line.tier_mode, bound + 1)
        out.append(f"  Next bound: above {n(bound)} ({n(bound + 1 - line.payg_calls)} more) tier {nxt_tier} "
                   f"at {format_price(tiers[i + 1][1])} applies; {n(bound + 1)} would cost {money(nxt_cost)}.")
    if i > 0 and line.tier_mode == "volume":
        lower = tiers[i - 1][0]
        _, cost = tier_cost(tiers, "volume", lower)
        out.append(f"  For comparison, {n(lower)} (the top of tier {i}) would cost {money(cost)}.")
    return out


def _explain_model(cat, line: BillLine, unit: str, money) -> list[str]:
    """A line priced by a model other than plain per-unit tiers: each priced part, and where the
    next tier bound is (priced by the same pricer that priced the line)."""
    out = [f"  {cat.model} ({line.tier_mode}): " + "; ".join(
        f"{charge_label(c, line.tier_mode, line.unit)} = {money(c.amount)}" for c in line.charges)
        + f"; together {money(line.amount)}."]
    if cat.model == "percentage":
        return out
    bounds = [t.up_to for t in cat.pricer.category.tiers]
    bound = next((b for b in bounds if b is not None and b >= line.payg_calls), None)
    if bound is not None:
        step = 1 if not line.unit else Decimal(1).scaleb(-cat.precision)
        above = bound + step
        out.append(f"  Next bound: above {n(bound)} ({n(above - line.payg_calls)} more) the next tier applies; "
                   f"{n(above)} would cost {money(cat.pricer.cost(above))}.")
    return out


def explain(t: Tariff, bill: Bill) -> list[str]:
    out = []
    for line in bill.lines:
        out += explain_line(t, line, bill.currency)
    for a in bill.adjustments:
        where = f" on {a.category}" if a.category else " on the bill"
        terms = "the account's terms" if a.scope == "account" else "the price book's terms"
        out.append(f"{a.name} ({a.kind}{where}, {terms}): {a.note}: {format_money(a.amount, bill.currency)}.")
    if bill.total != bill.subtotal:
        r = bill.rounding
        out.append(f"Rounding {r['apply']} to {r['quantum']} ({r['mode']}): {format_money(bill.subtotal, bill.currency)}"
                   f" becomes {format_money(bill.total, bill.currency)}.")
    return out
