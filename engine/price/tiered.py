"""`tiered`: a unit price per tier, volume ("all units") or graduated, with an optional flat
amount per tier (Stripe's `flat_amount` + `unit_amount`).

Volume: the period's units pick one tier; all of them are billed at its unit price, and its flat
amount is added once. Graduated: each tier prices the units inside it, and the flat amount of
every tier entered (at least one unit in it) is added. No units, no flat amount: a tier is
reached or entered by a unit, never by an empty period.
"""

from __future__ import annotations

from ..bill import TierCharge
from .base import ZERO, Priced, Pricer, add, mul, spans, volume_tier


class Tiered(Pricer):
    model = "tiered"

    def __init__(self, category):
        super().__init__(category)
        self.volume = category.tier_mode == "volume"
        self.bounds = tuple(t.up_to for t in category.tiers)
        self.tiers = tuple((t.unit_price, t.flat_amount) for t in category.tiers)

    def price(self, units, basis=None) -> Priced:
        if self.volume:
            i = volume_tier(self.bounds, units)
            price, flat = self.tiers[i]
            amount = mul(price, units)
            if flat is not None and units:
                amount = add(amount, flat)
            else:
                flat = None
            return Priced(i + 1, price, (TierCharge(i + 1, units, price, amount, flat),), amount)
        charges = []
        total = ZERO
        for number, span, _ in spans(self.bounds, units):
            price, flat = self.tiers[number - 1]
            part = mul(price, span)
            if flat is not None and span:
                part = add(part, flat)
            else:
                flat = None
            charges.append(TierCharge(number, span, price, part, flat))
            total = add(total, part)
        last = charges[-1]
        return Priced(last.tier, last.unit_price, tuple(charges), total)
