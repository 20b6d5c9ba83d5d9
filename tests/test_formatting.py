"""The command line's money formatting: an exact amount is never shown rounded, and shows at least
its currency's usual decimals."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import given
from hypothesis import strategies as st

from ratecard.formatting import format_amount, format_money, places_needed


def reference(value: D, places: int) -> str:
    """What `format_amount` shows, as first written: the currency's places, or the value's own digits
    (less trailing zeros) when it has more."""
    return f"{value:,.{max(places, places_needed(value))}f}"


amounts = st.decimals(allow_nan=False, allow_infinity=False) | st.builds(
    lambda digits, exponent, sign: D((sign, tuple(int(c) for c in digits), exponent)),
    st.text("0123456789", min_size=1, max_size=30), st.integers(-25, 12), st.integers(0, 1))


@given(amounts, st.sampled_from(["EUR", "JPY", "BHD", None]))
def test_an_exact_amount_shows_every_digit_it_has_and_at_least_the_currencys(value, currency):
    places = {"EUR": 2, "JPY": 0, "BHD": 3, None: 2}[currency]
    assert format_amount(value, currency) == reference(value, places)


def test_examples():
    assert format_money(D("1234.5000"), "EUR") == "1,234.50 EUR"
    assert format_money(D("1234.5678"), "EUR") == "1,234.5678 EUR"
    assert format_money(D("-0.10"), "EUR") == "-0.10 EUR"
    assert format_money(D("-0"), "EUR") == "-0.00 EUR"
    assert format_money(D("12E+3"), "JPY") == "12,000 JPY"
    assert format_money(D("0.0050"), "JPY") == "0.005 JPY"
    assert format_amount(D("2.345"), "EUR", exact=False) == "2.34"  # rounded half to even when not exact
    assert format_amount(D("2.5"), places=3) == "2.500"
    for special in (D("NaN"), D("Infinity"), D("-Infinity")):
        assert format_amount(special, "EUR") == reference(special, 2)
