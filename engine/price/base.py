"""The one interface every price model implements, and the arithmetic they share."""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from ..bill import TierCharge
from ..exact import EXACT

ZERO = Decimal(0)
mul = EXACT.multiply
add = EXACT.add
sub = EXACT.subtract


class Priced(NamedTuple):
    """What a model makes of a period's units: the tier reached (1-based; the last tier any unit
    entered), that tier's unit price, one charge per priced part, and the exact amount."""

    tier: int
    unit_price: Decimal
    charges: tuple[TierCharge, ...]
    amount: Decimal


class Pricer:
    """A category's price model. `price(units, basis)` prices the pay-as-you-go units of one
    account-period exactly; `basis` is what a model other than units is priced on (the
    percentage model: ``((transactions, transaction amount), …)`` per usage item), else None.

    Pricers are built once per price book version and hold no state between calls."""

    model = ""
    needs_basis = False  # True: rating must collect the transaction amounts of the usage

    def __init__(self, category):
        self.category = category

    def price(self, units, basis=None) -> Priced:
        raise NotImplementedError

    def cost(self, units, basis=None) -> Decimal:
        return self.price(units, basis).amount


def spans(bounds, units):
    """(tier number, units inside the tier, lower bound) of every tier `units` enter, graduated;
    always at least one (possibly empty) tier. `bounds` are inclusive upper bounds, None last."""
    lower = 0
    left = units
    for number, bound in enumerate(bounds, 1):
        span = left if bound is None else min(left, bound - lower)
        yield number, span, lower
        left -= span
        if left <= 0:
            return
        lower = bound


def volume_tier(bounds, units) -> int:
    """The 0-based tier whose bound `units` is within (volume, "all units")."""
    for i, bound in enumerate(bounds):
        if bound is None or units <= bound:
            return i
    return len(bounds) - 1
