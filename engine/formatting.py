"""Human formatting of money, counts and dates, shared by the CLI and the Jinja filters."""

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
    if symbol and currency in currencies.SYMBOLS:
        sign = "-" if amount.startswith("-") else ""
        return f"{sign}{currencies.SYMBOLS[currency]}{amount.lstrip('-')}"
    return f"{amount} {currency}"


def format_price(value: Decimal) -> str:
    """A unit price with exactly the digits it was written with (0.0025, 0.125, 48)."""
    value = Decimal(value)
    return format(value.normalize(context=_WIDE), "f") if value else "0"


def format_count(value: int) -> str:
    return f"{value:,}"


def charge_label(charge, tier_mode: str, unit: str = "") -> str:
    """One priced part of a bill line in words (`bill.TierCharge`), the same on every invoice format:
    `Tier 2 (volume): 1,500 x 0.008 + flat 20`, `Tier 1 (volume): 2,100 in 3 blocks of 1,000 x 4`,
    `2.9% of 2,300`, `Fixed fee: 4 x 0.30`, `500 free units`."""
    count = format_count(charge.calls) + (f" {unit}" if unit else "")
    flat = f" + flat {format_price(charge.flat_amount)}" if charge.flat_amount is not None else ""
    if charge.rate is not None:
        tier = f"Tier {charge.tier}: " if charge.note.endswith("in this tier") else ""
        return f"{tier}{format_price(charge.rate)}% of {format_amount(charge.basis)}{flat}"
    if charge.blocks is not None:
        return f"Tier {charge.tier} ({tier_mode}): {count} in {charge.note} x {format_price(charge.unit_price)}{flat}"
    if charge.note == "free units":
        return f"{count} free"
    if charge.note == "fixed fee per transaction":
        return f"Fixed fee: {format_count(charge.calls)} x {format_price(charge.unit_price)}"
    if charge.note:
        return f"{format_count(charge.calls)} transaction{'' if charge.calls == 1 else 's'} {charge.note}"
    return f"Tier {charge.tier} ({tier_mode}): {count} x {format_price(charge.unit_price)}{flat}"
