"""A bill-level minimum commitment: when the bill (after its discounts) comes to less, the
shortfall is billed as its own line (Lago's "minimum commitment true-up", Stripe's minimum)."""

from __future__ import annotations

from ..exact import EXACT
from .base import choose


def apply(state, book, own):
    found, scope = choose(book.commitments, own.commitments, state.period)
    for c in found:  # validation allows one commitment in force per period and scope
        if state.total < c.amount:
            shortfall = EXACT.subtract(c.amount, state.total)
            state.add("commitment", c.name, None, state.total, shortfall,
                      f"{state.money(state.total)} is {state.money(shortfall)} short of the commitment of "
                      f"{state.money(c.amount)}", scope)
