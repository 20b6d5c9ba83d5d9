"""The decimal contexts money is computed in, the same for the whole engine.

Money never depends on the caller's decimal context (its precision, rounding or traps): amounts
are computed with these contexts' methods. EXACT raises rather than round silently; ROUNDING is
for the one deliberate rounding a settlement policy names (its mode is passed with each call).
"""

import decimal

EXACT = decimal.Context(prec=200, traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow])
ROUNDING = decimal.Context(prec=200, traps=[decimal.InvalidOperation, decimal.Overflow])


def decimal_places(value: decimal.Decimal) -> int:
    """Digits after the decimal point as `value` is written (`2.50` → 2, `100` and `1E+2` → 0);
    0 for a non-finite value, whose exponent is a letter."""
    exponent = value.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0
