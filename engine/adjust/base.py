"""The running figures the adjustment steps share, and how they choose between list and account terms."""

from __future__ import annotations

from decimal import Decimal

from ..bill import Adjustment
from ..exact import EXACT
from ..formatting import format_money

add = EXACT.add
ZERO = Decimal(0)


class State:
    """One bill being adjusted: each used category's running charge, the bill's running total, and
    the adjustment lines made so far, in order."""

    def __init__(self, adjuster, rated, period: str):
        self.period = period
        self.currency = adjuster.currency
        self.quantize = adjuster.quantize
        self.position = adjuster.position
        # A rated line is (position, …, amount, charge, …): see pricing_code.compile_pricing.
        self.category_total = {r[0]: r[8] for r in rated}
        self.used = [r[0] for r in rated]
        total = ZERO
        for r in rated:
            total = add(total, r[8])
        self.total = total
        self.made: list[Adjustment] = []

    def money(self, value) -> str:
        return format_money(value, self.currency)

    def add(self, kind: str, name: str, category: str | None, basis, amount, note: str, scope: str):
        """Record one adjustment of `amount` (signed, exact); its charge is rounded in per-line mode."""
        charge = self.quantize(amount) if self.quantize is not None else amount
        self.made.append(Adjustment(kind, name, category, basis, amount, charge, note, scope))
        if category is not None:
            pos = self.position[category]
            self.category_total[pos] = add(self.category_total[pos], charge)
        self.total = add(self.total, charge)

    def result(self):
        """(adjustments, sum of their exact amounts, sum of their charges)."""
        amount = charge = ZERO
        for a in self.made:
            amount = add(amount, a.amount)
            charge = add(charge, a.charge)
        return tuple(self.made), amount, charge


def in_force(items, period: str):
    return tuple(item for item in items if item.window.covers(period))


def choose(book_items, own_items, period: str):
    """(items, scope): the account's items in force for the period when it has any, else the book's."""
    own = in_force(own_items, period)
    if own:
        return own, "account"
    return in_force(book_items, period), "list"
