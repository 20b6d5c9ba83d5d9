"""Human formatting of money and counts in the command line's own (English) output.

Documents (invoices, rate cards) are formatted in their rule set's locale by `ratecard.i18n`."""

from __future__ import annotations

from decimal import Decimal

from . import currencies
from .exact import ROUNDING, decimal_text


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
            # The digits it has beyond `places`, less trailing zeros (`places_needed`), read off its plain
            # text: most amounts have no more than their currency's, and this costs a third less.
            text = format(value, "f")
            dot = text.find(".")
            if dot >= 0 and len(text) - dot - 1 > places:
                places = max(places, len(text[dot + 1:].rstrip("0")))
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


def format_count(value: int | Decimal) -> str:
    return f"{value:,}"


class _Plain:
    """The engine's own number formatting, for `charge_label` outside a localised template."""

    count = staticmethod(lambda value: format_count(value))
    price = staticmethod(lambda value: format_price(value))
    amount = staticmethod(lambda value, currency=None: format_amount(value, currency))


def charge_label(charge, tier_mode: str, unit: str = "", fmt=_Plain) -> str:
    """One priced part of a bill line in words (`bill.TierCharge`), the same on every invoice format:
    `Tier 2 (volume): 1,500 x 0.008 + flat 20`, `Tier 1 (volume): 2,100 in 3 blocks of 1,000 x 4`,
    `2.9% of 2,300`, `Fixed fee: 4 x 0.30`, `500 free`. `fmt` writes the numbers (a template's locale)."""
    count = fmt.count(charge.calls) + (f" {unit}" if unit else "")
    flat = f" + flat {fmt.price(charge.flat_amount)}" if charge.flat_amount is not None else ""
    if charge.rate is not None:
        tier = f"Tier {charge.tier}: " if charge.note.endswith("in this tier") else ""
        return f"{tier}{fmt.price(charge.rate)}% of {fmt.amount(charge.basis)}{flat}"
    if charge.blocks is not None:
        blocks = f"{fmt.count(charge.blocks)} block{'' if charge.blocks == 1 else 's'} of {fmt.count(charge.package_size)}"
        return f"Tier {charge.tier} ({tier_mode}): {count} in {blocks} x {fmt.price(charge.unit_price)}{flat}"
    if charge.note == "free units":
        return f"{count} free"
    if charge.note == "fixed fee per transaction":
        return f"Fixed fee: {fmt.count(charge.calls)} x {fmt.price(charge.unit_price)}"
    if charge.note:
        return f"{fmt.count(charge.calls)} transaction{'' if charge.calls == 1 else 's'} {charge.note}"
    return f"Tier {charge.tier} ({tier_mode}): {count} x {fmt.price(charge.unit_price)}{flat}"


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """`1 invoice`, `200,000 invoices`: a count with thousands separators and the noun agreeing."""
    return f"{count:,} {singular if count == 1 else plural or singular + 's'}"


def money_text(value: Decimal, currency: str | None) -> str:
    """An amount of money the ledger holds or records, for JSON: at least the currency's minor-unit
    digits (`318.00`; `0` in JPY), every digit beyond them it has (see `exact.decimal_text`)."""
    return decimal_text(value, currencies.minor_units(currency) if currency else 0)
