"""Usage readers: formats, bad rows, reconciliation, duplicates, time zones, gzip, stdin, memory."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import tracemalloc
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ratecard
from ratecard.errors import PeriodError, RatecardError, UsageInvalid
from ratecard.rating import SUCCESS, UsageItem, rate
from ratecard.usage import (STDIN_NAME, AccountUsage, Reconciliation, RejectsWriter, UsageReader, read_usage,
                          write_rejects)

from conftest import ROOT, TOY_APIS, TOY_SETTLEMENT, write_rule_set

EXAMPLES = ROOT / "examples"
AGG_HEADER = "account,period,api,calls,outcome\n"
CALLS_HEADER = "request_id,account,api,timestamp,outcome\n"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    # Usage files are named as the user would type them: relative to the working directory.
    monkeypatch.chdir(tmp_path)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def read_text(rules, tmp_path, text, name="usage.csv", **kwargs) -> UsageReader:
    return read_usage(write(tmp_path, name, text), rules, **kwargs)


def usage_of(reader) -> dict:
    return {(u.account, u.period): u.items for u in reader.accounts()}


def jsonl(*objects) -> str:
    return "".join(json.dumps(o) + "\n" for o in objects)


# -- reading ---------------------------------------------------------------------------------------


def test_csv_rows_are_summed_per_account_period_api_and_outcome(shipped_rules, tmp_path):
    reader = read_text(shipped_rules, tmp_path, AGG_HEADER
                       + "acme,2020-09,SearchFaces,10,success\n"
                       + "acme,2020-09,SearchFaces,5,success\n"
                       + "acme,2020-09,SearchFaces,2,InvalidParameterValue.NoFaceInPhoto\n"
                       + "acme,2020-09,DetectFace,7,\n"
                       + "globex,2020-09,CreateGroup,3,success\n")
    assert list(reader.accounts()) == [
        AccountUsage("acme", "2020-09", (UsageItem("DetectFace", 7, None),
                                         UsageItem("SearchFaces", 2, "InvalidParameterValue.NoFaceInPhoto"),
                                         UsageItem("SearchFaces", 15, SUCCESS))),
        AccountUsage("globex", "2020-09", (UsageItem("CreateGroup", 3, SUCCESS),)),
    ]
    # The items go straight into the rating core.
    acme = next(reader.accounts())
    assert rate(shipped_rules, acme.items, acme.period, account=acme.account).lines[0].calls == 7


def test_jsonl_reads_the_same_as_csv(shipped_rules, tmp_path):
    rows = [("acme", "2020-09", "SearchFaces", 10, "success"), ("acme", "2020-09", "DetectFace", 3, ""),
            ("wonka", "2020-09", "DetectFace", 4, "FailedOperation.ImageDecodeFailed")]
    as_csv = read_text(shipped_rules, tmp_path, AGG_HEADER + "".join(",".join(map(str, r)) + "\n" for r in rows))
    as_jsonl = read_text(shipped_rules, tmp_path, jsonl(*(dict(zip(("account", "period", "api", "calls", "outcome"), r))
                                                           for r in rows)), name="usage.jsonl")
    assert usage_of(as_csv) == usage_of(as_jsonl)
    assert as_csv.reconciliation == as_jsonl.reconciliation


def test_outcome_and_error_code_columns(shipped_rules, tmp_path):
    reader = read_text(shipped_rules, tmp_path, "request_id,account,api,timestamp,error_code\n"
                       "r1,acme,DetectFace,2020-09-10T00:00:00Z,\n"
                       "r2,acme,DetectFace,2020-09-10T00:00:00Z,InvalidParameterValue.NoFaceInPhoto\n")
    # A call log leaves the error code of a successful call empty.
    assert usage_of(reader)[("acme", "2020-09")] == (
        UsageItem("DetectFace", 1, "InvalidParameterValue.NoFaceInPhoto"), UsageItem("DetectFace", 1, SUCCESS))
    reader = read_text(shipped_rules, tmp_path, AGG_HEADER + "acme,2020-09,DetectFace,1,SUCCESS\n"
                       "acme,2020-09,DetectFace,2,\n")
    assert usage_of(reader)[("acme", "2020-09")] == (UsageItem("DetectFace", 2, None),
                                                     UsageItem("DetectFace", 1, SUCCESS))


@pytest.mark.parametrize("text, kind", [
    (AGG_HEADER + "acme,2020-09,DetectFace,1,success\n", "aggregated"),
    ("\ufeff Account , PERIOD ,api,Calls,region\nacme,2020-09,DetectFace,1,eu\n", "aggregated"),
    (CALLS_HEADER + "r1,acme,DetectFace,2020-09-10T00:00:00Z,success\n", "calls"),
    ("\n" + jsonl({"account": "acme", "period": "2020-09", "api": "DetectFace", "calls": 1}), "aggregated"),
    (jsonl({"request_id": "r1", "account": "acme", "api": "DetectFace", "timestamp": "2020-09-10T00:00:00Z"}),
     "calls"),
])
def test_format_and_kind_are_detected_from_the_header(shipped_rules, tmp_path, text, kind):
    reader = read_text(shipped_rules, tmp_path, text, name="usage.data")
    outcome = SUCCESS if "success" in text else None
    assert usage_of(reader) == {("acme", "2020-09"): (UsageItem("DetectFace", 1, outcome),)}
    assert reader.reconciliation.rows_accepted == 1
    assert [source.kind for source in reader.sources] == [kind]  # read as call records, with request ids


def test_explicit_format_and_kind(shipped_rules, tmp_path):
    # With the kind given, a malformed first JSON line is one bad row instead of an unknown header.
    text = "{oops\n" + jsonl({"request_id": "r1", "account": "acme", "api": "DetectFace",
                              "timestamp": "2020-09-10T00:00:00Z"})
    with pytest.raises(RatecardError, match="first line is not a JSON object"):
        read_text(shipped_rules, tmp_path, text, name="calls.jsonl")
    reader = read_text(shipped_rules, tmp_path, text, name="calls.jsonl", format="jsonl", kind="calls")
    assert [(r.line, r.code) for r in reader.rejected] == [(1, "malformed-json")]
    assert reader.reconciliation.rows_accepted == 1
    # Read as CSV, a JSON file has an unknown header.
    with pytest.raises(RatecardError, match="unrecognised header"):
        read_text(shipped_rules, tmp_path, text, name="calls.jsonl", format="csv")
    with pytest.raises(RatecardError, match="unknown usage format 'xml'"):
        read_text(shipped_rules, tmp_path, text, format="xml")


# -- bad rows --------------------------------------------------------------------------------------

GOOD = "acme,2020-09,DetectFace,5,success"


@pytest.mark.parametrize("row, code, reason, calls", [
    (",2020-09,DetectFace,5,success", "empty-account", "empty account", 5),
    ("  ,2020-09,DetectFace,5,success", "empty-account", "empty account", 5),
    ("acme,2020-09,,5,success", "missing-field", "missing field 'api'", 5),
    ("acme,,DetectFace,5,success", "missing-field", "missing field 'period'", 5),
    ("acme,2020-09,DetectFace,,success", "missing-field", "missing field 'calls'", 0),
    ("acme,2020-09,DetectFace,-5,success", "negative-calls", "must not be negative, got -5", 0),
    ("acme,2020-09,DetectFace,1.5,success", "bad-calls", "whole number, got '1.5'", 0),
    ("acme,2020-09,DetectFace,ten,success", "bad-calls", "whole number, got 'ten'", 0),
    ("acme,2020-09,DetectFace,1e3,success", "bad-calls", "whole number", 0),
    ("acme,2020-13,DetectFace,5,success", "bad-period", "bad period '2020-13'", 5),
    ("acme,2020-9,DetectFace,5,success", "bad-period", "bad period '2020-9'", 5),
    ("acme,September,DetectFace,5,success", "bad-period", "YYYY-MM", 5),
    ("acme,2020-08,DetectFace,5,success", "no-rules", "no price book is in force for period 2020-08", 5),
    ("acme,2020-09,DetectFaces,5,success", "unknown-api", "unknown API 'DetectFaces'", 5),
    ("acme,2020-09,DetectFace,5", "column-count", "expected 5 columns", 0),
    ("acme,2020-09,DetectFace,5,success,extra", "column-count", "got 6", 0),
    ('acme,2020-09,"DetectFace"x,5,success', "malformed-csv", "malformed CSV", 0),
])
def test_each_bad_csv_row_is_rejected_with_file_line_reason_and_raw(shipped_rules, tmp_path, row, code,
                                                                     reason, calls):
    reader = read_text(shipped_rules, tmp_path, AGG_HEADER + GOOD + "\n" + row + "\n" + GOOD + "\n")
    [bad] = reader.rejected
    assert (bad.file, bad.line, bad.code, bad.raw) == ("usage.csv", 3, code, row)
    assert reason in bad.reason
    assert str(bad).startswith("usage.csv:3: ")
    # The rest is still read, and the bad row's calls are accounted for when they can be read.
    r = reader.reconciliation.check()
    assert (r.rows_read, r.rows_accepted, r.rows_rejected) == (3, 2, 1)
    assert (r.calls_accepted, r.calls_rejected) == (10, calls)
    assert usage_of(reader) == {("acme", "2020-09"): (UsageItem("DetectFace", 10, SUCCESS),)}


GOOD_OBJECT = {"account": "acme", "period": "2020-09", "api": "DetectFace", "calls": 5}


@pytest.mark.parametrize("line, code, reason", [
    ('{"account": "acme", "period": "2020-09", "api": "DetectFace", "calls": 5', "malformed-json", "malformed JSON"),
    ("[1, 2]", "malformed-json", "expected an object"),
    (json.dumps({**GOOD_OBJECT, "calls": 1.5}), "bad-calls", "whole number, got '1.5'"),
    (json.dumps({**GOOD_OBJECT, "calls": True}), "bad-calls", "whole number, got 'true'"),
    (json.dumps({**GOOD_OBJECT, "calls": -1}), "negative-calls", "negative"),
    (json.dumps({k: v for k, v in GOOD_OBJECT.items() if k != "api"}), "missing-field", "missing field 'api'"),
    (json.dumps({**GOOD_OBJECT, "account": None}), "missing-field", "missing field 'account'"),
    (json.dumps({**GOOD_OBJECT, "account": ""}), "empty-account", "empty account"),
    (json.dumps({**GOOD_OBJECT, "account": 42}), "bad-field", "account must be text, got 42"),
    (json.dumps({**GOOD_OBJECT, "outcome": 0}), "bad-field", "outcome must be text"),
])
def test_each_bad_jsonl_row_is_rejected(shipped_rules, tmp_path, line, code, reason):
    reader = read_text(shipped_rules, tmp_path, jsonl(GOOD_OBJECT) + "\n" + line + "\n", name="u.jsonl")
    [bad] = reader.rejected
    assert (bad.line, bad.code, bad.raw) == (3, code, line)  # line 2 is blank: lines are physical lines
    assert reason in bad.reason
    reader.reconciliation.check()


@pytest.mark.parametrize("row, code, reason", [
    ("r2,acme,DetectFace,2020-09-10 08:00:00,success", "naive-timestamp", "has no UTC offset"),
    ("r2,acme,DetectFace,2020-09-10,success", "naive-timestamp", "has no UTC offset"),
    ("r2,acme,DetectFace,yesterday,success", "bad-timestamp", "bad timestamp 'yesterday'"),
    ("r2,acme,DetectFace,2020-09-31T00:00:00Z,success", "bad-timestamp", "ISO 8601"),
    ("r2,acme,DetectFace,,success", "missing-field", "missing field 'timestamp'"),
    (",acme,DetectFace,2020-09-10T00:00:00Z,success", "missing-field", "missing field 'request_id'"),
    ("r2,,DetectFace,2020-09-10T00:00:00Z,success", "empty-account", "empty account"),
    ("r2,acme,Nope,2020-09-10T00:00:00Z,success", "unknown-api", "unknown API 'Nope'"),
])
def test_each_bad_call_record_is_rejected_and_counts_one_call(shipped_rules, tmp_path, row, code, reason):
    reader = read_text(shipped_rules, tmp_path, CALLS_HEADER + "r1,acme,DetectFace,2020-09-10T00:00:00Z,success\n"
                       + row + "\n")
    [bad] = reader.rejected
    assert (bad.line, bad.code, bad.raw) == (3, code, row)
    assert reason in bad.reason
    r = reader.reconciliation.check()
    assert (r.rows_read, r.calls_read, r.calls_accepted, r.calls_rejected) == (2, 2, 1, 1)


def test_line_numbers_match_an_editor(shipped_rules, tmp_path):
    text = (AGG_HEADER                                   # 1
            + "\n"                                       # 2 (blank: not a row)
            + '"acme","2020-09","DetectFace","1",""\n'   # 3
            + '"multi\nline",2020-09,Nope,4,\n'          # 4-5: one record, numbered by its first line
            + "acme,2020-09,DetectFace,x,\r\n")          # 6, with a Windows line end
    reader = read_text(shipped_rules, tmp_path, text)
    assert [(r.line, r.raw) for r in reader.rejected] == [(4, '"multi\nline",2020-09,Nope,4,'),
                                                          (6, "acme,2020-09,DetectFace,x,")]
    assert reader.reconciliation.rows_read == 3


@pytest.mark.parametrize("policy, accepted", [("error", False), ("report", True), ("ignore", True)])
def test_unknown_api_is_a_bad_row_only_when_the_rules_say_error(tmp_path, policy, accepted):
    rules = ratecard.load_rules(write_rule_set(tmp_path / "toy", apis=TOY_APIS.replace(
        "unknown_api: error", f"unknown_api: {policy}")))
    reader = read_text(rules, tmp_path, AGG_HEADER + "acme,2024-03,RenderWidget,5,\nacme,2024-03,Mystery,7,\n")
    assert bool(reader.rejected) is not accepted
    if accepted:
        [usage] = reader.accounts()
        bill = rate(rules, usage.items, usage.period)
        assert [(u.api, u.calls) for u in bill.unrated] == [("Mystery", 7)]
    else:
        assert reader.rejected[0].code == "unknown-api" and "apis.yaml" in reader.rejected[0].reason


def test_unknown_api_is_checked_against_the_mapping_in_force_for_the_rows_period(tmp_path):
    later = TOY_APIS.replace("2024-01-01", "2024-06-01").replace("[LookupGadget]", "[LookupGadget, LookupGizmo]")
    rules = ratecard.load_rules(write_rule_set(tmp_path / "toy", apis_later=later))
    reader = read_text(rules, tmp_path, AGG_HEADER + "acme,2024-05,LookupGizmo,1,\nacme,2024-06,LookupGizmo,1,\n")
    assert [(r.line, r.code) for r in reader.rejected] == [(2, "unknown-api")]
    assert list(usage_of(reader)) == [("acme", "2024-06")]


# -- strict mode and rejects file ------------------------------------------------------------------


def test_strict_mode_lists_every_bad_row_with_its_file_and_line(shipped_rules, tmp_path):
    reader = read_text(shipped_rules, tmp_path, AGG_HEADER + GOOD + "\n,2020-09,DetectFace,1,\n"
                       "acme,2020-09,DetectFace,-1,\n")
    with pytest.raises(UsageInvalid) as caught:
        reader.raise_for_rejects()
    assert [(p.location.file, p.location.line, p.code) for p in caught.value.problems] == [
        ("usage.csv", 3, "empty-account"), ("usage.csv", 4, "negative-calls")]
    assert caught.value.lines()[0].startswith("usage.csv:3: empty account")
    assert "2 bad usage row(s)" in str(caught.value)
    read_text(shipped_rules, tmp_path, AGG_HEADER + GOOD + "\n").raise_for_rejects()  # nothing bad: no error


def test_rejects_stream_to_a_csv_file_that_round_trips(shipped_rules, tmp_path):
    bad_row = 'acme,2020-09,"Detect, ""Face""",5,'
    rejects = tmp_path / "rejects.csv"
    with RejectsWriter(rejects) as writer:
        reader = read_text(shipped_rules, tmp_path, AGG_HEADER + GOOD + "\n" + bad_row + "\n", on_reject=writer)
    assert reader.rejected == [] and writer.count == 1  # streamed, not kept
    with rejects.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["file", "row", "reason", "raw"]
    assert rows[1][:2] == ["usage.csv", "3"]
    assert "unknown API 'Detect, \"Face\"'" in rows[1][2] and rows[1][3] == bad_row
    assert reader.reconciliation.rows_rejected == 1


def test_write_rejects_helper_and_unwritable_file(shipped_rules, tmp_path):
    reader = read_text(shipped_rules, tmp_path, AGG_HEADER + ",2020-09,DetectFace,1,\n,2020-09,DetectFace,2,\n")
    out = io.StringIO()
    assert write_rejects(out, reader.rejected) == 2
    assert out.getvalue().splitlines()[1] == ('usage.csv,2,empty account: every row must name the account to bill,'
                                             '",2020-09,DetectFace,1,"')
    with pytest.raises(RatecardError, match="cannot write the rejects file"):
        write_rejects(tmp_path / "no-such-dir" / "rejects.csv", reader.rejected)


# -- reconciliation --------------------------------------------------------------------------------


def test_reconciliation_adds_up_rows_and_calls(shipped_rules, tmp_path):
    reader = read_text(shipped_rules, tmp_path, CALLS_HEADER
                       + "r1,acme,DetectFace,2020-09-10T00:00:00Z,success\n"    # accepted
                       + "r2,acme,DetectFace,2020-10-10T00:00:00Z,success\n"    # out of period
                       + "r1,acme,DetectFace,2020-09-10T00:00:00Z,success\n"    # duplicate
                       + "r3,acme,DetectFace,soon,success\n"                    # rejected
                       + "r4,globex,SearchFaces,2020-09-01T00:00:00+08:00,\n",  # accepted
                       period="2020-09")
    r = reader.reconciliation
    assert r == Reconciliation(rows_read=5, rows_accepted=2, rows_rejected=1, rows_duplicate=1, rows_out_of_period=1,
                               calls_read=5, calls_accepted=2, calls_rejected=1, calls_duplicate=1,
                               calls_out_of_period=1, period="2020-09")
    assert r.check() is r
    assert r.lines() == [
        "rows: 5 read = 2 accepted + 1 rejected + 1 duplicate + 1 out of period 2020-09",
        "calls: 5 read = 2 accepted + 1 rejected + 1 duplicate + 1 out of period 2020-09"]
    assert r.to_dict()["balanced"] is True


def test_an_unbalanced_reconciliation_fails_its_check():
    with pytest.raises(RatecardError, match="does not add up"):
        Reconciliation(rows_read=2, rows_accepted=1, calls_read=3, calls_accepted=3).check()
    with pytest.raises(RatecardError):
        Reconciliation(rows_read=1, rows_accepted=1, calls_read=3, calls_accepted=4).check()


_ROW = st.tuples(
    st.sampled_from(["acme", "globex", "", " "]),
    st.sampled_from(["2020-09", "2020-10", "2020-13", "2020-08"]),
    st.sampled_from(["DetectFace", "CreateGroup", "Nope", ""]),
    st.one_of(st.integers(-5, 10**9).map(str), st.sampled_from(["", "1.5", "x"])),
    st.sampled_from(["", "success", "InvalidParameterValue.NoFaceInPhoto", "Other.Error"]),
)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(_ROW, max_size=30), period=st.sampled_from([None, "2020-09", "2020-10"]))
def test_reconciliation_always_balances_and_matches_the_totals(shipped_rules, rows, period):
    data = (AGG_HEADER + "".join(",".join(r) + "\n" for r in rows)).encode()
    reader = UsageReader(shipped_rules, period=period).read("-", stdin=io.BytesIO(data))
    r = reader.reconciliation.check()
    assert r.rows_read == len(rows)
    assert r.calls_accepted == sum(u.calls for u in reader.accounts())
    assert r.rows_rejected == len(reader.rejected)
    good = [int(c) for a, p, api, c, _ in rows if a.strip() and p in ("2020-09", "2020-10") and api and api != "Nope"
            and c.isdigit() and (period is None or p == period)]
    assert r.calls_accepted == sum(good) and r.rows_accepted == len(good)


# -- duplicates ------------------------------------------------------------------------------------


def test_a_request_id_seen_twice_is_counted_once(shipped_rules, tmp_path):
    first = write(tmp_path, "a.csv", CALLS_HEADER + "r1,acme,DetectFace,2020-09-10T00:00:00Z,success\n"
                  "r1,acme,DetectFace,2020-09-10T00:00:00Z,success\n")
    second = write(tmp_path, "b.jsonl", jsonl({"request_id": "r1", "account": "acme", "api": "DetectFace",
                                               "timestamp": "2020-09-10T00:00:00Z"}))
    reader = read_usage([first, second], shipped_rules)  # ids are remembered across the files of a run
    assert usage_of(reader) == {("acme", "2020-09"): (UsageItem("DetectFace", 1, SUCCESS),)}
    r = reader.reconciliation.check()
    assert (r.rows_read, r.rows_accepted, r.rows_duplicate, r.calls_duplicate) == (3, 1, 2, 2)
    assert reader.rejected == []


def test_a_rejected_row_does_not_claim_its_request_id(shipped_rules, tmp_path):
    # The corrected copy of a bad call is billed (once); a later copy of an out-of-period call is a duplicate.
    reader = read_text(shipped_rules, tmp_path, CALLS_HEADER
                       + "r1,acme,DetectFace,2020-09-10 00:00,success\n"
                       + "r1,acme,DetectFace,2020-09-10T00:00:00Z,success\n"
                       + "r2,acme,DetectFace,2020-10-10T00:00:00Z,success\n"
                       + "r2,acme,DetectFace,2020-09-10T00:00:00Z,success\n", period="2020-09")
    r = reader.reconciliation.check()
    assert (r.rows_rejected, r.rows_accepted, r.rows_out_of_period, r.rows_duplicate) == (1, 1, 1, 1)


# -- time zones ------------------------------------------------------------------------------------


@pytest.mark.parametrize("timestamp, period", [
    ("2020-09-30T15:59:59Z", "2020-09"),
    ("2020-09-30T16:00:00Z", "2020-10"),
    ("2020-09-30T23:30:00Z", "2020-10"),       # the spec's example
    ("2020-09-30T23:59:59+08:00", "2020-09"),
    ("2020-10-01T00:00:00+08:00", "2020-10"),
    ("2020-09-30T12:00:00-04:00", "2020-10"),  # 16:00Z
])
def test_calls_fall_in_the_beijing_month_of_the_shipped_rules(shipped_rules, timestamp, period):
    data = (CALLS_HEADER + f"r1,acme,DetectFace,{timestamp},success\n").encode()
    reader = UsageReader(shipped_rules).read("-", stdin=io.BytesIO(data))
    assert list(usage_of(reader)) == [("acme", period)]


@pytest.mark.parametrize("zone, timestamp, period", [
    ("Europe/Berlin", "2024-02-29T22:59:59Z", "2024-02"),  # 23:59:59 CET
    ("Europe/Berlin", "2024-02-29T23:00:00Z", "2024-03"),
    ("Europe/Berlin", "2024-03-31T20:00:00Z", "2024-03"),  # 22:00 CEST (it is April in Beijing)
    ("Europe/Berlin", "2024-03-31T22:00:00Z", "2024-04"),  # summer time: UTC+2 at the month's end
    ("America/Los_Angeles", "2024-04-01T06:59:59Z", "2024-03"),
    ("America/Los_Angeles", "2024-04-01T07:00:00Z", "2024-04"),
])
def test_the_time_zone_comes_from_the_rules(tmp_path, zone, timestamp, period):
    rules = ratecard.load_rules(write_rule_set(tmp_path / "toy", settlement=TOY_SETTLEMENT.replace(
        "Europe/Berlin", zone)))
    reader = read_text(rules, tmp_path, CALLS_HEADER + f"r1,acme,RenderWidget,{timestamp},success\n")
    assert list(usage_of(reader)) == [("acme", period)]


# -- gzip, standard input --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["usage.csv.gz", "usage.csv"])
def test_gzip_is_detected_by_its_bytes(shipped_rules, tmp_path, name):
    path = tmp_path / name
    path.write_bytes(gzip.compress((AGG_HEADER + GOOD + "\n,2020-09,DetectFace,1,\n").encode()))
    reader = read_usage(path, shipped_rules)
    assert usage_of(reader) == {("acme", "2020-09"): (UsageItem("DetectFace", 5, SUCCESS),)}
    assert [(r.file, r.line) for r in reader.rejected] == [(name, 3)]


def test_a_truncated_gzip_file_is_a_clear_error(shipped_rules, tmp_path):
    path = tmp_path / "usage.csv.gz"
    data = gzip.compress((AGG_HEADER + "".join(f"acme,2020-09,DetectFace,{i},\n" for i in range(5000))).encode())
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RatecardError, match=r"usage\.csv\.gz: cannot read the usage file"):
        read_usage(path, shipped_rules)


@pytest.mark.parametrize("compress", [False, True])
def test_standard_input(shipped_rules, compress):
    data = (CALLS_HEADER + "r1,acme,DetectFace,2020-09-10T00:00:00Z,success\nr2,,DetectFace,x,\n").encode()
    stdin = io.BytesIO(gzip.compress(data) if compress else data)
    reader = read_usage("-", shipped_rules, stdin=stdin)
    assert usage_of(reader) == {("acme", "2020-09"): (UsageItem("DetectFace", 1, SUCCESS),)}
    assert [(r.file, r.line) for r in reader.rejected] == [(STDIN_NAME, 3)]
    assert not stdin.closed  # the caller's stream is the caller's to close


def test_standard_input_must_be_given(shipped_rules):
    with pytest.raises(RatecardError, match="no input stream was given"):
        read_usage("-", shipped_rules)


# -- the period filter -----------------------------------------------------------------------------


def test_the_period_filter_counts_other_periods_as_out_of_period(shipped_rules, tmp_path):
    text = AGG_HEADER + GOOD + "\nacme,2020-10,DetectFace,7,\nacme,2020-10,Nope,1,\nglobex,2020-11,DetectFace,9,\n"
    reader = read_text(shipped_rules, tmp_path, text, period="2020-10")
    assert usage_of(reader) == {("acme", "2020-10"): (UsageItem("DetectFace", 7, None),)}
    r = reader.reconciliation.check()
    assert (r.rows_out_of_period, r.calls_out_of_period, r.rows_rejected) == (2, 14, 1)
    assert read_text(shipped_rules, tmp_path, text).reconciliation.rows_accepted == 3  # no filter: all periods
    with pytest.raises(PeriodError):
        UsageReader(shipped_rules, period="2020-9")


# -- whole-file problems ---------------------------------------------------------------------------


@pytest.mark.parametrize("content, message", [
    (b"", r"usage\.csv: the file is empty"),
    (b"\n  \n", r"usage\.csv: the file is empty"),
    (b"acct,month,api,count\nacme,2020-09,DetectFace,1\n", r"usage\.csv:1: unrecognised header .*missing column"),
    (b"request_id,account,api,time\n", r"usage\.csv:1: unrecognised header .*missing column\(s\) timestamp"),
    (b"account,period,api,calls,calls\n", r"usage\.csv:1: column 'calls' appears twice"),
    (b'{"who": 1}\n', r"usage\.csv:1: unrecognised keys who"),
    (b"{oops\n", r"usage\.csv:1: the first line is not a JSON object"),
    (b"account,period,api,calls\nacme,2020-09,DetectFace,1\nacm\xe9,2020-09,DetectFace,1\n",
     r"usage\.csv:3: the file is not UTF-8 text"),
])
def test_bad_files_are_clear_errors_naming_the_file(shipped_rules, tmp_path, content, message):
    (tmp_path / "usage.csv").write_bytes(content)
    with pytest.raises(RatecardError, match=message):
        read_usage(tmp_path / "usage.csv", shipped_rules)


def test_unreadable_files_are_clear_errors(shipped_rules, tmp_path):
    with pytest.raises(RatecardError, match=r"missing\.csv: cannot read the usage file"):
        read_usage(tmp_path / "missing.csv", shipped_rules)
    with pytest.raises(RatecardError, match="cannot read the usage file"):
        read_usage(tmp_path, shipped_rules)  # a folder


# -- memory ----------------------------------------------------------------------------------------


def _peak(read) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        read()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


_APIS = ["DetectFace", "SearchFaces", "CreateGroup", "VerifyFace"]
_ACCOUNTS = [f"account-{i:03d}" for i in range(50)]


def _usage_file(tmp_path, kind, suffix, rows) -> Path:
    """`rows` rows of the same 50 accounts and 4 APIs (call records: each with its own request id)."""
    def record(i):
        common = {"account": _ACCOUNTS[i % 50], "api": _APIS[i % 4], "outcome": "success"}
        if kind == "calls":
            return {"request_id": f"id-{i:08d}", "timestamp": f"2020-09-{1 + i % 28:02d}T10:00:00Z", **common}
        return {"period": "2020-09", "calls": i, **common}

    records = [record(i) for i in range(rows)]
    if suffix.startswith("csv"):
        text = ",".join(records[0]) + "\n" + "".join(",".join(map(str, r.values())) + "\n" for r in records)
    else:
        text = jsonl(*records)
    path = tmp_path / f"{kind}-{rows}.{suffix}"
    path.write_bytes(gzip.compress(text.encode()) if suffix.endswith(".gz") else text.encode())
    return path


@pytest.mark.parametrize("kind, suffix", [("aggregated", "csv"), ("aggregated", "jsonl.gz"),
                                          ("calls", "jsonl"), ("calls", "csv.gz")])
def test_memory_does_not_grow_with_the_number_of_rows(shipped_rules, tmp_path, kind, suffix):
    small, large = (_usage_file(tmp_path, kind, suffix, rows) for rows in (2_000, 20_000))
    # The engine holds the rows (within its own cap); Python holds one account at a time.
    peaks = [_peak(lambda: list(UsageReader(shipped_rules).read(path).accounts())) for path in (small, large)]
    # Ten times the rows, same accounts and APIs: the peak stays put (a few kB of noise allowed).
    assert peaks[1] < peaks[0] * 1.1 + 16_384, peaks


def test_the_engine_memory_is_capped_and_spills_to_the_spill_directory(shipped_rules, tmp_path):
    path = _usage_file(tmp_path, "calls", "csv", 2_000)
    reader = UsageReader(shipped_rules, memory_limit="64MiB", spill_directory=tmp_path / "spill-here")
    reader.read(path)
    assert reader.reconciliation.rows_accepted == 2_000
    con = reader._con
    # DuckDB gets four fifths of the cap: the process holds more than DuckDB's buffers (see duck.ENGINE_SHARE).
    assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] in ("51.1 MiB", "51.2 MiB", "51 MiB")
    assert str(tmp_path / "spill-here") in con.execute("SELECT current_setting('temp_directory')").fetchone()[0]
    reader.close()
    assert not any((tmp_path / "spill-here").iterdir())  # the scratch folder goes with the reader


def test_clean_files_are_read_in_one_pass_and_bad_rows_need_a_second(shipped_rules):
    clean = read_usage(EXAMPLES / "calls-2020-09-30.jsonl", shipped_rules)
    assert not clean.diagnosed and clean.reconciliation.rows_duplicate == 1
    with_bad_row = read_usage(EXAMPLES / "usage-2020-09.csv", shipped_rules)
    assert with_bad_row.diagnosed and len(with_bad_row.rejected) == 1


def test_a_file_given_twice_is_refused(shipped_rules, tmp_path):
    path = write(tmp_path, "usage.csv", AGG_HEADER + GOOD + "\n")
    (tmp_path / "link.csv").symlink_to(path)
    with pytest.raises(RatecardError, match=r"this usage file is given twice \(also as usage\.csv\)"):
        read_usage([path, tmp_path / "link.csv"], shipped_rules)
    with pytest.raises(RatecardError, match="given twice"):
        read_usage([path, "*.csv"], shipped_rules)  # a glob matching it again
    os.link(path, tmp_path / "hard-link.txt")  # issue 11 item 4: the same file under another name
    with pytest.raises(RatecardError, match=r"hard-link\.txt: this usage file is given twice \(also as usage\.csv\)"):
        read_usage([path, tmp_path / "hard-link.txt"], shipped_rules)


def test_a_glob_reads_every_file_it_matches_once(shipped_rules, tmp_path):
    write(tmp_path, "a.csv", CALLS_HEADER + "r1,acme,DetectFace,2020-09-10T00:00:00Z,success\n")
    write(tmp_path, "b.csv", CALLS_HEADER + "r1,acme,DetectFace,2020-09-10T00:00:00Z,success\n"
          "r2,acme,DetectFace,2020-09-10T00:00:00Z,success\n")
    reader = read_usage("*.csv", shipped_rules)
    assert [s.name for s in reader.sources] == ["a.csv", "b.csv"]
    r = reader.reconciliation
    assert (r.rows_read, r.rows_accepted, r.rows_duplicate) == (3, 2, 1)
    with pytest.raises(RatecardError, match=r"nothing\*\.csv: no usage file matches"):
        read_usage("nothing*.csv", shipped_rules)


def test_parquet_call_records_and_pandas_style_whole_numbers(shipped_rules, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    from datetime import datetime, timezone

    moments = [datetime(2020, 9, 30, 15, 59, 59, tzinfo=timezone.utc), datetime(2020, 9, 30, 16, 0, tzinfo=timezone.utc)]
    calls = pa.table({"request_id": ["r1", "r2"], "account": ["acme", "acme"], "api": ["DetectFace"] * 2,
                      "timestamp": pa.array(moments, pa.timestamp("us", tz="UTC")), "error_code": [None, "X.Y"]})
    pq.write_table(calls, tmp_path / "calls.parquet")
    reader = read_usage(tmp_path / "calls.parquet", shipped_rules)
    assert usage_of(reader) == {("acme", "2020-09"): (UsageItem("DetectFace", 1, SUCCESS),),
                                ("acme", "2020-10"): (UsageItem("DetectFace", 1, "X.Y"),)}
    assert not reader.diagnosed
    agg = pa.table({"account": ["acme", "acme"], "period": ["2020-09"] * 2, "api": ["DetectFace", "SearchFaces"],
                    "calls": pa.array([1000.0, 1000.5], pa.float64())})
    pq.write_table(agg, tmp_path / "agg.parquet")
    reader = read_usage(tmp_path / "agg.parquet", shipped_rules)
    assert usage_of(reader) == {("acme", "2020-09"): (UsageItem("DetectFace", 1000, None),)}
    [bad] = reader.rejected
    assert (bad.file, bad.line, bad.code, bad.reason) == ("agg.parquet", 2, "bad-calls",
                                                         "calls must be a whole number, got '1000.5'")
    naive = pa.table({"request_id": ["r1"], "account": ["acme"], "api": ["DetectFace"],
                      "timestamp": pa.array([datetime(2020, 9, 1)], pa.timestamp("us"))})
    pq.write_table(naive, tmp_path / "naive.parquet")
    with pytest.raises(RatecardError, match=r"naive\.parquet: column timestamp is a TIMESTAMP without a time zone"):
        read_usage(tmp_path / "naive.parquet", shipped_rules)


def test_deep_json_nesting_and_oversize_rows_are_bad_rows(shipped_rules, tmp_path):
    from ratecard.usage.files import MAX_ROW_BYTES

    deep = '{"account": "acme", "period": "2020-09", "api": "DetectFace", "calls": 1, "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    huge = json.dumps({**GOOD_OBJECT, "note": "x" * (MAX_ROW_BYTES + 10)})
    reader = read_text(shipped_rules, tmp_path, jsonl(GOOD_OBJECT) + deep + "\n" + huge + "\n" + jsonl(GOOD_OBJECT),
                       name="u.jsonl")
    assert [(r.line, r.code) for r in reader.rejected] == [(2, "malformed-json"), (3, "oversize-row")]
    assert "nested too deeply" in reader.rejected[0].reason
    assert reader.reconciliation.check().rows_accepted == 2


# -- the example data ------------------------------------------------------------------------------


def test_the_example_month_covers_what_its_readme_claims(shipped_rules):
    reader = read_usage(EXAMPLES / "usage-2020-09.csv", shipped_rules, period="2020-09")
    [unknown] = reader.rejected
    assert unknown.code == "unknown-api" and "DetectLiveFaceAccurate" in unknown.reason
    reader.reconciliation.check()
    bills = [rate(shipped_rules, u.items, u.period, account=u.account) for u in reader.accounts()]
    assert 11 <= len(bills) <= 14
    book, mapping, _ = shipped_rules.in_force("2020-09")
    lines = [line for bill in bills for line in bill.lines]
    assert {line.category for line in lines} == set(book.categories)
    bounds = {t.up_to for cat in book.categories.values() for t in cat.tiers if t.up_to}
    assert {line.calls for line in lines} >= {b + d for b in bounds for d in (-1, 0, 1)}
    used = {(item.api, item.outcome) for u in reader.accounts() for item in u.items}
    assert {api for api, _ in used} & {a.api for a in mapping.apis.values() if not a.billable}
    outcomes = {o for _, o in used}
    assert outcomes & mapping.billable_error_codes and None in outcomes
    assert outcomes - mapping.billable_error_codes - {SUCCESS, None}  # a free error code


def test_the_example_calls_cross_the_beijing_month_boundary_with_one_duplicate(shipped_rules):
    reader = read_usage(EXAMPLES / "calls-2020-09-30.jsonl", shipped_rules)
    r = reader.reconciliation.check()
    assert (r.rows_duplicate, r.rows_rejected) == (1, 0)
    calls = Counter()
    for u in reader.accounts():
        calls[u.period] += u.calls
    assert calls == {"2020-09": 4, "2020-10": 5}
    october = read_usage(EXAMPLES / "calls-2020-09-30.jsonl", shipped_rules, period="2020-10").reconciliation
    assert (october.rows_accepted, october.rows_out_of_period, october.rows_duplicate) == (5, 4, 1)


@pytest.mark.parametrize("url", ["s3a://bucket/calls/2020-09.csv", "hdfs://namenode/logs/*.parquet",
                                 "file:///tmp/calls.csv"])
def test_a_url_on_the_duckdb_engine_is_refused_saying_what_to_do(shipped_rules, capsys, url):
    # issue 10: "s3a://bucket/x.csv" was taken for a local path and said "s3a:/bucket/x.csv: No such file".
    # Spark reads URLs (tests/test_usage_spark.py); the DuckDB engine reads local or mounted files.
    from ratecard.cli import main

    code = main(["bill", "--usage", url, "--period", "2020-09"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert err.startswith(f"{url}: a URL is read with --engine spark") and "ratecard usage --sql --dialect spark" in err


@pytest.mark.parametrize("blank", ["   ", "\t", " \t \r", "  \r"])
def test_a_line_of_only_spaces_is_skipped_like_a_blank_line(shipped_rules, tmp_path, blank):
    # issue 11 item 18: blank lines are skipped (files.py, README); one holding spaces or a tab was a
    # bad row. Neither kind of line is a row: the reconciliation counts neither as read.
    text = AGG_HEADER + GOOD + "\n" + blank + "\n\n" + GOOD.replace(",5,", ",7,") + "\n" + blank + "\n"
    reader = read_text(shipped_rules, tmp_path, text)
    assert list(reader.rejected) == []
    r = reader.reconciliation.check()
    assert (r.rows_read, r.rows_accepted, r.rows_rejected, r.calls_accepted) == (2, 2, 0, 12)
    calls = ('{"request_id":"r1","account":"acme","api":"DetectFace","timestamp":"2020-09-10T00:00:00Z"}\n'
             + blank + '\n{"request_id":"r2","account":"acme","api":"DetectFace","timestamp":"2020-09-10T00:00:00Z"}\n')
    reader = read_text(shipped_rules, tmp_path, calls, name="calls.jsonl")
    assert list(reader.rejected) == [] and reader.reconciliation.check().rows_read == 2


def test_a_quote_left_open_rejects_every_line_it_swallows_and_their_calls(shipped_rules, tmp_path):
    # issue 11 item 1: the unclosed quote on line 3 read lines 4 and 5 into one bad record, so the
    # reconciliation said 2 rows read of 4, and the 9,000,007 calls of line 4 were counted nowhere.
    text = (AGG_HEADER + "acme,2020-09,DetectFace,10,\n\"acme,2020-09,DetectFace,5,\n"
            "acme,2020-09,DetectFace,9000007,\nacme,2020-09,DetectFace,3,\n")
    reader = read_text(shipped_rules, tmp_path, text)
    rejected = list(reader.rejected)
    assert [(r.line, r.raw) for r in rejected] == [(3, '"acme,2020-09,DetectFace,5,'),
                                                  (4, "acme,2020-09,DetectFace,9000007,"),
                                                  (5, "acme,2020-09,DetectFace,3,")]
    assert "runs on from line 3 to line 5" in rejected[0].reason
    assert all("starts on line 3" in r.reason for r in rejected[1:])
    r = reader.reconciliation.check()
    assert (r.rows_read, r.rows_accepted, r.rows_rejected) == (4, 1, 3)  # every physical row
    assert (r.calls_read, r.calls_accepted, r.calls_rejected) == (9_000_020, 10, 9_000_010)


def test_a_file_that_is_not_line_structured_stops_with_an_error_naming_it(shipped_rules, tmp_path, monkeypatch):
    # issue 11 item 13: `--usage /dev/zero` read on until memory ran out. A file whose first line is
    # already past a row's length is refused at once; one whose later line runs on without a break
    # past MAX_LINE_BYTES (4 GiB; lowered here) stops there, instead of being skipped to the end.
    import ratecard.usage.files as files

    zeros = tmp_path / "zeros.csv"
    zeros.write_bytes(b"\0" * (3 * files.MAX_ROW_BYTES))
    with pytest.raises(RatecardError, match=r"zeros\.csv:1: the line runs on past 1,048,576 bytes without a line "
                                            r"break, so the file is not line-structured"):
        read_usage(zeros, shipped_rules)
    monkeypatch.setattr(files, "MAX_LINE_BYTES", 8 * files.MAX_ROW_BYTES)
    runaway = tmp_path / "runaway.csv"
    with runaway.open("wb") as out:
        out.write((AGG_HEADER + GOOD + "\n").encode())
        out.write(b"acme,2020-09," + b"x" * (10 * files.MAX_ROW_BYTES))
    with pytest.raises(RatecardError, match=r"runaway\.csv:3: the line runs on past 8,388,608 bytes"):
        read_usage(runaway, shipped_rules)
    # A long line within the bound is one bad row, as before.
    monkeypatch.setattr(files, "MAX_LINE_BYTES", 16 * files.MAX_ROW_BYTES)
    reader = read_usage(runaway, shipped_rules)
    assert [(r.line, r.code) for r in reader.rejected] == [(3, "oversize-row")]


def test_usage_from_dev_zero_is_refused_quickly_with_a_clear_error(tmp_path):
    # issue 11 item 13: `--usage /dev/zero` ended in MemoryError (or hung). A timeout keeps a hang
    # from stalling the suite: it fails the test instead.
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "ratecard", "bill", "--usage", "/dev/zero", "--rules",
                           str(ROOT / "rules" / "face-recognition")], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("/dev/zero:1: the line runs on past 1,048,576 bytes without a line break")


def test_standard_input_that_is_not_line_structured_is_refused_while_it_is_copied(tmp_path, monkeypatch):
    # `--usage - < /dev/zero` copied standard input to a scratch file with no bound, filling the disk
    # before the reader could refuse it. The copy checks the lines as they pass.
    import subprocess
    import sys

    import ratecard.usage.files as files

    with open("/dev/zero", "rb") as zero:
        done = subprocess.run([sys.executable, "-m", "ratecard", "bill", "--usage", "-", "--rules",
                               str(ROOT / "rules" / "face-recognition")], stdin=zero, capture_output=True, text=True,
                              timeout=60, cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("<stdin>:1: the line runs on past 1,048,576 bytes without a line break")
    # A later line running on is stopped too (the bound lowered here), and good text is copied whole.
    monkeypatch.setattr(files, "MAX_LINE_BYTES", 3 * files.MAX_ROW_BYTES)
    runaway = io.BytesIO(AGG_HEADER.encode() + b"a,2020-09,X,1\n" + b"x" * (4 * files.MAX_ROW_BYTES))
    with pytest.raises(RatecardError, match=r"<stdin>:3: the line runs on past 3,145,728 bytes"):
        files.copy_stdin(runaway, str(tmp_path))
    text = (AGG_HEADER + GOOD + "\n") * 200_000
    copied = files.copy_stdin(io.BytesIO(text.encode()), str(tmp_path))
    assert Path(copied).read_text(encoding="utf-8") == text


def test_a_named_pipe_is_read_once_like_standard_input(shipped_rules, tmp_path):
    # `--usage <(zcat logs.gz)` or a FIFO: sniffing, the query and the row checks each open the
    # input, and a pipe gives its bytes once ("File or stream is not seekable"). It is copied first.
    import threading

    fifo = tmp_path / "calls.fifo"
    os.mkfifo(fifo)
    text = AGG_HEADER + GOOD + "\n" + GOOD.replace(",5,", ",x,") + "\n"

    def feed():
        with open(fifo, "w", encoding="utf-8") as out:
            out.write(text)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    reader = read_usage(fifo, shipped_rules)
    writer.join(10)
    assert [(Path(r.file).name, r.line) for r in reader.rejected] == [("calls.fifo", 3)]  # the pipe's own name
    assert reader.reconciliation.check().calls_accepted == 5


def test_copies_of_a_request_id_naming_two_accounts_are_rejected_not_billed_to_the_first(shipped_rules, tmp_path):
    # A request id is one call of one account: a later copy naming another account was counted as a
    # duplicate, so the call went to whichever account came first, without a word.
    text = ("request_id,account,api,timestamp,outcome\n"
            "r1,acme,DetectFace,2020-09-10T00:00:00Z,success\n"
            "r1,globex,DetectFace,2020-09-10T00:00:00Z,success\n"  # the conflict
            "r1,acme,DetectFace,2020-09-10T00:00:00Z,success\n"  # a true copy
            "r1,globex,DetectFace,soon,success\n"  # wrong in itself: a duplicate, whatever else
            "r2,globex,DetectFace,2020-09-11T00:00:00Z,success\n")
    reader = read_text(shipped_rules, tmp_path, text, name="calls.csv")
    [conflict] = reader.rejected
    assert (conflict.line, conflict.code, conflict.account, conflict.also) == (3, "conflicting-request-id", "globex",
                                                                              ("acme",))
    assert "request id 'r1' was counted for account 'acme' (" in conflict.reason and "calls.csv:2)" in conflict.reason
    assert conflict.raw == "r1,globex,DetectFace,2020-09-10T00:00:00Z,success"
    r = reader.reconciliation.check()
    assert (r.rows_accepted, r.rows_rejected, r.rows_duplicate) == (2, 1, 2)


def test_the_same_content_under_two_names_is_warned_about_on_bill_and_refused_on_settle(shipped_rules, tmp_path,
                                                                                        capsys):
    # issue 11 item 4: a copy of the month's file billed 100,207.60 instead of 61,503.80 without a word,
    # and `settle` would have recorded it for good. A hard link is refused by device and inode; a copy
    # is found by its content (sha256 of files of equal size).
    from ratecard.cli import main
    from ratecard.ledger import Ledger

    text = AGG_HEADER + GOOD + "\n"
    a, b = write(tmp_path, "a.csv", text), write(tmp_path, "copy.csv", text)
    other = write(tmp_path, "other.csv", AGG_HEADER + GOOD.replace("5", "6") + "\n")  # same size, not a copy
    reader = read_usage([a, other, b], shipped_rules)
    [(source, first, digest)] = reader.copies
    assert (source.name, first) == ("copy.csv", "a.csv") and len(digest) == 64
    assert reader.warnings == [f"copy.csv has the same content as a.csv (sha256 {digest[:12]}…): its usage is "
                               "counted twice; if it is a copy, give each file once"]
    capsys.readouterr()
    assert main(["bill", "--usage", str(a), "--usage", str(b), "--format", "jsonl"]) == 0
    assert "warning: copy.csv has the same content as a.csv" in capsys.readouterr().err

    db = tmp_path / "ledger.db"
    with Ledger(db, create=True) as ledger:
        from datetime import datetime, timezone

        ledger.create_account("acme", "Acme", "USD", datetime(2020, 9, 1, tzinfo=timezone.utc))
        ledger.activate("acme", "face-recognition", "v1", datetime(2020, 9, 1, tzinfo=timezone.utc))
    settle = ["settle", "--db", str(db), "--period", "2020-09", "--rules", str(ROOT / "rules" / "face-recognition"),
              "--at", "2020-10-02T09:00:00+08:00", "--usage", str(a), "--usage", str(b)]
    assert main(settle) == 1
    err = capsys.readouterr().err
    assert "copy.csv: the same content as a.csv: settling both would record its usage twice" in err
    assert "--allow-identical-files" in err
    with Ledger(db, readonly=True) as ledger:
        assert ledger.bills() == []
    assert main(settle + ["--allow-identical-files", "--format", "json"]) == 0
    with Ledger(db, readonly=True) as ledger:
        [bill] = ledger.bills()
        assert bill.account == "acme"
    # Call records given twice are counted once by request id: said, not refused.
    calls = write(tmp_path, "calls.csv", "request_id,account,api,timestamp\nr1,acme,DetectFace,2020-09-10T00:00:00Z\n")
    again = write(tmp_path, "calls-again.csv", calls.read_text(encoding="utf-8"))
    reader = read_usage([calls, again], shipped_rules)
    assert "calls-again.csv has the same content as calls.csv" in reader.warnings[0]
    assert "counted once (by request id), so this changes no money" in reader.warnings[0]
    assert reader.reconciliation.check().rows_duplicate == 1

