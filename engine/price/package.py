"""`package`: a price per block of N units (Lago's and OpenMeter's package charge, Stripe's
`transform_quantity`).

The units after the optional free units are cut into blocks of the tier's size and the count is
rounded to whole blocks as the rule says: `up` (a part block is billed as a whole one, the
default, as Stripe and Lago do), `down` (a part block is free) or `nearest` (half a block or more
counts as one). With several tiers, each has its own block size and price: in volume mode the
units after the free ones pick the tier and all of them are cut into its blocks; in graduated
mode each tier's own units are. A tier's flat amount is added as in the tiered model.
"""

from __future__ import annotations

from ..bill import TierCharge
from ..exact import EXACT
from ..formatting import format_count
from .base import ZERO, Priced, Pricer, add, mul, spans, volume_tier


def blocks(units, size, rounding: str) -> int:
    """Whole blocks of `size` in `units`, rounded as the rule says; exact for decimal units too."""
    whole = int(EXACT.divide_int(units, size)) if not (type(units) is int and type(size) is int) else units // size
    part = units - whole * size
    if not part:
        return whole
    if rounding == "up":
        return whole + 1
    if rounding == "nearest":
        return whole + (1 if part * 2 >= size else 0)
    return whole


class Package(Pricer):
    model = "package"

    def __init__(self, category):
        super().__init__(category)
        terms = category.package
        self.rounding = terms.rounding
        self.free_units = terms.free_units
        self.volume = category.tier_mode == "volume"
        self.bounds = tuple(t.up_to for t in category.tiers)
        self.tiers = tuple((t.package_size, t.unit_price, t.flat_amount) for t in category.tiers)

    def _part(self, number, units):
        size, price, flat = self.tiers[number - 1]
        count = blocks(units, size, self.rounding)
        amount = mul(price, count)
        if flat is not None and units:
            amount = add(amount, flat)
        else:
            flat = None
        note = f"{format_count(count)} block{'' if count == 1 else 's'} of {format_count(size)}"
        return TierCharge(number, units, price, amount, flat, count, size, note=note)

    def price(self, units, basis=None) -> Priced:
        free = min(units, self.free_units)
        counted = units - free
        charges = [TierCharge(0, free, ZERO, ZERO, note="free units")] if free else []
        if self.volume:
            charges.append(self._part(volume_tier(self.bounds, counted) + 1, counted))
        else:
            charges += [self._part(number, span) for number, span, _ in spans(self.bounds, counted)]
        total = ZERO
        for charge in charges:
            total = add(total, charge.amount)
        last = charges[-1]
        return Priced(last.tier, last.unit_price, tuple(charges), total)
