"""Documents in the rule set's language: catalogs complete and compiled, locale-aware numbers and dates.

The wording of every template goes through the catalogs under engine/locale (see ratecard.i18n);
these tests fail when a template gains a message no catalog translates, when a compiled `.mo` is
older than its `.po`, or when a translation's placeholders do not match its message.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

import ratecard
from ratecard.errors import RuleSetInvalid
from ratecard.i18n import LOCALE_DIR, DocumentFormat, ljust, rjust, text_width, translations
from ratecard.render import render_rate_card

from conftest import ROOT

CATALOGS = sorted(LOCALE_DIR.glob("*/LC_MESSAGES/ratecard.po"))


def _extracted() -> set[str]:
    with open(ROOT / "babel.cfg", encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    return {msg[2] if isinstance(msg[2], str) else msg[2][0]
            for msg in extract_from_dir(str(ROOT), method_map, options_map)}


def _singular(msgid) -> str:
    return msgid if isinstance(msgid, str) else msgid[0]


def test_there_is_a_simplified_chinese_catalog():
    assert [p.parent.parent.name for p in CATALOGS] == ["zh_Hans"]


def test_the_template_lists_every_message_of_the_templates():
    with open(LOCALE_DIR / "ratecard.pot", "rb") as fh:
        pot = {_singular(m.id) for m in read_po(fh) if m.id}
    extracted = _extracted()
    assert "Subtotal" in extracted and "yyyy-MM-dd" in extracted  # from a template and from the code
    assert extracted == pot, "run: pybabel extract -F babel.cfg --no-location --add-comments=Translators: " \
                             "--sort-output --omit-header -o engine/locale/ratecard.pot ."


@pytest.mark.parametrize("po", CATALOGS, ids=lambda p: p.parent.parent.name)
def test_every_message_is_translated_with_the_same_placeholders(po):
    with open(po, "rb") as fh:
        catalog = read_po(fh)
    messages = {_singular(m.id): m for m in catalog if m.id}
    assert set(messages) == _extracted()
    assert not [m.id for m in messages.values() if not m.string or m.fuzzy]
    problems = [(m.id, [str(e) for e in errors]) for m, errors in catalog.check()]
    assert problems == []


@pytest.mark.parametrize("po", CATALOGS, ids=lambda p: p.parent.parent.name)
def test_the_compiled_catalog_matches_its_source(po):
    def table(catalog) -> dict:  # plural messages come back as lists from one reader, tuples from the other
        return {tuple(m.id) if not isinstance(m.id, str) else m.id:
                tuple(m.string) if not isinstance(m.string, str) else m.string for m in catalog if m.id}

    with open(po, "rb") as fh:
        source = table(read_po(fh))
    with open(po.with_suffix(".mo"), "rb") as fh:
        compiled = table(read_mo(fh))
    assert compiled == source, "run: pybabel compile -d engine/locale -D ratecard"


def test_a_locale_falls_back_to_its_parent_catalog_then_to_english():
    assert translations("zh_Hans_CN").gettext("Subtotal") == "小计"
    assert translations("zh_Hans_SG").gettext("Subtotal") == "小计"
    assert translations("de_DE").gettext("Subtotal") == "Subtotal"


def test_numbers_money_and_dates_follow_the_locale():
    en, zh, de = DocumentFormat("en"), DocumentFormat("zh_Hans_CN"), DocumentFormat("de_DE")
    assert (en.count(3_000_000), de.count(3_000_000)) == ("3,000,000", "3.000.000")
    # never fewer than the currency's decimals, never rounded: every digit of an exact amount shows
    assert en.amount(D("1800.0006"), "USD") == "1,800.0006" and en.amount(D("1800"), "USD") == "1,800.00"
    assert de.amount(D("1234.5"), "EUR") == "1.234,50" and en.amount(D("1234"), "JPY") == "1,234"
    assert en.amount(D("1234.5678"), "BHD") == "1,234.5678" and en.amount(D("1.5"), "BHD") == "1.500"
    wide = D("123456789012345678901234567890.123456789")
    assert en.amount(wide, "USD") == "123,456,789,012,345,678,901,234,567,890.123456789"
    assert en.money(D("2400"), "USD") == "2,400.00 USD" and zh.money(D("9.5"), "CNY", symbol=True) == "¥9.50"
    assert (en.price(D("0.00050")), de.price(D("0.0005")), en.price(D("25000"))) == ("0.0005", "0,0005", "25000")
    assert (en.date(date(2020, 10, 1)), zh.date(date(2020, 10, 1)), zh.date("2020-09-15")) == \
        ("2020-10-01", "2020年10月1日", "2020年9月15日")
    assert (en.month(date(2020, 9, 1)), zh.month(date(2020, 9, 1))) == ("2020-09", "2020年9月")


def test_text_columns_count_wide_characters_twice():
    assert text_width("小计") == 4 and text_width("Subtotal") == 8
    assert ljust("小计", 6) == "小计  " and rjust("合计", 5) == " 合计"


def test_the_locale_is_a_validated_setting_of_the_settlement_policy(tmp_path):
    import shutil

    target = tmp_path / "rs"
    shutil.copytree(ROOT / "rules" / "face-recognition", target)
    policy = target / "settlement.yaml"
    policy.write_text(policy.read_text() + "locale: xx_QQ\n")
    line = len(policy.read_text().splitlines())
    with pytest.raises(RuleSetInvalid) as caught:
        ratecard.load_rules(target)
    text = "\n".join(caught.value.lines())
    assert f"settlement.yaml:{line}:9: error: locale: " in text and "'xx_QQ' is not a locale with CLDR data" in text
    policy.write_text(policy.read_text().replace("locale: xx_QQ", "locale: de_DE"))
    card = render_rate_card(ratecard.load_rules(target), "markdown", "2020-09")
    # no German catalog: the English wording, with German numbers and dates
    assert "Rate card — rs" in card and "| calls ≤ 3.000.000 |" in card and "| 0,0008 |" in card
    assert "in force from 2020-09-15" in card  # the document date pattern is the catalog's: English


def test_the_shipped_rule_sets_choose_their_documents_language():
    assert ratecard.load_rules(ROOT / "rules" / "face-recognition").latest[2].locale == "en"
    cn = ratecard.load_rules(ROOT / "rules" / "face-recognition-cn")
    assert cn.latest[2].locale == "zh_Hans_CN"
    card = render_rate_card(cn, "html", "2020-09")
    assert '<html lang="zh-Hans-CN">' in card and "价目表" in card and "人脸搜索" in card


def test_status_does_not_load_babel(tmp_path):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from ratecard.ledger import Ledger

    db = tmp_path / "l.db"
    with Ledger(db, create=True) as ledger:
        ledger.create_account("ada", "Ada", "EUR", datetime(2024, 1, 1, tzinfo=ZoneInfo("Europe/Berlin")))
    probe = ("import sys\nfrom ratecard.cli import main\nmain(['status', 'ada', '--db', "
             f"{str(db)!r}])\nprint(sorted(m for m in sys.modules if m.split('.')[0] == 'babel'))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=Path(ROOT))
    assert done.stdout.splitlines()[-1] == "[]", done.stderr


# -- counts and exact amounts written without Babel's pattern machinery: the same text -----------------

from hypothesis import given, settings, strategies as st  # noqa: E402

_LOCALES = ("en", "zh_Hans_CN", "de_DE", "fr", "hi_IN", "ar_EG", "de_CH")
_CURRENCIES = ("USD", "JPY", "BHD", "CNY", "EUR")


@settings(max_examples=400, deadline=None)
@given(locale=st.sampled_from(_LOCALES), currency=st.sampled_from(_CURRENCIES),
       value=st.one_of(st.decimals(allow_nan=False, allow_infinity=False, places=None),
                       st.decimals(min_value=0, max_value=10 ** 12, places=6),
                       st.integers(min_value=-10 ** 40, max_value=10 ** 40).map(D)))
def test_exact_amounts_are_written_as_babel_writes_them(locale, currency, value):
    from decimal import localcontext

    from babel.numbers import format_decimal

    from ratecard.currencies import minor_units
    from ratecard.exact import ROUNDING

    places = minor_units(currency)
    with localcontext(ROUNDING):
        expected = _or_error(lambda: format_decimal(value, format="#,##0" + ("." + "0" * places if places else ""),
                                                    locale=locale, decimal_quantization=False))
    assert _or_error(lambda: DocumentFormat(locale).amount(value, currency)) == expected


@settings(max_examples=300, deadline=None)
@given(locale=st.sampled_from(_LOCALES), value=st.integers(min_value=-10 ** 30, max_value=10 ** 30))
def test_counts_are_written_as_babel_writes_them(locale, value):
    from babel.numbers import format_decimal

    assert _or_error(lambda: DocumentFormat(locale).count(value)) == \
        _or_error(lambda: format_decimal(value, format="#,##0", locale=locale))


def _or_error(write):
    """The text written, or the type of error raised (Babel's past 28 digits): the same either way."""
    try:
        return write()
    except ArithmeticError as exc:
        return type(exc)


def test_a_huge_amount_is_written_by_babel_itself_even_its_error():
    """The direct writer covers amounts below 10**27; past that Babel writes them, so the text (or,
    past its 199 digits, the error) is Babel's own."""
    import decimal

    from babel.numbers import format_currency

    from ratecard.i18n import DocumentFormat

    fmt = DocumentFormat("en")
    with pytest.raises(decimal.InvalidOperation):
        format_currency(decimal.Decimal("1E+199"), "USD", locale="en", currency_digits=False,
                        decimal_quantization=False)
    with pytest.raises(decimal.InvalidOperation):
        fmt.amount(decimal.Decimal("1E+199"), "USD")
    assert fmt.amount(decimal.Decimal("1E+30"), "USD") == "1,000,000,000,000,000,000,000,000,000,000.00"
