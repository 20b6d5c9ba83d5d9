"""Usage inputs a user or an export tool really produces and the differential tests did not cover.

The principle each test guards: a row's verdict (billed, rejected, duplicate, out of period) is the
same whether the fast pass decides it or the row-by-row diagnosing pass does, i.e. it never depends
on whether some other row of the run is bad; and no input, however odd, reaches the user as a
traceback."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from ratecard.usage import read_usage

AGG = "account,period,api,calls,outcome\n"
GOOD = "acme,2020-09,DetectFace,5,success\n"
BAD_CSV = "acme,2020-09,DetectFace,ten,success\n"  # an unrelated bad row: forces the diagnosing pass


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def outcome(rules, path: Path, **kw):
    rejected = []
    reader = read_usage([path], rules, on_reject=rejected.append, **kw)
    try:
        usage = [(u.account, u.period, tuple((i.api, i.calls, i.outcome) for i in u.items))
                 for u in reader.accounts()]
        counts = reader.reconciliation
        assert counts.balanced
        return usage, [(r.line, r.code) for r in rejected], counts
    finally:
        reader.close()


def alone_and_beside_a_bad_row(rules, tmp_path, text: str, bad: str, name="usage.csv", **kw):
    """(result alone, result with a bad row appended): the row's verdict must be the same in both."""
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    alone = outcome(rules, Path(name), **kw)
    path.write_bytes((text + bad).encode("utf-8", "surrogatepass"))
    beside = outcome(rules, Path(name), **kw)
    return alone, beside


# -- the diagnosing pass carries every value through, whatever characters it holds -----------------


@pytest.mark.parametrize("row, billed", [
    ('acme,2020-09,DetectFace,5,"Quota\nExceeded"\n', [("acme", "2020-09", (("DetectFace", 5, "Quota\nExceeded"),))]),
    ('acme,2020-09,DetectFace,5,"Quota\r\nExceeded"\n', [("acme", "2020-09", (("DetectFace", 5, "Quota\r\nExceeded"),))]),
    ('acme,2020-09,DetectFace,5,"Quota\rExceeded"\n', [("acme", "2020-09", (("DetectFace", 5, "Quota\rExceeded"),))]),
])
def test_a_good_row_holding_a_quoted_line_break_is_billed_beside_a_bad_row(shipped_rules, tmp_path, row, billed):
    alone, beside = alone_and_beside_a_bad_row(shipped_rules, tmp_path, AGG + row, BAD_CSV)
    assert alone[0] == billed
    assert beside[0] == billed
    assert [code for _, code in beside[1]] == ["bad-calls"]


@pytest.mark.parametrize("row, code", [
    ('"ac\nme",2020-09,DetectFace,5,success\n', "bad-field"),  # a line break in the account
    ('"ac\r\nme",2020-09,DetectFace,5,success\n', "bad-field"),
    ("acme,2020-09,DetectFace,5,succ\ress\n", "malformed-csv"),  # a lone carriage return, unquoted
])
@pytest.mark.parametrize("first", [True, False])
def test_a_bad_row_holding_a_line_break_is_rejected_not_a_traceback(shipped_rules, tmp_path, row, code, first):
    (tmp_path / "usage.csv").write_text(AGG + (row + GOOD if first else GOOD + row), encoding="utf-8", newline="")
    usage, rejected, counts = outcome(shipped_rules, Path("usage.csv"))
    assert usage == [("acme", "2020-09", (("DetectFace", 5, "success"),))]
    assert [c for _, c in rejected] == [code]
    assert counts.rows_read == 2 and counts.rows_rejected == 1


# -- Parquet as pandas and other tools write it ------------------------------------------------------


def _parquet(path: Path, columns: dict):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table(columns), path)
    return Path(path.name)


def test_parquet_timestamps_in_nanoseconds_are_read_and_never_rounded_into_the_next_month(shipped_rules, tmp_path):
    pa = pytest.importorskip("pyarrow")
    # pandas writes timestamps in nanoseconds: 15:59:59.999999999Z is still September in Beijing.
    ts = pa.array([1601481599999999999, 1601481600000000000], type=pa.timestamp("ns", tz="UTC"))
    name = _parquet(tmp_path / "calls.parquet", {"request_id": ["r1", "r2"], "account": ["acme", "acme"],
                                                  "api": ["DetectFace", "DetectFace"], "timestamp": ts})
    usage, rejected, counts = outcome(shipped_rules, name)
    assert rejected == []
    assert usage == [("acme", "2020-09", (("DetectFace", 1, None),)), ("acme", "2020-10", (("DetectFace", 1, None),))]


@pytest.mark.parametrize("column, value, code", [
    ("period", datetime.date(2020, 9, 1), "bad-field"),  # a period written as a date
    ("account", b"acme", "bad-field"),  # bytes, not text
    ("api", datetime.time(12, 30), "bad-field"),  # a time of day
])
def test_parquet_values_of_any_type_are_bad_rows_not_tracebacks(shipped_rules, tmp_path, column, value, code):
    columns = {"account": ["acme", "acme"], "period": ["2020-09", "2020-09"], "api": ["DetectFace", "DetectFace"],
               "calls": [5, 7]}
    columns[column] = [columns[column][0], value]
    if column != "account":
        columns[column][0] = value
        columns["account"] = ["acme", "acme"]
    name = _parquet(tmp_path / "usage.parquet", columns)
    usage, rejected, counts = outcome(shipped_rules, name)
    assert code in [c for _, c in rejected]
    assert counts.balanced and counts.rows_read == 2


def test_parquet_column_names_are_matched_as_csv_headers_are_spaces_and_case_aside(shipped_rules, tmp_path):
    name = _parquet(tmp_path / "usage.parquet", {" Account ": ["acme", None], "period": ["2020-09"] * 2,
                                                  "api": ["DetectFace"] * 2, "calls": [5, 7]})
    usage, rejected, counts = outcome(shipped_rules, name)
    assert usage == [("acme", "2020-09", (("DetectFace", 5, None),))]
    assert rejected == [(2, "missing-field")]


# -- text that is not valid Unicode ---------------------------------------------------------------------


@pytest.mark.parametrize("field", ["account", "api", "outcome", "period"])
@pytest.mark.parametrize("beside", [False, True])
def test_a_lone_surrogate_in_json_text_is_a_bad_row(shipped_rules, tmp_path, field, beside):
    row = {"account": "acme", "period": "2020-09", "api": "DetectFace", "calls": 5, "outcome": "success"}
    good = json.dumps(row) + "\n"
    odd = json.dumps(row).replace(f'"{field}": "', f'"{field}": "\\ud800', 1) + "\n"
    bad = json.dumps({**row, "calls": "ten"}) + "\n" if beside else ""
    (tmp_path / "usage.jsonl").write_text(good + odd + bad, encoding="utf-8")
    usage, rejected, counts = outcome(shipped_rules, Path("usage.jsonl"))
    assert usage == [("acme", "2020-09", (("DetectFace", 5, "success"),))]
    assert rejected[0][0] == 2 and rejected[0][1] in ("bad-field", "bad-period")
    assert counts.rows_rejected == (2 if beside else 1)


# -- CSV spellings DuckDB's reader forgives and the row checks do not ------------------------------


@pytest.mark.parametrize("row", [
    "acme,2020-09,DetectFace,5,success,\n",  # a trailing delimiter: six fields under a five-column header
    "acme,2020-09,DetectFace,5,success,,,\n",
    'acme, "2020-09",DetectFace,5,success\n',  # a space before an opening quote
    'acme,"2020-09" ,DetectFace,5,success\n',  # a space after a closing quote
    'acme,2020-09,DetectFace,5,"",\n',  # an empty quoted field, then a trailing delimiter
    'acme,2020-09,DetectFace,5,"" \n',  # a space after an empty quoted field
])
def test_a_row_the_checks_refuse_is_refused_whether_or_not_another_row_is_bad(shipped_rules, tmp_path, row):
    alone, beside = alone_and_beside_a_bad_row(shipped_rules, tmp_path, AGG + GOOD + row, BAD_CSV)
    assert alone[0] == beside[0] == [("acme", "2020-09", (("DetectFace", 5, "success"),))]
    assert [line for line, _ in alone[1]] == [3]
    assert [line for line, _ in beside[1]] == [3, 4]


@pytest.mark.parametrize("row", [
    'acme,2020-09,DetectFace,5, ""\n',  # a space before an empty quoted field: Python reads the outcome ' ""'
    'acme,2020-09,DetectFace,5,x""\n',  # quotes inside an unquoted field: the outcome 'x""'
    'acme,2020-09,DetectFace,5,""""\n',  # a quoted quote
    '"",2020-09,DetectFace,5,""\n',  # an empty account, quoted
])
def test_odd_quotes_read_the_same_whether_or_not_another_row_is_bad(shipped_rules, tmp_path, row):
    alone, beside = alone_and_beside_a_bad_row(shipped_rules, tmp_path, AGG + GOOD + row, BAD_CSV)
    assert alone[0] == beside[0]
    assert alone[1] == [r for r in beside[1] if r[0] != 4]


def test_legitimate_empty_last_fields_and_quoted_fields_still_read_in_one_pass(shipped_rules, tmp_path):
    (tmp_path / "usage.csv").write_text(AGG + 'acme,2020-09,DetectFace,5,\n"acme","2020-09","DetectFace",2,"Quota""Exceeded"\n'
                                        'acme,2020-09,DetectFace,1,"Quota,Exceeded"\n', encoding="utf-8")
    reader = read_usage([Path("usage.csv")], shipped_rules)
    assert not reader.diagnosed
    assert reader.reconciliation.rows_accepted == 3


def test_empty_quoted_fields_as_export_tools_write_them_read_in_one_pass(shipped_rules, tmp_path):
    (tmp_path / "usage.csv").write_text(AGG + 'acme,2020-09,DetectFace,5,""\n""acme"",2020-09,DetectFace,1,\n'
                                        'acme,2020-09,"",1,""\n', encoding="utf-8")
    rejected = []
    reader = read_usage([Path("usage.csv")], shipped_rules, on_reject=rejected.append)
    assert reader.reconciliation.rows_accepted == 1 and [r.line for r in rejected] == [3, 4]
    (tmp_path / "usage.csv").write_text(AGG + 'acme,2020-09,DetectFace,5,""\n"",2020-09,DetectFace,1,""\n', encoding="utf-8")
    reader = read_usage([Path("usage.csv")], shipped_rules, on_reject=rejected.append)
    assert reader.diagnosed  # the empty account of line 3 is named
    (tmp_path / "usage.csv").write_text(AGG + 'acme,2020-09,DetectFace,5,""\nacme,2020-09,DetectFace,2,""\n', encoding="utf-8")
    reader = read_usage([Path("usage.csv")], shipped_rules)
    assert not reader.diagnosed and reader.reconciliation.rows_accepted == 2


# -- JSON Lines -------------------------------------------------------------------------------------


@pytest.mark.parametrize("beside", [False, True])
def test_json_keys_repeated_in_a_nested_extra_field_do_not_refuse_the_row(shipped_rules, tmp_path, beside):
    row = '{"account": "acme", "period": "2020-09", "api": "DetectFace", "calls": 5, "meta": {"k": 1, "k": 2}}\n'
    twice = '{"account": "acme", "account": "globex", "period": "2020-09", "api": "DetectFace", "calls": 5}\n'
    bad = '{"account": "acme", "period": "2020-09", "api": "DetectFace", "calls": "ten"}\n' if beside else ""
    (tmp_path / "usage.jsonl").write_text(row + twice + bad, encoding="utf-8")
    usage, rejected, counts = outcome(shipped_rules, Path("usage.jsonl"))
    assert usage == [("acme", "2020-09", (("DetectFace", 5, None),))]
    assert rejected[0] == (2, "malformed-json")  # the record's own field named twice: which account pays?


# -- timestamps at the edge of the calendar ------------------------------------------------------------


def test_a_timestamp_before_year_one_in_utc_is_refused_by_both_passes(shipped_rules, tmp_path):
    rows = ('{"request_id": "r1", "account": "acme", "api": "DetectFace", "timestamp": "0001-01-01T00:00:00+08:00"}\n')
    bad = '{"request_id": "r2", "account": "acme", "api": "DetectFace", "timestamp": "soon"}\n'
    alone, beside = alone_and_beside_a_bad_row(shipped_rules, tmp_path, rows, bad, name="calls.jsonl",
                                               period="2020-09")
    assert beside[1][0] == (1, "bad-timestamp")  # the row checks: out of the range of dates
    assert alone[1] == [(1, "bad-timestamp")]
