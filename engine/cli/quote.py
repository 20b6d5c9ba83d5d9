"""`ratecard quote`: one month of usage for one account, priced."""

from __future__ import annotations

import sys

from ..errors import RatecardError
from ..formatting import format_amount, format_count, format_money, format_price
from .common import default_period, rules_of, pack_args, usage_args


def cmd_quote(args) -> int:
    from ..explain import explain
    from ..rating import rate, tariff

    rules = rules_of(args)
    period = args.period or default_period(rules)
    packs = pack_args(args.pack)
    t = tariff(rules, period)
    unknown_packs = sorted({p.category for p in packs} - {c.id for c in t.categories})
    if unknown_packs:
        raise RatecardError(f"--pack names unknown category {', '.join(unknown_packs)}; expected one of: "
                            f"{', '.join(c.id for c in t.categories)}")
    usage = usage_args(args.usage, t)
    if args.format == "json":
        from ..quote import dumps, quote_document

        # The same function and bytes as `POST /v1/quote` of `ratecard serve`.
        sys.stdout.write(dumps(quote_document(rules, usage, period, packs=packs,
                                              suspended=args.suspended, explain=args.explain)))
        return 0
    bill = rate(rules, usage, period, packs=packs, suspended=args.suspended)
    print("\n".join(quote_text(bill)))
    if args.explain:
        print()
        print("\n".join(explain(t, bill)))
    return 0


def quote_text(bill) -> list[str]:
    cur = bill.currency
    prepaid = any(line.free_quota_used or line.packs_used for line in bill.lines)
    rows = [("Category", "Billable", "Free") + (("Free quota", "Packs", "Pay-as-you-go") if prepaid else ())
            + ("Tier", "Unit price", "Amount")]
    for line in bill.lines:
        used = (format_count(line.free_quota_used), format_count(sum(p.units_used for p in line.packs_used)),
                format_count(line.payg_calls)) if prepaid else ()
        rows.append((line.name, format_count(line.calls), format_count(line.free_calls)) + used
                    + (str(line.tier), format_price(line.unit_price), format_amount(line.amount, cur)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    fmt = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                              for i, (c, w) in enumerate(zip(r, widths))).rstrip()
    out = [f"Quote for {bill.period} — rules {bill.rules_name}, {cur}", ""]
    out += [fmt(rows[0]), fmt(tuple("-" * w for w in widths))] + [fmt(r) for r in rows[1:]]
    label = len(fmt(rows[0])) - widths[-1] - 2
    r = bill.rounding
    if bill.adjustments:
        out.append("")
    for a in bill.adjustments:  # after pricing, in the order applied
        out.append(f"{a.name.rjust(label)}  {format_amount(a.amount, cur).rjust(widths[-1])}  ({a.note})")
    out += ["",
            f"{'Subtotal'.rjust(label)}  {format_amount(bill.subtotal, cur).rjust(widths[-1])}",
            f"{('Rounding (' + r['quantum'] + ', ' + r['mode'] + ')').rjust(label)}  "
            f"{format_amount(bill.rounding_adjustment, cur).rjust(widths[-1])}",
            f"{'Total'.rjust(label)}  {format_money(bill.total, cur)}"]
    for warning in bill.warnings:
        out.append(f"warning: {warning}")
    return out
