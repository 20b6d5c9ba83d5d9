"""How a count of units (calls, pack sizes) may be written where people type or export them: one rule
for the command line (`quote API=CALLS`, `--pack CATEGORY=UNITS`, `pack buy ... SIZE`) and usage files.

* Plain digits: `2000000`.
* Digits grouped by threes with `,` or `_` (one separator throughout): `2,000,000`, `2_000_000`.
* A suffix `k` (thousand) or `M` (million), after a whole or decimal number whose value is whole:
  `500k`, `1M`, `1.5M` (1,500,000), `2.5k` (2,500).

Refused with a hint, because a reader could take them two ways: `1.000` and `1.000.000` (a
thousands separator in much of Europe, a decimal point in English), `1,5` and `1,00` (a decimal
comma, or a misplaced group), `1,000.5` or `1.5` alone (not a whole number), `m` (milli or million?),
`3.000,00` and any mix of separators. Spaces are never part of a count.
"""

from __future__ import annotations

import re
from decimal import Decimal

_PLAIN = re.compile(r"[0-9]{1,24}")
_GROUPED = re.compile(r"[0-9]{1,3}(?:(?P<sep>[,_])[0-9]{3})(?:(?P=sep)[0-9]{3})*")
_SUFFIXED = re.compile(r"(?P<number>[0-9]{1,18}(?:\.[0-9]{1,6})?)(?P<suffix>[kKM])")
_MULTIPLIER = {"k": 1000, "K": 1000, "M": 1_000_000}

EXAMPLES = "e.g. 2000000, 2,000,000, 2_000_000, 500k or 1.5M"


class CountError(ValueError):
    """Text that is not a count under the rule above; the message says why and what to write."""


def parse_count(text: str) -> int:
    """The whole number of units `text` writes (see the module's rule), or CountError."""
    raw = text if isinstance(text, str) else str(text)
    if len(raw) > 32:
        raise CountError(f"{raw[:12]!r}…: too many digits for a count; {EXAMPLES}")
    if _PLAIN.fullmatch(raw):
        return int(raw)
    if _GROUPED.fullmatch(raw):
        return int(raw.replace(",", "").replace("_", ""))
    suffixed = _SUFFIXED.fullmatch(raw)
    if suffixed:
        value = Decimal(suffixed.group("number")) * _MULTIPLIER[suffixed.group("suffix")]
        if value != value.to_integral_value():
            raise CountError(f"{raw!r} is not a whole number of units; {EXAMPLES}")
        return int(value)
    raise CountError(_why(raw))


def _why(raw: str) -> str:
    if not raw:
        return f"expected a count, got nothing; {EXAMPLES}"
    if raw.isascii() and raw.isdigit():
        return f"{raw!r}: too many digits for a count; {EXAMPLES}"
    if raw.endswith("m") and raw[:-1].replace(".", "").isdigit():
        return f"{raw!r}: `m` could mean milli or million; write M for a million ({raw[:-1]}M); {EXAMPLES}"
    if re.fullmatch(r"[0-9]{1,3}(\.[0-9]{3})+", raw):
        return (f"{raw!r} is ambiguous: `.` groups thousands in some languages and marks decimals in others; "
                f"write {raw.replace('.', '')} or {raw.replace('.', ',')}")
    if re.fullmatch(r"[0-9]+,[0-9]{1,2}", raw) or re.fullmatch(r"[0-9.]+,[0-9]+", raw):
        return (f"{raw!r} is ambiguous: `,` here looks like a decimal comma, and a count is a whole number; "
                f"group thousands by threes (1,000,000) or write plain digits; {EXAMPLES}")
    if re.fullmatch(r"[0-9]+\.[0-9]+", raw) or re.fullmatch(r"[0-9,_]+\.[0-9]+", raw):
        return f"{raw!r} is not a whole number of units; {EXAMPLES}"
    if re.fullmatch(r"[0-9,_]+", raw):
        return (f"{raw!r}: digits must be grouped by threes with one separator (`,` or `_`) throughout; "
                f"{EXAMPLES}")
    return f"{raw!r} is not a count; {EXAMPLES}"
