"""Reference data about the world, not about any product, from Babel's copy of the Unicode CLDR:
which ISO 4217 currency codes exist and how many minor-unit digits each has, and which locales
documents can be written in.

It lets validation reject a typo such as `USDD` or `RMB`, the ledger refuse `10.001` EUR, and
invoices show the currency's usual number of decimals. Babel is imported on first use, so the
commands that never format money or check a rule file (`ratecard status`) do not load it.
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=None)
def _codes() -> frozenset[str]:
    from babel.numbers import list_currencies

    return frozenset(list_currencies())


def is_currency(code: str) -> bool:
    return code in _codes()


@lru_cache(maxsize=256)
def minor_units(code: str) -> int:
    """Digits after the decimal point in the currency's usual amounts: 2 for USD, 0 for JPY, 3 for BHD."""
    from babel.numbers import get_currency_precision

    return get_currency_precision(code)


@lru_cache(maxsize=64)
def is_locale(identifier: str) -> bool:
    from babel.core import Locale, UnknownLocaleError

    try:
        Locale.parse(identifier)
    except (UnknownLocaleError, ValueError, TypeError):
        return False
    return True
