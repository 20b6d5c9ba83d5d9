"""The compiled query on Apache Spark (local mode, one session for the whole run) gives the bills the
DuckDB engine gives, byte for byte, on the test corpus: call records crossing the Beijing month,
aggregated usage, duplicates, time-zone edges, gzip, Parquet, several files; and a bad row still
comes back with its file, line and reason."""

from __future__ import annotations

import gzip
import json

import pytest

import ratecard
from ratecard.billrun import render_bill
from ratecard.rating import rate
from ratecard.usage import read_usage

from conftest import ROOT, TOY_SETTLEMENT, write_rule_set

EXAMPLES = ROOT / "examples"


def _bills(reader, rules):
    return [render_bill(rate(rules, u.items, u.period, account=u.account), rules, "jsonl") for u in reader.accounts()]


def _same(spark_session, rules, paths, period=None, *, clean=True):
    on_spark = read_usage(paths, rules, period=period, engine="spark", spark=spark_session)
    on_duckdb = read_usage(paths, rules, period=period)
    if clean:  # the compiled query itself ran on Spark, not the row pass
        assert not on_spark.diagnosed and not on_duckdb.diagnosed
    assert on_spark.reconciliation == on_duckdb.reconciliation
    assert [(r.file, r.line, r.reason) for r in on_spark.rejected] == [(r.file, r.line, r.reason)
                                                                       for r in on_duckdb.rejected]
    assert list(on_spark.accounts()) == list(on_duckdb.accounts())
    assert _bills(on_spark, rules) == _bills(on_duckdb, rules)
    return on_spark


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("corpus")
    records = [json.loads(line) for line in (EXAMPLES / "calls-2020-09-30.jsonl").read_text().splitlines() if line]
    header = ["request_id", "account", "api", "timestamp", "outcome"]
    calls = ",".join(header) + "\n" + "".join(",".join(r.get(k, "") for k in header) + "\n" for r in records)
    (tmp / "calls.csv").write_text(calls)
    (tmp / "calls-again.csv.gz").write_bytes(gzip.compress(calls.encode(), mtime=0))  # every id a duplicate
    agg = (EXAMPLES / "usage-2020-09.csv").read_text().splitlines()
    (tmp / "usage.csv").write_text("\n".join(line for line in agg if "DetectLiveFaceAccurate" not in line) + "\n")
    (tmp / "usage-with-bad-row.csv").write_text("\n".join(agg) + "\n")
    return tmp


def test_call_records_across_the_beijing_month_and_duplicates_across_files(spark_session, shipped_rules, corpus):
    for period in (None, "2020-09", "2020-10"):
        reader = _same(spark_session, shipped_rules, [corpus / "calls.csv", corpus / "calls-again.csv.gz"], period)
    assert reader.reconciliation.rows_duplicate > len(list(reader.accounts()))


def test_aggregated_usage_of_both_shipped_price_books(spark_session, shipped_rules, corpus):
    _same(spark_session, shipped_rules, [corpus / "usage.csv"], "2020-09")
    cn = ratecard.load_rules(ROOT / "rules" / "face-recognition-cn")
    _same(spark_session, cn, [EXAMPLES / "usage-cn-2020-09.csv"])


def test_parquet_and_error_code_columns(spark_session, shipped_rules, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    from datetime import datetime, timezone

    moments = [datetime(2020, 9, 30, 15, 59, 59, tzinfo=timezone.utc), datetime(2020, 9, 30, 16, tzinfo=timezone.utc)]
    pq.write_table(pa.table({"request_id": ["r1", "r2"], "account": ["acme", "globex"], "api": ["DetectFace"] * 2,
                             "timestamp": pa.array(moments, pa.timestamp("us", tz="UTC")),
                             "error_code": [None, "InvalidParameterValue.NoFaceInPhoto"]}), tmp_path / "c.parquet")
    pq.write_table(pa.table({"account": ["acme"], "period": ["2020-09"], "api": ["SearchFaces"],
                             "calls": pa.array([3000001.0], pa.float64())}), tmp_path / "a.parquet")
    _same(spark_session, shipped_rules, [tmp_path / "c.parquet", tmp_path / "a.parquet"])


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/Los_Angeles"])
def test_time_zone_edges_of_another_rule_set(spark_session, tmp_path, zone):
    rules = ratecard.load_rules(write_rule_set(tmp_path / "toy", settlement=TOY_SETTLEMENT.replace(
        "Europe/Berlin", zone)))
    moments = ["2024-02-29T22:59:59Z", "2024-02-29T23:00:00Z", "2024-03-31T20:00:00Z", "2024-03-31T22:00:00Z",
               "2024-04-01T06:59:59Z", "2024-04-01T07:00:00Z", "2024-03-10T10:00:00+05:30"]
    (tmp_path / "c.csv").write_text("request_id,account,api,timestamp,outcome\n" + "".join(
        f"r{i},acme,RenderWidget,{m},success\n" for i, m in enumerate(moments)))
    _same(spark_session, rules, [tmp_path / "c.csv"])


def test_a_bad_row_is_named_the_same(spark_session, shipped_rules, corpus):
    reader = _same(spark_session, shipped_rules, [corpus / "usage-with-bad-row.csv"], clean=False)
    [bad] = reader.rejected
    assert bad.code == "unknown-api" and bad.line == 30


def test_spark_sql_is_what_usage_sql_prints(shipped_rules, capsys):
    from ratecard.cli import main

    assert main(["usage", "--sql", "--dialect", "spark", "--period", "2020-09"]) == 0
    out = capsys.readouterr().out
    assert "{input}" in out and "from_utc_timestamp" in out and "'Asia/Shanghai'" in out


def test_semicolon_and_tab_files_and_unix_times(spark_session, shipped_rules, tmp_path):
    """Issue 14's everyday inputs run through the compiled query on Spark as on DuckDB."""
    (tmp_path / "semi.csv").write_text("account;period;api;calls\nacme;2020-09;DetectFace;1000\n"
                                       "\"a;b\";2020-09;SearchFaces;7\n")
    (tmp_path / "tab.csv").write_text("request_id\taccount\tapi\ttimestamp\nr1\tacme\tDetectFace\t1601481599\n"
                                      "r2\tacme\tDetectFace\t1601481600000\nr3\tglobex\tSearchFaces\t1601481599999\n")
    _same(spark_session, shipped_rules, [tmp_path / "semi.csv", tmp_path / "tab.csv"])


def test_json_lines_call_records_and_aggregated_usage(spark_session, shipped_rules, tmp_path):
    """JSON Lines run through the compiled query on Spark (not the row pass) with the bills DuckDB
    gives: call records plain and gzip-compressed (every id again: duplicates), and aggregated usage
    with counts as numbers and as text, outcomes and error codes present, null or absent, CRLF ends."""
    calls = (EXAMPLES / "calls-2020-09-30.jsonl").read_bytes()
    (tmp_path / "calls.jsonl").write_bytes(calls)
    (tmp_path / "again.jsonl.gz").write_bytes(gzip.compress(calls, mtime=0))
    _same(spark_session, shipped_rules, [tmp_path / "calls.jsonl", tmp_path / "again.jsonl.gz"])
    rows = [{"account": "acme", "period": "2020-09", "api": "DetectFace", "calls": 1000},
            {"account": "acme", "period": "2020-09", "api": "DetectFace", "calls": "25", "outcome": "success"},
            {"account": "acme", "period": "2020-09", "api": "SearchFaces", "calls": 7, "outcome": None},
            {"account": "globex", "period": "2020-09", "api": "CompareFace", "calls": 3,
             "error_code": "InvalidParameterValue.NoFaceInPhoto"},
            {"account": "globex", "period": "2020-09", "api": "CompareFace", "calls": 4, "error_code": None},
            {"account": "initech", "period": "2020-09", "api": "CreateGroup", "calls": 0, "error_code": ""}]
    (tmp_path / "usage.jsonl").write_text("\r\n".join(json.dumps(r) for r in rows) + "\r\n", newline="")
    _same(spark_session, shipped_rules, [tmp_path / "usage.jsonl"])


@pytest.mark.parametrize("line", [
    '{"account": "ac\\u006de", "period": "2020-09", "api": "DetectFace", "calls": 5}',  # an escape
    '{"account": "acme", "period": "2020-09", "api": "DetectFace", "calls": 5, "meta": {"a": [1]}}',  # nested
    '{"account": "acme", "period": "2020-09", "api": "DetectFace", "calls": 5.0}',  # a fraction
    '{"account": "acme", "period": "2020-09", "api": "DetectFace", "calls": 5, "calls": 6}',  # a key twice
    '{"account": 42, "period": "2020-09", "api": "DetectFace", "calls": 5}',  # a number for text
    '{"account": "acme", "period": "2020-09", "api": "DetectFace", "calls": 5}\r{"account": "x"}',  # a lone CR
    '{"account": "acme", "period": "2020-09", "api": "DetectFace", "calls": 5}\f',  # not JSON's whitespace
    '{"account": "acme", "period": "2020-09", "api": "DetectFace", "calls": -5}',
    '{"account": "acme", "period": "2020-09", "api": "DetectFace", "calls": 99999999999999999999}',
    '["acme", "2020-09", "DetectFace", 5]',
])
def test_json_lines_spark_leaves_to_the_row_pass_are_read_as_duckdb_reads_them(spark_session, shipped_rules,
                                                                                tmp_path, line):
    path = tmp_path / "usage.jsonl"
    path.write_bytes(('{"account": "acme", "period": "2020-09", "api": "SearchFaces", "calls": 9}\n'
                      + line + "\n").encode())
    reader = _same(spark_session, shipped_rules, [path], clean=False)
    assert reader.diagnosed  # the line went to the row pass on Spark too


def test_json_lines_bytes_that_are_not_utf8_are_refused_as_on_duckdb(spark_session, shipped_rules, tmp_path):
    """Spark reads text without checking its encoding: the line it cannot vouch for goes to the row
    pass, which refuses the file as the DuckDB engine does, naming the line."""
    from ratecard.errors import RatecardError

    path = tmp_path / "usage.jsonl"
    path.write_bytes(b'{"account": "acme", "period": "2020-09", "api": "SearchFaces", "calls": 9}\n'
                     b'{"account": "ac\xffme", "period": "2020-09", "api": "DetectFace", "calls": 5}\n')
    messages = []
    for engine in ("spark", "duckdb"):
        with pytest.raises(RatecardError) as caught:
            read_usage([path], shipped_rules, engine=engine, spark=spark_session)
        messages.append(str(caught.value))
    assert messages[0] == messages[1] and "usage.jsonl:2: the file is not UTF-8 text" in messages[0]


# -- files at a URL: read where they are, through the Hadoop file systems of the Spark session --------


def _urls_read_as_local_paths(spark_session, rules, paths, period=None):
    """Read as `file://` URLs on Spark (Hadoop's file-system API, as for hdfs:// or s3a://) and as
    local paths on DuckDB: the same reconciliation, the same rejected rows (named by the URL given),
    the same accounts and bills."""
    urls = [p.as_uri() for p in paths]
    on_spark = read_usage(urls, rules, period=period, engine="spark", spark=spark_session)
    on_duckdb = read_usage(paths, rules, period=period)
    assert all(s.staged is not None or s.lines is not None for s in on_spark.sources)  # not opened as local paths
    assert on_spark.reconciliation == on_duckdb.reconciliation
    url_of = {source.name: url for source, url in zip(on_duckdb.sources, urls)}
    assert [(r.file, r.line, r.reason, r.raw) for r in on_spark.rejected] == [
        (url_of[r.file], r.line, r.reason, r.raw) for r in on_duckdb.rejected]
    assert list(on_spark.accounts()) == list(on_duckdb.accounts())
    assert _bills(on_spark, rules) == _bills(on_duckdb, rules)
    return on_spark


def test_files_at_a_url_every_format(spark_session, shipped_rules, corpus, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    calls = (EXAMPLES / "calls-2020-09-30.jsonl").read_bytes()
    (tmp_path / "calls.jsonl").write_bytes(calls)
    (tmp_path / "again.jsonl.gz").write_bytes(gzip.compress(calls, mtime=0))
    pq.write_table(pa.table({"account": ["acme", "globex"], "period": ["2020-09"] * 2, "api": ["SearchFaces"] * 2,
                             "calls": pa.array([3000001.0, 12.0], pa.float64())}), tmp_path / "a.parquet")
    (tmp_path / "array.json").write_text(json.dumps([{"account": "initech", "period": "2020-09", "api": "DetectFace",
                                                      "calls": 40}]))
    reader = _urls_read_as_local_paths(spark_session, shipped_rules, [
        corpus / "calls.csv", corpus / "calls-again.csv.gz", tmp_path / "calls.jsonl", tmp_path / "again.jsonl.gz",
        tmp_path / "a.parquet", tmp_path / "array.json"])
    assert not reader.diagnosed  # the compiled query ran on Spark over the files where they are
    assert reader.reconciliation.rows_duplicate > 0


def test_a_bad_row_at_a_url_is_named_by_its_url_and_row(spark_session, shipped_rules, corpus, tmp_path):
    (tmp_path / "usage.csv.gz").write_bytes(gzip.compress((corpus / "usage-with-bad-row.csv").read_bytes(), mtime=0))
    (tmp_path / "no-gz-name").write_bytes(gzip.compress((corpus / "usage.csv").read_bytes(), mtime=0))
    for path in (corpus / "usage-with-bad-row.csv", tmp_path / "usage.csv.gz", tmp_path / "no-gz-name"):
        reader = _urls_read_as_local_paths(spark_session, shipped_rules, [path])
        assert reader.diagnosed  # the row pass ran here, on a copy of the file
    [bad] = _urls_read_as_local_paths(spark_session, shipped_rules, [tmp_path / "usage.csv.gz"]).rejected
    assert (bad.file, bad.line, bad.code) == ((tmp_path / "usage.csv.gz").as_uri(), 30, "unknown-api")


def test_a_url_pattern_reads_each_match_once(spark_session, shipped_rules, corpus, tmp_path):
    (tmp_path / "part-1.csv").write_bytes((corpus / "calls.csv").read_bytes())
    (tmp_path / "part-2.csv").write_bytes((corpus / "calls-again.csv.gz").read_bytes())
    (tmp_path / "other.txt").write_text("not usage")
    pattern = tmp_path.as_uri() + "/part-*.csv"
    on_spark = read_usage(pattern, shipped_rules, engine="spark", spark=spark_session)
    on_duckdb = read_usage(str(tmp_path / "part-*.csv"), shipped_rules)
    assert [s.name.rsplit("/", 1)[1] for s in on_spark.sources] == ["part-1.csv", "part-2.csv"]
    assert on_spark.reconciliation == on_duckdb.reconciliation
    assert list(on_spark.accounts()) == list(on_duckdb.accounts())
    from ratecard.errors import RatecardError

    with pytest.raises(RatecardError, match="given twice"):
        read_usage([pattern, (tmp_path / "part-1.csv").as_uri()], shipped_rules, engine="spark", spark=spark_session)


@pytest.mark.parametrize("where, message", [
    ("{dir}/missing.csv", "cannot read the usage file: No such file or directory"),
    ("{dir}/*.nothing", "no usage file matches this pattern"),
    ("{dir}", "Is a directory"),
    ("nosuchscheme://bucket/usage.csv", 'No FileSystem for scheme "nosuchscheme"'),
])
def test_a_url_spark_cannot_read_is_a_clear_error(spark_session, shipped_rules, tmp_path, where, message):
    from ratecard.errors import RatecardError

    url = where.format(dir=tmp_path.as_uri())
    with pytest.raises(RatecardError, match=message) as caught:
        read_usage(url, shipped_rules, engine="spark", spark=spark_session)
    assert str(caught.value).startswith(url.split("*")[0].rstrip("/"))


def test_bill_reads_a_url_on_spark_as_the_file_itself(spark_session, tmp_path, capsys):
    from ratecard.cli import main

    local = EXAMPLES / "usage-2020-09.csv"
    assert main(["bill", "--usage", str(local), "--format", "jsonl", "--rejects", str(tmp_path / "local.csv")]) == 0
    expected = capsys.readouterr().out
    assert main(["bill", "--usage", local.as_uri(), "--format", "jsonl", "--rejects", str(tmp_path / "url.csv"),
                 "--engine", "spark", "--master", "local[2]"]) == 0
    assert capsys.readouterr().out == expected and expected.count('"schema_version"') == 13
    rejected = (tmp_path / "url.csv").read_text()
    assert local.as_uri() in rejected and "DetectLiveFaceAccurate" in rejected
