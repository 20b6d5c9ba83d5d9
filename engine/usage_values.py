"""The usage reader's part for price models (issue 12), kept apart from the reader so that it can
move with it: an optional transaction `amount` per row (for categories priced as a percentage of
it) and decimal quantities (for categories whose unit has decimal places).

A row's `amount` is the total transaction amount of its calls, an exact decimal ≥ 0 written
as text (never a float). A row with an amount stays its own usage item rather than being added to
other rows of its API (see `ratecard.price.percentage`: per-transaction bounds need the amount of
each transaction). A decimal quantity is allowed only for an API whose category's unit has decimal
places, and only with at most that many.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from .exact import decimal_places

_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")  # ASCII digits, no sign, no exponent, no separators
MAX_DIGITS = 30


def amount(values: dict, bad) -> Decimal | None:
    """The row's transaction amount, None when it has none; `bad(code, reason)` makes the rejection."""
    value = values.get("amount")
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _DECIMAL.fullmatch(value.strip()) or len(value.strip()) > MAX_DIGITS:
        shown = value if isinstance(value, str) else type(value).__name__
        raise bad("bad-amount", f"amount must be an exact decimal of at least 0 written as text (e.g. "
                  f"\"12.50\"), got {shown!r}")
    return Decimal(value.strip())


def decimal_calls(value) -> Decimal | None:
    """A decimal quantity written as text ("1.25"), or None when `value` is not one."""
    if isinstance(value, str) and "." in value and _DECIMAL.fullmatch(value.strip()) and len(value.strip()) <= MAX_DIGITS:
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            return None
    return None


def check_quantity(t, api: str, calls: Decimal, bad) -> Decimal:
    """A decimal quantity of `api`, refused for a category that counts whole units or with more
    decimal places than its unit allows. `t` is the tariff of the row's period (or not a Tariff
    when no rules are in force, which the reader reports itself)."""
    entry = t.index.get(api) if hasattr(t, "decimal_pos") else None
    places = t.decimal_pos.get(t.slot_position[entry[0]]) if entry is not None else None
    if places is None:
        raise bad("bad-calls", f"calls must be a whole number, got {format(calls, 'f')!r}")
    if decimal_places(calls.normalize()) > places:
        raise bad("bad-calls", f"the quantity of {api} has more decimal places than its unit allows "
                  f"({places}), got {format(calls, 'f')}")
    return calls
