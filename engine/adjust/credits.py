"""Credits: negative lines, in the order written. A credit takes off at most what the bill still
comes to (never below zero), unless its rule says `below_zero: true`. A credit that finds
nothing to take off adds no line."""

from __future__ import annotations

from ..exact import EXACT
from .base import ZERO, choose


def apply(state, book, own):
    found, scope = choose(book.credits, own.credits, state.period)
    for c in found:
        take = c.amount if c.below_zero else min(c.amount, max(state.total, ZERO))
        if not take:
            continue
        note = f"{state.money(c.amount)} credit" + ("" if take == c.amount else
                                                   f", limited to the {state.money(take)} the bill comes to")
        state.add("credit", c.name, None, state.total, EXACT.minus(take), note, scope)
