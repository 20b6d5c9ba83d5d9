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


def decimal_text(value: decimal.Decimal | int, places: int = 0) -> str:
    """THE spelling of a decimal in every JSON document ratecard writes (docs/json.md, "Decimals"):
    plain fixed-point text (ASCII digits, `-` when negative, `.` only before fractional digits; no
    exponent, no grouping, no `+`, no `-0`) with every digit the value carries, padded to at least
    `places` digits after the point. Never rounds: a writer shows the exact value. `places` is the
    currency's minor units for money the ledger holds (`money_text`), 0 for anything else."""
    if type(value) is not decimal.Decimal:
        value = decimal.Decimal(value)
    if places and decimal_places(value) < places and value.is_finite():
        value = value.quantize(decimal.Decimal(1).scaleb(-places), context=EXACT)
    text = format(value, "f")
    # Every bill writes dozens of these: the text itself says whether the value was finite (NaN,
    # sNaN and Infinity end in a letter) and whether it is a negative zero.
    if text[-1] not in _DIGITS:
        raise ValueError(f"{value} is not a finite decimal")
    return text[1:] if text[0] == "-" and not value else text


_DIGITS = frozenset("0123456789")
