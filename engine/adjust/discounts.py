"""Discounts: a percentage of, or a fixed amount off, one category or the whole bill.

Each applies to what the category (or bill) comes to after the adjustments before it, never takes
it below zero (a fixed amount larger than what is left takes off what is left), and does nothing
to a category or bill that comes to zero or less.
"""

from __future__ import annotations

from ..exact import EXACT
from ..formatting import format_price
from ..price.percentage import percent_of
from .base import choose


def apply(state, book, own, category: str | None):
    found, scope = choose([d for d in book.discounts if d.category == category],
                          [d for d in own.discounts if d.category == category], state.period)
    for d in found:
        basis = state.category_total[state.position[category]] if category is not None else state.total
        if basis <= 0:
            continue
        if d.percent is not None:
            off = percent_of(d.percent, basis)
            note = f"{format_price(d.percent)}% of {state.money(basis)}"
        else:
            off = min(d.amount, basis)
            note = f"{state.money(d.amount)} off" + ("" if off == d.amount else
                                                      f", limited to the {state.money(basis)} it applies to")
        state.add("discount", d.name, category, basis, EXACT.minus(off), note, scope)
