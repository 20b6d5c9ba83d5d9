"""Usage read a range of accounts at a time (`ratecard.usage.ranges`): with ranges of a few rows, the
same accepted usage, bad rows, reconciliation and byte-identical bills as the Python reader the
query replaced (the differential harness), and the same as one range; each account in one range."""

from __future__ import annotations

import contextlib

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ratecard.usage import ranges, read_usage

from test_usage_differential import _APIS, _CALLS, _IDS, _MOMENTS, _OUTCOMES, _PERIODS, _chdir, _file, compare

# Accounts that sort around each other (a prefix, spaces the query trims, capitals, other scripts),
# so that range bounds fall between and on them.
_ACCOUNTS = st.sampled_from(["acme", "acme2", " acme", "acme ", "Acme", "globex", "", " ", "a\u0001b", "ünïcode",
                             "x,y", "zz", "客户", "b", "bb", "b b"])


@contextlib.contextmanager
def _ranges_of(rows: int, budget: int | None = None):
    saved = (ranges.RANGE_ROWS, ranges.STREAM_ROWS, ranges.LOAD_BUDGET, ranges.BUDGET, ranges.STREAM_BUDGET,
             ranges.SMALL_RESULT)
    ranges.RANGE_ROWS = ranges.STREAM_ROWS = rows
    ranges.SMALL_RESULT = 0  # every result read in ranges, however small
    if budget is not None:
        ranges.LOAD_BUDGET = ranges.BUDGET = ranges.STREAM_BUDGET = budget
    try:
        yield
    finally:
        (ranges.RANGE_ROWS, ranges.STREAM_ROWS, ranges.LOAD_BUDGET, ranges.BUDGET, ranges.STREAM_BUDGET,
         ranges.SMALL_RESULT) = saved


def _stream(reader):
    return [(u.account, u.period, tuple((i.api, i.calls, i.outcome) for i in u.items)) for u in reader.accounts()]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(_ACCOUNTS, _PERIODS, _APIS, _CALLS, _OUTCOMES), min_size=1, max_size=30),
       fmt=st.sampled_from(["csv", "jsonl"]), size=st.integers(1, 4), period=st.sampled_from([None, "2020-09"]))
def test_aggregated_usage_in_small_ranges_reads_as_the_python_reader(shipped_rules, tmp_path_factory, rows, fmt,
                                                                     size, period):
    tmp = tmp_path_factory.mktemp("ranged")
    header = ("account", "period", "api", "calls", "outcome")
    with _chdir(tmp), _ranges_of(size):
        compare(shipped_rules, [_file(tmp, f"u.{fmt}", header, rows, fmt, False)], period)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(_IDS, _ACCOUNTS, _APIS, _MOMENTS, _OUTCOMES), min_size=1, max_size=30),
       size=st.integers(1, 4))
def test_call_records_streamed_in_small_ranges_read_as_the_python_reader(shipped_rules, tmp_path_factory, rows,
                                                                         size):
    tmp = tmp_path_factory.mktemp("ranged-calls")
    header = ("request_id", "account", "api", "timestamp", "error_code")
    with _chdir(tmp), _ranges_of(size):
        compare(shipped_rules, [_file(tmp, "c.csv", header, rows, "csv", False)], None)


def _aggregated(tmp_path, accounts: int):
    path = tmp_path / "usage.csv"
    lines = ["account,period,api,calls,outcome"]
    for a in range(accounts):  # out of account order, some accounts spelled with spaces the query trims
        name = f"acct-{(a * 7919) % accounts:05d}"
        lines.append(f"{' ' + name if a % 5 == 0 else name},2020-09,DetectFace,{a + 1},success")
        lines.append(f"{name},2020-09,SearchFaces,{a % 9},")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_many_ranges_give_the_one_range_result(shipped_rules, tmp_path):
    path = _aggregated(tmp_path, 300)
    whole = read_usage([path], shipped_rules)
    with _ranges_of(50):
        ranged = read_usage([path], shipped_rules)
        assert len(ranged._ranges) > 5  # the run was cut into ranges indeed
        assert _stream(ranged) == _stream(whole)
        assert ranged.account_periods == whole.account_periods == 300
        assert ranged.account_ids() == whole.account_ids()
        assert ranged.reconciliation.to_dict() == whole.reconciliation.to_dict()


def test_a_budget_too_small_for_the_input_falls_back_to_the_whole_share(shipped_rules, tmp_path):
    path = _aggregated(tmp_path, 2000)
    whole = read_usage([path], shipped_rules)
    with _ranges_of(500, budget=2**20):  # 1 MiB: DuckDB cannot read the file within it
        ranged = read_usage([path], shipped_rules)
        assert _stream(ranged) == _stream(whole)


@pytest.mark.parametrize("rows, size", [(1, 1), (10, 3), (1000, 7), (1000, 1000)])
def test_every_account_falls_in_exactly_one_range_in_order(rows, size, monkeypatch):
    monkeypatch.setattr(ranges, "RANGE_ROWS", size)
    con = duckdb.connect()
    values = [f"a{i % 97:03d}" for i in range(rows)] + [None, "\u0001x", "ü", "'quote"]
    con.execute("CREATE TABLE t (account VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [[v] for v in values])
    spans = ranges.bounds(con, "t", "account", len(values))
    assert spans[0][0] is None and spans[-1][1] is None
    assert all(high == low for (_, high), (low, _) in zip(spans, spans[1:]))  # adjacent, ascending
    seen = []
    for span in spans:
        seen += [v for (v,) in con.execute(f"SELECT account FROM t WHERE {ranges.predicate('account', span)} "
                                           "ORDER BY account").fetchall()]
    assert seen == [v for (v,) in con.execute("SELECT account FROM t ORDER BY account").fetchall()]
    assert seen[-1] is None  # NULL last, as ORDER BY puts it
    if len(values) > size:
        assert len(spans) > 1


def _calls(tmp_path, accounts: int):
    path = tmp_path / "calls.csv"
    lines = ["request_id,account,api,timestamp,error_code"]
    for a in range(accounts):
        lines.append(f"r{a},acct-{(a * 7919) % accounts:05d},DetectFace,2020-09-0{1 + a % 9}T10:00:00Z,")
        lines.append(f"s{a},acct-{(a * 7919) % accounts:05d},SearchFaces,2020-09-1{a % 9}T10:00:00Z,")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_small_result_of_call_records_is_streamed_in_one_sort_within_the_whole_share(shipped_rules, tmp_path,
                                                                                       monkeypatch):
    # Evicting the result and reading it back range by range cost 3 to 5 s of 35 at 20M call records
    # (10,000 accounts' totals): below SMALL_RESULT ranges' worth of rows it is not done.
    monkeypatch.setattr(ranges, "STREAM_ROWS", 100)
    path = _calls(tmp_path, 120)  # 240 totals: under SMALL_RESULT ranges' worth
    small = read_usage([path], shipped_rules)
    list(small.accounts())
    assert small._ranges == [(None, None)]
    assert small._connection().execute("SELECT current_setting('memory_limit')").fetchone()[0] != "64.0 MiB"
    monkeypatch.setattr(ranges, "SMALL_RESULT", 1)
    ranged = read_usage([path], shipped_rules)
    assert len(ranged._ranges) > 1 and _stream(ranged) == _stream(small)


def test_a_small_result_of_aggregated_usage_is_still_read_in_ranges(shipped_rules, tmp_path, monkeypatch):
    # Aggregated usage was grouped within the small budget: holding its result whole would make the
    # memory grow with the accounts again, up to SMALL_RESULT ranges' worth.
    monkeypatch.setattr(ranges, "STREAM_ROWS", 100)
    path = _aggregated(tmp_path, 120)  # 240 rows: under SMALL_RESULT ranges' worth
    whole = read_usage([path], shipped_rules)
    assert len(whole._ranges) > 1
    monkeypatch.setattr(ranges, "STREAM_ROWS", 10_000)
    assert _stream(whole) == _stream(read_usage([path], shipped_rules))


def _limit(reader_or_con) -> str:
    return reader_or_con.execute("SELECT current_setting('memory_limit')").fetchone()[0]


def test_a_range_the_budget_cannot_group_is_halved_until_it_can(shipped_rules, tmp_path, monkeypatch):
    path = _aggregated(tmp_path, 300)  # 600 rows
    whole = read_usage([path], shipped_rules)
    real, grouped = ranges.group, []

    def group(con, rules, kind, period, source, table, span, made):
        where = ranges.predicate("range_key", span)
        if con.execute(f"SELECT count(*) FROM {source} WHERE {where}").fetchone()[0] > 40:
            raise duckdb.OutOfMemoryException("Out of Memory Error: could not allocate block")
        grouped.append(span)
        real(con, rules, kind, period, source, table, span, made)

    monkeypatch.setattr(ranges, "group", group)
    with _ranges_of(200):  # 3 ranges of some 200 rows, each halved to 40 rows or fewer
        ranged = read_usage([path], shipped_rules)
        assert len(grouped) >= 15
        # One pass over the accounts, in ascending ranges: no second run within the whole share.
        assert grouped[0][0] is None and grouped[-1][1] is None
        assert all(high == low for (_, high), (low, _) in zip(grouped, grouped[1:]))
        assert _stream(ranged) == _stream(whole)
        assert ranged.reconciliation.to_dict() == whole.reconciliation.to_dict()


def test_a_budget_too_small_for_any_range_falls_back_to_the_whole_share(shipped_rules, tmp_path, monkeypatch):
    path = _aggregated(tmp_path, 300)
    whole = read_usage([path], shipped_rules)
    real, limits = ranges.group, []

    def group(con, rules, kind, period, source, table, span, made):
        limits.append(_limit(con))
        if _limit(con) == "24.0 MiB":  # the budget set below: no range fits in it
            raise duckdb.OutOfMemoryException("Out of Memory Error: could not allocate block")
        real(con, rules, kind, period, source, table, span, made)

    monkeypatch.setattr(ranges, "group", group)
    with _ranges_of(200):
        monkeypatch.setattr(ranges, "BUDGET", 24 * 2**20)
        ranged = read_usage([path], shipped_rules)
        assert _stream(ranged) == _stream(whole)
    # Halved a few times (not down to each account), then read again within the whole share.
    assert 2 <= limits.count("24.0 MiB") <= 2 * 16
    assert limits[-1] != "24.0 MiB"


def test_a_last_line_longer_than_the_bounded_buffer_comes_back_as_a_bad_row(shipped_rules, tmp_path):
    # DuckDB's reader drops a last line longer than its buffer without a word (its own buffer is the
    # file's size up to 32 MB, the bounded one 2 MiB): such a file goes to the row pass, which names the
    # line, never loses it.
    from ratecard.usage import duck
    from ratecard.usage.files import sniff

    short, long = tmp_path / "short.csv", tmp_path / "long.csv"
    short.write_text("account,period,api,calls,outcome\n" + "acme,2020-09,DetectFace,1,\n" * 100_000 + "\n\n")
    long.write_bytes(b"account,period,api,calls,outcome\nacme,2020-09,DetectFace,1,\n"
                     + b"acme,2020-09,DetectFace," + b"9" * duck.READ_BUFFER + b",\n")
    assert duck.bounded(sniff(str(short), str(short))) and not duck.long_last_line(sniff(str(short), str(short)))
    assert duck.long_last_line(sniff(str(long), str(long))) and not duck.bounded(sniff(str(long), str(long)))
    reader = read_usage([long], shipped_rules)
    assert reader.diagnosed and [(r.line, r.code) for r in reader.rejected] == [(3, "oversize-row")]
    assert reader.reconciliation.rows_read == 2


def test_a_gzip_files_last_line_longer_than_the_engines_own_buffer_comes_back_as_a_bad_row(shipped_rules, tmp_path):
    # A gzip file is read with DuckDB's own buffer (32 MB): a longer last line vanished from the bills and
    # the reconciliation alike. Its end is found by decompressing it, and the line is named.
    import gzip

    from ratecard.usage import duck
    from ratecard.usage.files import sniff

    path = tmp_path / "usage.csv.gz"
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(b"account,period,api,calls,outcome\nacme,2020-09,DetectFace,1,\n"
                + b"acme,2020-09,DetectFace," + b"9" * (40 << 20) + b",\n\n")
    assert duck.long_last_line(sniff(str(path), str(path))) and not duck.bounded(sniff(str(path), str(path)))
    reader = read_usage([path], shipped_rules)
    assert reader.diagnosed and [(r.line, r.code) for r in reader.rejected] == [(3, "oversize-row")]
    assert reader.reconciliation.rows_read == 2


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"a", b"bb", b"\n", b"\r", b"\r\n", b"x" * 7]), max_size=40),
       st.integers(min_value=1, max_value=9))
def test_a_streamed_files_last_line_is_measured_across_any_chunking(pieces, chunk):
    import io
    import re

    from ratecard.usage.lastline import _last_line_streamed

    data = b"".join(pieces)
    lines = [line for line in re.split(rb"\r|\n", data) if line]
    assert _last_line_streamed(io.BytesIO(data), chunk) == (len(lines[-1]) if lines else 0)
