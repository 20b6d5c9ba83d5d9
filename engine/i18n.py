"""Documents in the customer's language: message catalogs and locale-aware numbers, money and dates.

The settlement policy names the locale its documents are written in (`locale: zh_Hans_CN`). The
templates' wording goes through gettext (Jinja's i18n extension) with the catalogs kept as `.po`
sources under `engine/locale/<locale>/LC_MESSAGES/ratecard.po` and compiled beside them to `.mo`
(`pybabel compile -d engine/locale -D ratecard`; tests/test_i18n.py fails when a compiled catalog
is stale or a message of the templates is untranslated). A locale without a catalog of its own
falls back to its parent (`zh_Hans_CN` → `zh_Hans` → `zh`), then to the English of the templates.

Numbers, amounts and dates use Babel's CLDR data for the locale: its decimal and group symbols, the
currency's own minor units, its date patterns. Amounts stay exact: an unrounded amount shows every
digit it has, never fewer than the currency's usual decimals. Babel is imported here only, on the
paths that render a document.
"""

from __future__ import annotations

import unicodedata
import datetime
from datetime import date
from decimal import Decimal, localcontext
from functools import lru_cache
from pathlib import Path

from .exact import ROUNDING

DEFAULT_LOCALE = "en"
DOMAIN = "ratecard"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


def _fallbacks(locale: str) -> list[str]:
    parts = locale.split("_")
    return ["_".join(parts[:n]) for n in range(len(parts), 0, -1)]


@lru_cache(maxsize=16)
def translations(locale: str):
    """The gettext catalog for `locale` (or its nearest parent), or one that keeps the English."""
    from babel.support import NullTranslations, Translations

    for candidate in _fallbacks(locale):
        mo = LOCALE_DIR / candidate / "LC_MESSAGES" / f"{DOMAIN}.mo"
        if mo.is_file():
            with mo.open("rb") as fh:
                return Translations(fh, domain=DOMAIN)
    return NullTranslations()


def text_width(text: str) -> int:
    """Columns the text takes in a monospaced font: East Asian wide and full-width characters take two."""
    if text.isascii():
        return len(text)
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def ljust(value, width: int) -> str:
    text = str(value)
    return text + " " * max(0, width - text_width(text))


def rjust(value, width: int) -> str:
    text = str(value)
    return " " * max(0, width - text_width(text)) + text


_REMEMBERED = 50_000  # texts kept per DocumentFormat; then it starts afresh


# Types whose equal values are spelled alike, so that the value itself can be the key: not Decimal
# (1.0 == 1.00), float (0.0 == -0.0) or datetime (equal instants in different zones).
_SPELLED_BY_VALUE = frozenset({int, str, date})


def _remembered(texts: dict, name: str, fn):
    def format_(value, *args, **kwargs):
        kind = type(value)
        key = (name, kind, value if kind in _SPELLED_BY_VALUE else str(value), args,
               tuple(sorted(kwargs.items())) if kwargs else ())
        try:
            return texts[key]
        except KeyError:
            pass
        except TypeError:  # an argument that cannot be a key (a template's own list): not kept
            return fn(value, *args, **kwargs)
        text = fn(value, *args, **kwargs)
        if len(texts) >= _REMEMBERED:
            texts.clear()
        texts[key] = text
        return text

    format_.__doc__, format_.__name__ = fn.__doc__, fn.__name__
    return format_


class DocumentFormat:
    """The Jinja filters that write numbers, money and dates in one locale."""

    def __init__(self, locale: str = DEFAULT_LOCALE):
        from babel.core import Locale

        self.locale = Locale.parse(locale)
        self._ = translations(locale).gettext
        # Babel parses its pattern again on every call, and an invoice run formats the same prices,
        # bounds and dates thousands of times: the texts are kept, keyed by the value's own spelling
        # (Decimal 1.0 and 1.00 are equal but written differently).
        self._texts: dict = {}
        for name in ("count", "price", "amount", "money", "date", "month"):
            setattr(self, name, _remembered(self._texts, name, getattr(self, name)))
        from babel.numbers import format_decimal, get_decimal_symbol, get_group_symbol

        self._group, self._decimal = get_group_symbol(self.locale), get_decimal_symbol(self.locale)
        # Written without Babel only where it writes a probe the same (CLDR data can say otherwise:
        # some locales do not group four-digit numbers, or at all).
        probe = Decimal("1234567.125")
        with localcontext(ROUNDING):
            same = format_decimal(probe, format="#,##0.00", locale=self.locale, decimal_quantization=False) \
                == self._digits(probe, 2) and format_decimal(1234, format="#,##0", locale=self.locale) \
                == self._digits(1234, 0)
        self._fast = same

    def _plain(self, value, places: int) -> str | None:
        return self._digits(value, places) if self._fast else None

    def _digits(self, value, places: int) -> str | None:
        """`value` (an int or a finite Decimal, not negative) as Babel writes it with the pattern
        `#,##0` followed by `places` zeros and no quantization: every digit it has, at least `places`
        decimals, groups of three. Babel parses its pattern and walks the digits on every call, and an
        invoice writes a dozen counts and amounts that differ from account to account; None for what
        this does not cover (negative numbers, NaN), which Babel writes. tests/test_i18n.py holds the
        two equal on random values."""
        if type(value) is int:
            if value < 0 or value >= 10 ** 27:  # Babel quantizes in the current context (28 digits)
                return None
            whole, frac = str(value), ""
        else:
            if type(value) is not Decimal or not value.is_finite() or value.is_signed() or value.adjusted() >= 27:
                return None  # huge amounts as Babel writes them (or the error it raises past 199 digits)
            whole, _, frac = format(ROUNDING.normalize(value), "f").partition(".")
        if len(frac) < places:
            frac += "0" * (places - len(frac))
        if len(whole) > 3:
            head = len(whole) % 3 or 3
            whole = whole[:head] + "".join(self._group + whole[i:i + 3] for i in range(head, len(whole), 3))
        return whole + self._decimal + frac if frac else whole

    def count(self, value: int) -> str:
        from babel.numbers import format_decimal

        if type(value) is not int and value != int(value):  # a decimal quantity (GB): every digit, never rounded
            with localcontext(ROUNDING):
                return format_decimal(value, format="#,##0.#", locale=self.locale, decimal_quantization=False)
        if type(value) is int:
            text = self._plain(value, 0)
            if text is not None:
                return text
        return format_decimal(value, format="#,##0", locale=self.locale)

    def price(self, value) -> str:
        """A unit price with exactly the digits it was written with (0.0025, 0.125, 48), no grouping."""
        from babel.numbers import format_decimal

        value = Decimal(value)
        with localcontext(ROUNDING):
            return format_decimal(value.normalize(), format="0.#", locale=self.locale, decimal_quantization=False)

    def amount(self, value, currency: str | None = None, exact: bool = True) -> str:
        """`1234.5678` → `1,234.5678`; `1234.5000` → `1,234.50` in a two-decimal currency.

        At least the currency's usual decimals and, when `exact`, as many more as the value needs."""
        from babel.numbers import format_decimal

        from .currencies import minor_units

        places = minor_units(currency) if currency else 2
        if exact:
            text = self._plain(value if type(value) is Decimal else Decimal(value), places)
            if text is not None:
                return text
        pattern = "#,##0" + ("." + "0" * places if places else "")
        with localcontext(ROUNDING):
            return format_decimal(Decimal(value), format=pattern, locale=self.locale, decimal_quantization=not exact)

    def money(self, value, currency: str, exact: bool = True, symbol: bool = False) -> str:
        """An amount with its ISO code (`1,234.50 USD`), or with the locale's symbol and pattern (`¥1,234.50`)."""
        from babel.numbers import format_currency

        with localcontext(ROUNDING):
            return format_currency(Decimal(value), currency, format=None if symbol else "#,##0.00 ¤¤",
                                   locale=self.locale, currency_digits=True, decimal_quantization=not exact)

    def date(self, value: date | str, pattern: str | None = None) -> str:
        """A date in the catalog's document date pattern (CLDR syntax; `yyyy-MM-dd` in English), or in
        `pattern`: a CLDR pattern or one of `short`, `medium`, `long`, `full`."""
        from babel.dates import format_date

        if isinstance(value, str):  # a date as a bill records it (YYYY-MM-DD)
            value = date.fromisoformat(value)
        # Translators: the CLDR date pattern of dates on invoices and rate cards.
        return format_date(value, pattern or self._("yyyy-MM-dd"), locale=self.locale)

    def month(self, value: datetime.date) -> str:  # not `date`: the method above shadows it here
        """A billing period's month (`2020-09`; `2020年9月` in Chinese)."""
        from babel.dates import format_date

        # Translators: the CLDR pattern of a billing month (year and month) on documents.
        return format_date(value, self._("yyyy-MM"), locale=self.locale)
