"""The compiled-query reader against the Python reader it replaced (tests/oracle): the same accepted
usage, the same bad rows with the same reasons, the same reconciliation and byte-identical bills, on
every usage file the repository ships and on generated inputs (bad rows, duplicates, time-zone
edges, gzip, several files)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ratecard
from ratecard.billrun import render_bill
from ratecard.rating import rate
from ratecard.usage import read_usage

from conftest import ROOT, TOY_SETTLEMENT, write_rule_set
from oracle import usage_reader as oracle

EXAMPLES = ROOT / "examples"


def _outcome_of(reader, rules):
    accounts = [(u.account, u.period, tuple((i.api, i.calls, i.outcome) for i in u.items)) for u in reader.accounts()]
    bills = []
    for u in reader.accounts():
        try:
            bill = rate(rules, u.items, u.period, account=u.account)
        except ratecard.RatecardError as exc:  # e.g. no rules in force when nothing filtered the period
            bills.append(f"error: {exc}")
            continue
        bills.append(render_bill(bill, rules, "jsonl"))
    return accounts, bills


def compare(rules, paths, period=None, **kw):
    """Both readers on the same files; every observable result must be equal."""
    old_rejected, new_rejected = [], []
    try:
        old = oracle.read_usage(paths, rules, period=period, on_reject=old_rejected.append, **kw)
    except ratecard.RatecardError as exc:
        with pytest.raises(ratecard.RatecardError) as caught:
            read_usage(paths, rules, period=period, on_reject=new_rejected.append, **kw)
        assert str(caught.value) == str(exc)
        return None
    new = read_usage(paths, rules, period=period, on_reject=new_rejected.append, **kw)
    assert [(r.file, r.line, r.reason, r.raw, r.code, r.account, r.also) for r in new_rejected] == \
        [(r.file, r.line, r.reason, r.raw, r.code, r.account, r.also) for r in old_rejected]
    old_r, new_r = old.reconciliation.to_dict(), new.reconciliation.to_dict()
    assert new_r == old_r
    assert new.reconciliation.balanced
    old_accounts, old_bills = _outcome_of(old, rules)
    new_accounts, new_bills = _outcome_of(new, rules)
    assert new_accounts == old_accounts
    assert new_bills == old_bills  # byte-identical documents
    assert new.account_periods == len(old_accounts)
    new.close()
    return new_r


# -- the shipped usage files -------------------------------------------------------------------------


@pytest.mark.parametrize("name, rules_dir", [("usage-2020-09.csv", "face-recognition"),
                                              ("calls-2020-09-30.jsonl", "face-recognition"),
                                              ("usage-cn-2020-09.csv", "face-recognition-cn")])
@pytest.mark.parametrize("period", [None, "2020-09", "2020-10"])
def test_the_shipped_examples_read_the_same(name, rules_dir, period):
    rules = ratecard.load_rules(ROOT / "rules" / rules_dir)
    counts = compare(rules, [EXAMPLES / name], period)
    assert counts["rows_read"] > 0


def test_the_shipped_examples_together_and_gzipped(shipped_rules, tmp_path):
    gz = tmp_path / "calls.jsonl.gz"
    gz.write_bytes(gzip.compress((EXAMPLES / "calls-2020-09-30.jsonl").read_bytes()))
    csv_copy = tmp_path / "usage.csv"
    csv_copy.write_bytes((EXAMPLES / "usage-2020-09.csv").read_bytes())
    compare(shipped_rules, [csv_copy, gz], "2020-10")
    compare(shipped_rules, [csv_copy, gz], None)


# -- the inputs the reader's own tests use -----------------------------------------------------------


AGG = "account,period,api,calls,outcome\n"
CALLS = "request_id,account,api,timestamp,outcome\n"
GOOD = "acme,2020-09,DetectFace,5,success\n"

SNIPPETS = [
    AGG + GOOD + ",2020-09,DetectFace,5,success\n  ,2020-09,DetectFace,5,success\nacme,2020-09,,5,success\n"
    "acme,,DetectFace,5,success\nacme,2020-09,DetectFace,,success\nacme,2020-09,DetectFace,-5,success\n"
    "acme,2020-09,DetectFace,1.5,success\nacme,2020-09,DetectFace,ten,success\nacme,2020-09,DetectFace,1e3,\n"
    "acme,2020-13,DetectFace,5,success\nacme,2020-9,DetectFace,5,\nacme,September,DetectFace,5,\n"
    "acme,2020-08,DetectFace,5,\nacme,2020-09,DetectFaces,5,\nacme,2020-09,DetectFace,5\n"
    "acme,2020-09,DetectFace,5,success,extra\nacme,2020-09,\"DetectFace\"x,5,success\n" + GOOD,
    AGG + "\n\"acme\",\"2020-09\",\"DetectFace\",\"1\",\"\"\n\"multi\nline\",2020-09,Nope,4,\nacme,2020-09,DetectFace,x,\r\n",
    "\ufeff Account , PERIOD ,api,Calls,region\nacme,2020-09,DetectFace,1,eu\n",
    AGG + GOOD + "   \n\t\n \t \r\n\n" + GOOD + "  \r\n",  # lines of only spaces: skipped (issue 11 item 18)
    # A quote not closed where it should be swallows the lines after it (issue 11 item 1): to the end,
    # or up to a later quote, the broken record then failing mid-file.
    AGG + GOOD + "\n\"acme,2020-09,DetectFace,5,\nacme,2020-09,DetectFace,9000007,\n\nacme,2020-09,DetectFace,3,\n",
    AGG + "\"acme,2020-09,DetectFace,5,\nacme,2020-09,DetectFace,7,\"x\n" + GOOD + "\n",
    CALLS + "r1,acme,DetectFace,2020-09-10T00:00:00Z,\"success\nr2,acme,DetectFace,2020-09-10T00:00:00Z,success\n",
    AGG + "acme,2020-09,DetectFace,1000.0,\nacme,2020-09,DetectFace,1000.5,\n acme ,2020-09, DetectFace ,7, SUCCESS \n",
    CALLS + "r1,acme,DetectFace,2020-09-10T00:00:00Z,success\nr2,acme,DetectFace,2020-10-10T00:00:00Z,success\n"
    "r1,acme,DetectFace,2020-09-10T00:00:00Z,success\nr3,acme,DetectFace,soon,success\n"
    "r4,globex,SearchFaces,2020-09-01T00:00:00+08:00,\n",
    CALLS + "r1,acme,DetectFace,2020-09-10 00:00,success\nr1,acme,DetectFace,2020-09-10T00:00:00Z,success\n"
    "r2,acme,DetectFace,2020-10-10T00:00:00Z,success\nr2,acme,DetectFace,2020-09-10T00:00:00Z,success\n",
    CALLS + "r2,acme,DetectFace,2020-09-10 08:00:00,success\nr3,acme,DetectFace,2020-09-10,success\n"
    "r4,acme,DetectFace,2020-09-31T00:00:00Z,\nr5,acme,DetectFace,,\n,acme,DetectFace,2020-09-10T00:00:00Z,\n"
    "r6,,DetectFace,2020-09-10T00:00:00Z,\nr7,acme,Nope,2020-09-10T00:00:00Z,\n r8 ,acme,DetectFace,2020-09-30T16:00:00Z,x\n"
    "r8,acme,DetectFace,2020-09-30T16:00:00Z,x\nr9,acme,DetectFace,2020-09-30T15:59:59.999999Z,\n",
    "request_id,account,api,timestamp,error_code\nr1,acme,DetectFace,2020-09-10T00:00:00Z,\n"
    "r2,acme,DetectFace,2020-09-10T00:00:00Z,InvalidParameterValue.NoFaceInPhoto\nr3,acme,DetectFace,2020-09-10T00:00:00Z, \n",
    "".join(json.dumps(o) + "\n" for o in [
        {"account": "acme", "period": "2020-09", "api": "DetectFace", "calls": 5},
        {"account": "acme", "period": "2020-09", "api": "DetectFace", "calls": 1.5},
        {"account": "acme", "period": "2020-09", "api": "DetectFace", "calls": 2.0},
        {"account": "acme", "period": "2020-09", "api": "DetectFace", "calls": True},
        {"account": "acme", "period": "2020-09", "api": "DetectFace", "calls": -1},
        {"account": "acme", "period": "2020-09", "calls": 5},
        {"account": None, "period": "2020-09", "api": "DetectFace", "calls": 5},
        {"account": "", "period": "2020-09", "api": "DetectFace", "calls": 5},
        {"account": 42, "period": "2020-09", "api": "DetectFace", "calls": 5},
        {"account": "acme", "period": "2020-09", "api": "DetectFace", "calls": 5, "outcome": 0},
        {"account": "acme", "period": "2020-09", "api": "DetectFace", "calls": "7", "outcome": None},
        [1, 2]]) + '{"account": "acme", "period": "2020-09"\n{"account": "a", "account": "b", "period": "2020-09", '
    '"api": "DetectFace", "calls": 1}\n',
    "".join(json.dumps(o) + "\n" for o in [
        {"request_id": "r1", "account": "acme", "api": "DetectFace", "timestamp": "2020-09-10T00:00:00Z"},
        {"request_id": "r2", "account": "acme", "api": "DetectFace", "timestamp": "2020-09-10T00:00:00Z",
         "error_code": None},
        {"request_id": "r3", "account": "acme", "api": "DetectFace", "timestamp": "2020-09-10T00:00:00Z",
         "error_code": "FailedOperation.ImageDecodeFailed"},
        {"request_id": 4, "account": "acme", "api": "DetectFace", "timestamp": "2020-09-10T00:00:00Z"},
        {"request_id": "r1", "account": "acme", "api": "DetectFace", "timestamp": "2020-09-10T00:00:00Z"}]),
    # Issue 14's everyday inputs: other separators, counts with separators, Unix times, a JSON array.
    AGG.replace(",", ";") + "acme;2020-09;DetectFace;5;success\nacme;2020-09;DetectFace;1,000;\n"
    "acme;2020-09;DetectFace;1_000;\n\"a;b\";2020-09;DetectFace;2;\nacme,2020-09,DetectFace,5,\n"
    "acme;2020-09;DetectFace;1.000;\nacme;2020-09;Nope;1,5;\n",
    AGG.replace(",", "\t") + "acme\t2020-09\tDetectFace\t5\tsuccess\nacme\t2020-09\tDetectFace\t\"1,000\"\t\n",
    AGG + 'acme,2020-09,DetectFace,"1,000",\nacme,2020-09,DetectFace,"1,5",\nacme,2020-09,DetectFace,5k,\n'
    "acme,2020-09,DetectFace,1.5M,\nacme,2020-09,DetectFace,10m,\nacme,2020-09,DetectFace,1.000,\n"
    'acme,2020-09,DetectFace,"12,34",\nacme,2020-09,Nope,"2,000",\nacme,2020-09,DetectFace,7.000000,\n',
    CALLS + "r1,acme,DetectFace,1601481599,success\nr2,acme,DetectFace,1601481600,\nr3,acme,DetectFace,1601481599999,\n"
    "r4,acme,DetectFace,1601481600000,\nr5,acme,DetectFace,20200930,\nr6,acme,DetectFace,16014816000,\n"
    "r7,acme,DetectFace,999999999,\nr8,acme,DetectFace, 1601481600,\nr1,acme,DetectFace,1601481599,success\n",
    "request_id;account;api;timestamp;error_code\nr1;acme;DetectFace;1601481599000;\nr2;acme;DetectFace;1601481599;x\n",
    '\n[\n {"account": "acme", "period": "2020-09", "api": "DetectFace", "calls": 5},\n'
    ' {"account": "acme",\n  "period": "2020-09", "api": "Nope", "calls": "1,000"},\n'
    ' {"account": "acme", "period": "2020-09", "api": "DetectFace", "calls": -1}, [1], "x",\n'
    ' {"account": "a", "account": "b", "period": "2020-09", "api": "DetectFace", "calls": 1}]\n',
    '[{"request_id": "r1", "account": "acme", "api": "DetectFace", "timestamp": 1601481600},\n'
    ' {"request_id": "r2", "account": "acme", "api": "DetectFace", "timestamp": 1601481599999},\n'
    ' {"request_id": "r3", "account": "acme", "api": "DetectFace", "timestamp": -5},\n'
    ' {"request_id": "r4", "account": "acme", "api": "DetectFace", "timestamp": "1601481600"}]',
]


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
@pytest.mark.parametrize("period", [None, "2020-09"])
def test_the_readers_own_test_inputs_read_the_same(shipped_rules, tmp_path, monkeypatch, index, period):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / ("usage.jsonl" if SNIPPETS[index].startswith("{") else "usage.csv")
    path.write_text(SNIPPETS[index], encoding="utf-8")
    compare(shipped_rules, [Path(path.name)], period)


@pytest.mark.parametrize("content", [b"account;period,api;calls\n", b"[", b"[]", b'[{"account": "a"} x]',
                                     b'[{"a": 1},\n{"b"\n]', b'[{"account": "a"}] tail', b"[\xff]", b"acct,month,api,count\nacme,2020-09,DetectFace,1\n",
                                     b"account,period,api,calls,calls\n", b'{"who": 1}\n', b"{oops\n",
                                     b"account,period,api,calls\nacme,2020-09,DetectFace,1\nacm\xe9,2020-09,X,1\n"])
def test_whole_file_problems_are_the_same_errors(shipped_rules, tmp_path, monkeypatch, content):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "usage.csv").write_bytes(content)
    compare(shipped_rules, [Path("usage.csv")])


# -- generated inputs -----------------------------------------------------------------------------------

_IDS = st.sampled_from([f"r{i}" for i in range(12)] + ["", " r1 ", "r2\t"])
_ACCOUNTS = st.sampled_from(["acme", "globex", "", " ", " acme", "a\u0001b", "ünïcode", "x,y"])
_APIS = st.sampled_from(["DetectFace", "CreateGroup", "SearchFaces", "DetectLiveFaceAccurate", "Nope", ""])
_MOMENTS = st.sampled_from([
    "2020-09-30T15:59:59Z", "2020-09-30T16:00:00Z", "2020-09-30T23:59:59+08:00", "2020-10-01T00:00:00+08:00",
    "2020-09-30T12:00:00-04:00", "2020-08-31T16:00:00Z", "2020-08-31T15:59:59.5Z", "2022-07-31T16:00:00Z",
    "2020-09-15 10:00:00+0800", "2020-09-15T10:00:00+08", "2020-09-15T10:00Z", "2020-09-15T10:00:00",
    "2020-09-31T00:00:00Z", "soon", "", "2020-09-15T10:00:00,5+08:00", "20200915T100000Z", "0001-01-01T00:00:00Z"])
_OUTCOMES = st.sampled_from(["", "success", "SUCCESS", "InvalidParameterValue.NoFaceInPhoto", "Other.Error", " x "])
_CALLS = st.one_of(st.integers(-3, 4_000_000).map(str), st.sampled_from(["", "1.5", "7.0", "x", "+5", " 9 "]))
_PERIODS = st.sampled_from(["2020-09", "2020-10", "2020-08", "2020-13", "2022-08", " 2020-09", ""])


def _csv_field(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text


def _file(tmp_path, name, header, rows, fmt, compress):
    if fmt == "csv":
        text = ",".join(header) + "\n" + "".join(",".join(_csv_field(v) for v in r) + "\n" for r in rows)
    else:
        text = "".join(json.dumps(dict(zip(header, r))) + "\n" for r in rows) or "\n"
    data = text.encode("utf-8")
    path = tmp_path / name
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    return Path(name)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(_IDS, _ACCOUNTS, _APIS, _MOMENTS, _OUTCOMES), min_size=1, max_size=25),
       split=st.integers(0, 25), fmt=st.sampled_from(["csv", "jsonl"]), compress=st.booleans(),
       column=st.sampled_from(["outcome", "error_code"]), period=st.sampled_from([None, "2020-09", "2020-10"]))
def test_generated_call_records_read_the_same(shipped_rules, tmp_path_factory, rows, split, fmt, compress, column,
                                              period):
    tmp = tmp_path_factory.mktemp("calls")
    header = ("request_id", "account", "api", "timestamp", column)
    if fmt == "jsonl" and not rows[0][0].strip():
        rows = [("r0", *rows[0][1:]), *rows[1:]]  # the first line names the kind
    files = [_file(tmp, f"a.{fmt}", header, rows[:split] or rows, fmt, compress)]
    if rows[split:] and split:
        files.append(_file(tmp, f"b.{fmt}", header, rows[split:], fmt, not compress))
    with _chdir(tmp):
        compare(shipped_rules, files, period)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(_ACCOUNTS, _PERIODS, _APIS, _CALLS, _OUTCOMES), min_size=1, max_size=25),
       fmt=st.sampled_from(["csv", "jsonl"]), compress=st.booleans(),
       period=st.sampled_from([None, "2020-09"]))
def test_generated_aggregated_usage_reads_the_same(shipped_rules, tmp_path_factory, rows, fmt, compress, period):
    tmp = tmp_path_factory.mktemp("agg")
    header = ("account", "period", "api", "calls", "outcome")
    with _chdir(tmp):
        compare(shipped_rules, [_file(tmp, f"u.{fmt}", header, rows, fmt, compress)], period)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(moments=st.lists(st.datetimes(min_value=__import__("datetime").datetime(2024, 2, 28),
                                     max_value=__import__("datetime").datetime(2024, 4, 2)), min_size=1, max_size=20),
       zone=st.sampled_from(["Europe/Berlin", "America/Los_Angeles", "Asia/Kolkata", "Pacific/Chatham"]))
def test_generated_time_zone_edges_read_the_same(tmp_path_factory, moments, zone):
    tmp = tmp_path_factory.mktemp("tz")
    rules = ratecard.load_rules(write_rule_set(tmp / "toy", settlement=TOY_SETTLEMENT.replace("Europe/Berlin", zone)))
    rows = [(f"r{i}", "acme", "RenderWidget", m.strftime("%Y-%m-%dT%H:%M:%SZ"), "success") for i, m in enumerate(moments)]
    with _chdir(tmp):
        compare(rules, [_file(tmp, "c.csv", ("request_id", "account", "api", "timestamp", "outcome"), rows, "csv",
                              False)])


class _chdir:
    def __init__(self, path):
        self.path = path

    def __enter__(self):
        import os

        self.old = os.getcwd()
        os.chdir(self.path)

    def __exit__(self, *exc):
        import os

        os.chdir(self.old)


def test_a_call_in_the_first_year_no_period_can_have_is_refused_by_both_readers(shipped_rules, tmp_path):
    """Found by the generated test above: the query checked local years from 1, the row checks from
    periods.FIRST_YEAR; one bound, in one place, for both."""
    path = tmp_path / "a.csv"
    path.write_text("request_id,account,api,timestamp,outcome\nr0,acme,DetectFace,0001-01-01T00:00:00Z,\n"
                    "r1,acme,DetectFace,2020-09-10T00:00:00Z,\n", encoding="utf-8")
    for period in (None, "2020-09"):
        compare(shipped_rules, [path], period)
