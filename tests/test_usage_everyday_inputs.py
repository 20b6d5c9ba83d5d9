"""Usage as people's everyday tools write it (issue 14): semicolon- and tab-separated CSV, a JSON
array file, Unix timestamps in seconds or milliseconds, counts written with thousands separators,
and open file objects in the Python API. Each form is read as its plain spelling would be, and a
form a reader could take two ways is refused as a bad row, located FILE:ROW, with a hint."""
from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest

import ratecard
from ratecard.cli import main
from ratecard.usage import read_usage

AGG = [("acme", "2020-09", "DetectFace", "1000"), ("globex", "2020-09", "SearchFaces", "3000001")]


def agg_text(sep: str, rows=AGG) -> str:
    return sep.join(("account", "period", "api", "calls")) + "\n" + "".join(sep.join(r) + "\n" for r in rows)


def totals(reader) -> list[tuple]:
    return [(u.account, u.period, tuple((i.api, i.calls, i.outcome) for i in u.items)) for u in reader.accounts()]


def rejected(reader) -> list[tuple]:
    return [(r.file, r.line, r.reason) for r in reader.rejected]


@pytest.fixture
def comma(tmp_path, shipped_rules):
    path = tmp_path / "comma.csv"
    path.write_text(agg_text(","))
    return totals(read_usage(path, shipped_rules))


# -- delimiters -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sep", [";", "\t"])
def test_semicolon_and_tab_files_read_as_the_comma_file(tmp_path, shipped_rules, comma, sep):
    path = tmp_path / "usage.csv"
    path.write_text(agg_text(sep))
    reader = read_usage(path, shipped_rules)
    assert totals(reader) == comma and comma[0][2] == (("DetectFace", 1000, None),)
    assert not reader.diagnosed  # the compiled query read it itself


def test_a_quoted_field_may_hold_the_other_separators(tmp_path, shipped_rules):
    path = tmp_path / "usage.csv"
    path.write_text('account;period;api;calls\n"a,b;c";2020-09;DetectFace;5\n')
    assert totals(read_usage(path, shipped_rules)) == [("a,b;c", "2020-09", (("DetectFace", 5, None),))]


def test_a_header_with_two_separators_is_a_clear_error(tmp_path, shipped_rules):
    path = tmp_path / "usage.csv"
    path.write_text("account;period,api;calls\nacme;2020-09,DetectFace;5\n")
    with pytest.raises(ratecard.RatecardError) as caught:
        read_usage(path, shipped_rules)
    assert str(caught.value).endswith("usage.csv:1: the header line holds commas and semicolons, so which one "
                                      "separates the columns is ambiguous; expected the column names separated by "
                                      "one of them only (comma, semicolon or tab)")


def test_a_row_with_the_wrong_separator_is_a_located_bad_row(tmp_path, shipped_rules):
    path = tmp_path / "usage.csv"
    path.write_text("account;period;api;calls\nacme;2020-09;DetectFace;5\nacme,2020-09,DetectFace,5\n")
    reader = read_usage(path, shipped_rules, on_reject=None)
    assert [(line, reason[:20]) for _, line, reason in rejected(reader)] == [(3, "expected 4 columns (")]


# -- counts in files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("written, calls", [('"1,000"', 1000), ("1_000", 1000), ('"3,000,001"', 3000001),
                                             ("5k", 5000), ("1.5M", 1500000), ("1000.0", 1000), ("1000", 1000)])
def test_counts_as_the_command_line_writes_them(tmp_path, shipped_rules, written, calls):
    path = tmp_path / "usage.csv"
    path.write_text(f"account,period,api,calls\nacme,2020-09,DetectFace,{written}\n")
    reader = read_usage(path, shipped_rules)
    assert rejected(reader) == []
    assert totals(reader) == [("acme", "2020-09", (("DetectFace", calls, None),))]


@pytest.mark.parametrize("written, reason", [
    ("1.000", "calls '1.000' is ambiguous: `.` groups thousands in some languages and marks decimals in others"),
    ('"1,5"', "calls '1,5' is ambiguous: `,` here looks like a decimal comma"),
    ("10m", "calls '10m': `m` could mean milli or million"),
    ('"12,34,567"', "calls '12,34,567': digits must be grouped by threes"),
])
def test_ambiguous_counts_are_bad_rows_with_a_hint(tmp_path, shipped_rules, written, reason):
    path = tmp_path / "usage.csv"
    path.write_text(f"account,period,api,calls\nacme,2020-09,DetectFace,5\nacme,2020-09,DetectFace,{written}\n")
    reader = read_usage(path, shipped_rules)
    [(file, line, said)] = rejected(reader)
    assert (file.endswith("usage.csv"), line) == (True, 3) and said.startswith(reason)


def test_a_comma_in_a_count_of_a_semicolon_file_is_refused(tmp_path, shipped_rules):
    """Where `;` separates the fields, `,` is the decimal mark: 1,000 could be one thousand or one."""
    path = tmp_path / "usage.csv"
    path.write_text("account;period;api;calls\nacme;2020-09;DetectFace;1,000\nacme;2020-09;DetectFace;1_000\n"
                    "acme;2020-09;DetectFace;2000\n")
    reader = read_usage(path, shipped_rules)
    assert [(line, reason) for _, line, reason in rejected(reader)] == [
        (2, "calls '1,000' is ambiguous in a semicolon-separated file, where `,` is the decimal mark: write plain "
            "digits (1000) or group thousands with _")]
    assert totals(reader) == [("acme", "2020-09", (("DetectFace", 3000, None),))]


def test_json_counts_follow_the_same_rule(tmp_path, shipped_rules):
    path = tmp_path / "usage.jsonl"
    path.write_text(json.dumps({"account": "acme", "period": "2020-09", "api": "DetectFace", "calls": "2,000"}) + "\n"
                    + json.dumps({"account": "acme", "period": "2020-09", "api": "DetectFace", "calls": "1.000"}) + "\n")
    reader = read_usage(path, shipped_rules)
    assert [line for _, line, _ in rejected(reader)] == [2]
    assert totals(reader) == [("acme", "2020-09", (("DetectFace", 2000, None),))]


# -- Unix timestamps ---------------------------------------------------------------------------------------


CALLS = "request_id,account,api,timestamp\n"


@pytest.mark.parametrize("stamp, period", [
    ("1601481599", "2020-09"),     # 2020-09-30T15:59:59Z: 23:59:59 in Beijing, still September
    ("1601481600", "2020-10"),     # 2020-09-30T16:00:00Z: October 1st in Beijing
    ("1601481599999", "2020-09"),  # milliseconds: the last one of September in Beijing
    ("1601481600000", "2020-10"),
])
def test_unix_seconds_and_milliseconds_fall_in_their_local_month(tmp_path, shipped_rules, stamp, period):
    path = tmp_path / "calls.csv"
    path.write_text(CALLS + f"r1,acme,DetectFace,{stamp}\n")
    reader = read_usage(path, shipped_rules)
    assert [(u.account, u.period) for u in reader.accounts()] == [("acme", period)]
    assert not reader.diagnosed  # read by the compiled query itself, no row pass


def test_the_digit_count_rule():
    from datetime import datetime, timezone

    from ratecard.usage.checks import unix_time

    assert unix_time("999999999") == datetime(2001, 9, 9, 1, 46, 39, tzinfo=timezone.utc)  # 9 digits: seconds
    assert unix_time(100000000000) == datetime(1973, 3, 3, 9, 46, 40, tzinfo=timezone.utc)  # 12: milliseconds


def test_unix_times_match_their_iso_spelling(tmp_path, shipped_rules):
    iso = tmp_path / "iso.csv"
    iso.write_text(CALLS + "r1,acme,DetectFace,2020-09-30T15:59:59Z\nr2,acme,SearchFaces,2020-09-30T16:00:00.001Z\n")
    unix = tmp_path / "unix.csv"
    unix.write_text(CALLS + "r1,acme,DetectFace,1601481599\nr2,acme,SearchFaces,1601481600001\n")
    assert totals(read_usage(unix, shipped_rules)) == totals(read_usage(iso, shipped_rules))


@pytest.mark.parametrize("stamp, digits", [("20200930", 8), ("16014816000", 11), ("16014816000000", 14)])
def test_other_digit_counts_are_refused_not_guessed(tmp_path, shipped_rules, stamp, digits):
    path = tmp_path / "calls.csv"
    path.write_text(CALLS + f"r1,acme,DetectFace,{stamp}\n")
    [(_, line, reason)] = rejected(read_usage(path, shipped_rules))
    assert line == 2 and reason == (f"bad timestamp {stamp!r}: digits only are a Unix time, 9 or 10 digits in "
                                    f"seconds or 12 or 13 in milliseconds, and {digits} digits is neither; expected "
                                    "e.g. 1601508600, 1601508600000 or 2020-09-30T23:30:00Z")


def test_a_json_number_is_a_unix_time_too(tmp_path, shipped_rules):
    path = tmp_path / "calls.jsonl"
    path.write_text(json.dumps({"request_id": "r1", "account": "acme", "api": "DetectFace", "timestamp": 1601481600})
                    + "\n" + json.dumps({"request_id": "r2", "account": "acme", "api": "DetectFace",
                                         "timestamp": 1601481599000}) + "\n")
    reader = read_usage(path, shipped_rules)
    assert rejected(reader) == []
    assert [(u.period, u.items[0].calls) for u in reader.accounts()] == [("2020-09", 1), ("2020-10", 1)]


# -- a JSON array file -------------------------------------------------------------------------------------


ARRAY = """[
  {"account": "acme", "period": "2020-09", "api": "DetectFace", "calls": 1000},
  {
    "account": "globex",
    "period": "2020-09",
    "api": "SearchFaces",
    "calls": 3000001
  }
]
"""


def test_a_json_array_reads_as_its_records(tmp_path, shipped_rules, comma):
    path = tmp_path / "usage.json"
    path.write_text(ARRAY)
    assert totals(read_usage(path, shipped_rules)) == comma
    gz = tmp_path / "usage.json.gz"
    gz.write_bytes(gzip.compress(ARRAY.encode(), mtime=0))
    assert totals(read_usage(gz, shipped_rules)) == comma


def test_a_bad_record_is_named_by_the_line_it_starts_on(tmp_path, shipped_rules):
    path = tmp_path / "usage.json"
    path.write_text(ARRAY.replace('"calls": 3000001', '"calls": -1').replace("DetectFace", "Nope"))
    reader = read_usage(path, shipped_rules, on_reject=None)
    got = rejected(reader)
    assert [(line, reason.split(":")[0]) for _, line, reason in got] == [(2, "unknown API 'Nope'"),
                                                                        (3, "calls must not be negative, got -1")]
    assert [r.raw for r in reader.rejected][1].startswith('{     "account": "globex",')  # the record on one line


@pytest.mark.parametrize("text, where", [
    ('[{"account": "acme"},\n {"oops"\n]', "usage.json:3: malformed JSON array: Expecting ':' delimiter (column 1)"),
    ('[{"account": "acme"}\n{"b": 1}]', "usage.json:2: malformed JSON array: expected ',' or ']' after a record"),
    ('[{"account": "acme"}] x', "usage.json:1: malformed JSON array: text after the array's closing ']'"),
    ("[]", "usage.json: the JSON array holds no records"),
])
def test_a_malformed_array_is_located(tmp_path, shipped_rules, text, where):
    path = tmp_path / "usage.json"
    path.write_text(text)
    with pytest.raises(ratecard.RatecardError) as caught:
        read_usage(path, shipped_rules)
    assert where in str(caught.value)


def test_the_cli_bills_a_json_array_and_a_semicolon_file(tmp_path, capsys):
    (tmp_path / "a.json").write_text(ARRAY)
    (tmp_path / "b.csv").write_text(agg_text(";", [("initech", "2020-09", "DetectFace", "7")]))
    status = main(["bill", "--usage", str(tmp_path / "a.json"), "--usage", str(tmp_path / "b.csv"), "--format",
                   "json", "--rules", "face-recognition"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert sorted(b["account"] for b in json.loads(out)) == ["acme", "globex", "initech"]


# -- file objects in the Python API ------------------------------------------------------------------------


def test_text_and_binary_file_objects(tmp_path, shipped_rules, comma):
    text = agg_text(",")
    assert totals(read_usage([io.StringIO(text)], shipped_rules)) == comma
    assert totals(read_usage(io.BytesIO(text.encode()), shipped_rules)) == comma  # one object, not a list
    assert totals(read_usage([io.BytesIO(gzip.compress(text.encode()))], shipped_rules)) == comma
    (tmp_path / "u.csv").write_text(text)
    with open(tmp_path / "u.csv", "rb") as binary, open(tmp_path / "u.csv", encoding="utf-8") as textual:
        assert totals(read_usage([binary, textual], shipped_rules)) == [
            (a, p, tuple((api, calls * 2, o) for api, calls, o in items)) for a, p, items in comma]


def test_a_file_object_is_named_in_bad_rows(tmp_path, shipped_rules):
    bad = "account,period,api,calls\nacme,2020-09,DetectFace,x\n"
    reader = read_usage([io.StringIO(bad)], shipped_rules)
    assert [(f, line) for f, line, _ in rejected(reader)] == [("<stream 1>", 2)]
    (tmp_path / "named.csv").write_text(bad)
    with open(tmp_path / "named.csv", "rb") as f:
        assert rejected(read_usage([f], shipped_rules))[0][0] == str(tmp_path / "named.csv")


@pytest.mark.parametrize("source", [42, io.StringIO("x")])
def test_what_cannot_be_read_is_a_clear_error(shipped_rules, source):
    if isinstance(source, io.StringIO):
        source.close()
    with pytest.raises(ratecard.RatecardError) as caught:
        read_usage([source], shipped_rules)
    assert "cannot read" in str(caught.value)
