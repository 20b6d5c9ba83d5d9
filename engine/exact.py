"""The decimal contexts money is computed in, the same for the whole engine.

Money never depends on the caller's decimal context (its precision, rounding or traps): amounts
are computed with these contexts' methods. EXACT raises rather than round silently; ROUNDING is
for the one deliberate rounding a settlement policy names (its mode is passed with each call).
"""

import decimal

EXACT = decimal.Context(prec=200, traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow])
ROUNDING = decimal.Context(prec=200, traps=[decimal.InvalidOperation, decimal.Overflow])
