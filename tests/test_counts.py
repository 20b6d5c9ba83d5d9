"""One rule for writing a count (calls, pack sizes) on the command line: ratecard.counts."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratecard.cli import main
from ratecard.counts import CountError, parse_count


@pytest.mark.parametrize("text, count", [
    ("3000000", 3_000_000), ("3,000,000", 3_000_000), ("3_000_000", 3_000_000), ("999", 999), ("0", 0),
    ("1,000", 1000), ("500k", 500_000), ("500K", 500_000), ("1M", 1_000_000), ("1.5M", 1_500_000),
    ("2.5k", 2500), ("0.25M", 250_000),
])
def test_accepted_forms(text, count):
    assert parse_count(text) == count


@pytest.mark.parametrize("text, hint", [
    ("1.000", "ambiguous"), ("1.000.000", "write 1000000 or 1,000,000"), ("1,5", "decimal comma"),
    ("1,00", "decimal comma"), ("3.000,00", "decimal comma"), ("1.5", "not a whole number"),
    ("1,000.5", "not a whole number"), ("1.0005k", "not a whole number"), ("10m", "milli or million"),
    ("1,000_000", "one separator"), ("10,00,000", "grouped by threes"), ("", "got nothing"), ("lots", "not a count"),
    (" 5", "not a count"), ("-5", "not a count"), ("1e6", "not a count"), ("²", "not a count"), ("١٢", "not a count"),
    ("9" * 25, "too many digits"), ("9" * 5000, "too many digits"), ("1,000" * 20, "too many digits"),
])
def test_ambiguous_or_wrong_forms_are_refused_with_a_hint(text, hint):
    with pytest.raises(CountError) as caught:
        parse_count(text)
    assert hint in str(caught.value)


@given(st.integers(min_value=0, max_value=10**15))
def test_every_count_reads_back_from_each_of_its_spellings(n):
    assert parse_count(str(n)) == n
    assert parse_count(f"{n:,}") == n
    assert parse_count(f"{n:_}") == n
    if n % 1000 == 0 and n < 10**18:
        assert parse_count(f"{n // 1000}k") == n


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=0, max_value=999))
def test_a_decimal_before_a_suffix_must_make_a_whole_count(whole, thousandths):
    text = f"{whole}.{thousandths:03d}k"
    assert parse_count(text) == whole * 1000 + thousandths


def test_quote_and_pack_buy_read_counts_alike(capsys):
    for word in ("SearchFaces=3000001", "SearchFaces=3,000,001", "SearchFaces=3_000_001"):
        assert main(["quote", word, "--period", "2020-09", "--format", "json"]) == 0
        assert json.loads(capsys.readouterr().out)["lines"][0]["calls"] == 3_000_001
    assert main(["quote", "SearchFaces=1.5M", "--pack", "face-search=500k", "--period", "2020-09",
                 "--format", "json"]) == 0
    line = json.loads(capsys.readouterr().out)["lines"][0]
    assert (line["calls"], line["packs_used"][0]["units_used"]) == (1_500_000, 500_000)
