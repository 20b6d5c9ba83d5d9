"""What the rate card says about price models and adjustments, in words, from the rules alone."""

from __future__ import annotations

from .formatting import format_count, format_money, format_price


def tier_price(cat, tier) -> str | None:
    """A tier's price as the rate card shows it: None for a plain unit price (the template writes it
    in the document's locale), else `0.01 + 5 flat`, `4 per 1,000`, `1%`, `2.9% + 0.3 per transaction`."""
    flat = f" + {format_price(tier.flat_amount)} flat" if tier.flat_amount is not None else ""
    if cat.model == "package":
        return f"{format_price(tier.unit_price)} per {format_count(tier.package_size)}{flat}"
    if cat.model == "percentage":
        fee = cat.percentage.fixed_fee
        return f"{format_price(tier.rate)}%" + (f" + {format_price(fee)} per transaction" if fee else "") + flat
    if tier.flat_amount is not None and not tier.unit_price:
        return f"{format_price(tier.flat_amount)} flat"
    return format_price(tier.unit_price) + flat if flat else None


def _window(w) -> str:
    if w.first is None and w.last is None:
        return ""
    if w.first == w.last:
        return f" in {w.first}"
    return f" from {w.first or 'the start'}" + (f" to {w.last}" if w.last else "")


def category_terms(cat, currency: str) -> list[str]:
    money = lambda v: format_money(v, currency)  # noqa: E731
    out = []
    if cat.unit:
        out.append(f"counted in {cat.unit}, to {cat.precision} decimal place(s)")
    if cat.package is not None:
        rounding = {"up": "a part block is billed as a whole one", "down": "a part block is free",
                    "nearest": "a part block counts when it is half a block or more"}[cat.package.rounding]
        out.append(f"billed in blocks; {rounding}" + (f"; the first {format_count(cat.package.free_units)} "
                                                       "units each month are free" if cat.package.free_units else ""))
    p = cat.percentage
    if p is not None:
        out.append("a percentage of each transaction's amount" if p.rate is not None else
                   "a graduated percentage of the month's transaction amount")
        if p.per_transaction_min is not None:
            out.append(f"at least {money(p.per_transaction_min)} per transaction")
        if p.per_transaction_max is not None:
            out.append(f"at most {money(p.per_transaction_max)} per transaction")
    if cat.minimum_spend is not None:
        out.append(f"a minimum spend of {money(cat.minimum_spend)} per month with usage")
    if cat.maximum_spend is not None:
        out.append(f"a maximum spend of {money(cat.maximum_spend)} per month")
    return out


def book_terms(book) -> list[str]:
    money = lambda v: format_money(v, book.currency)  # noqa: E731
    names = {c.id: c.name for c in book.categories.values()}
    out = []
    for d in book.terms.discounts:
        off = f"{format_price(d.percent)}%" if d.percent is not None else money(d.amount)
        out.append(f"{d.name}: {off} off {names.get(d.category, d.category) if d.category else 'the bill'}"
                   f"{_window(d.window)}")
    for c in book.terms.commitments:
        out.append(f"{c.name}: every bill comes to at least {money(c.amount)}{_window(c.window)}; a shortfall "
                   "is billed as its own line")
    for c in book.terms.credits:
        out.append(f"{c.name}: a credit of {money(c.amount)}{_window(c.window)}")
    return out
