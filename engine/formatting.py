"""Human formatting of money and counts in the command line's own (English) output.

Documents (invoices, rate cards) are formatted in their rule set's locale by `ratecard.i18n`."""

from __future__ import annotations

from decimal import Decimal

from . import currencies
from .exact import ROUNDING


_WIDE = ROUNDING  # exact amounts may have more digits than the default context's 28


def places_needed(value: Decimal) -> int:
    exponent = value.normalize(context=_WIDE).as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def format_amount(value: Decimal, currency: str | None = None, *, exact: bool = True, places: int | None = None) -> str:
    """`1234.5678` → `1,234.5678`; `1234.5000` → `1,234.50` for a two-decimal currency.

    Shows at least the currency's usual decimals and, when `exact`, as many more as the value needs:
    an unrounded amount is never shown rounded."""
    if places is None:
        places = currencies.minor_units(currency) if currency else 2
        if exact:
            places = max(places, places_needed(value))
    text = f"{value:,.{places}f}"
    return text


def format_money(value: Decimal, currency: str, *, exact: bool = True, symbol: bool = False) -> str:
    amount = format_amount(value, currency, exact=exact)
    if symbol:
        from babel.numbers import get_currency_symbol

        sign = "-" if amount.startswith("-") else ""
        return f"{sign}{get_currency_symbol(currency, 'en')}{amount.lstrip('-')}"
    return f"{amount} {currency}"


def format_price(value: Decimal) -> str:
    """A unit price with exactly the digits it was written with (0.0025, 0.125, 48)."""
    value = Decimal(value)
    return format(value.normalize(context=_WIDE), "f") if value else "0"


def format_count(value: int) -> str:
    return f"{value:,}"


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """`1 invoice`, `200,000 invoices`: a count with thousands separators and the noun agreeing."""
    return f"{count:,} {singular if count == 1 else plural or singular + 's'}"
