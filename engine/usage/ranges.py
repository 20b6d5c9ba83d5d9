"""Account ranges: the engine's work over many accounts done a slice of accounts at a time, so that
its memory stays flat as the accounts grow.

Grouping the usage of N accounts in one hash table, or sorting it in one sort, takes memory in
proportion to N: DuckDB holds it within its memory limit and spills past it, but below the limit it
keeps all of it (1M aggregated accounts took 1.1 GiB of the default 2 GiB cap). Every group of the
compiled query belongs to one account (as trimmed), so the accounts can be cut into ranges of about
`RANGE_ROWS` rows, found from a sample, and each range grouped, or sorted and streamed out, on its
own: the result is the same rows, and in the same order (ranges ascend, NULL last as in ORDER BY).

DuckDB keeps what its limit allows, so each step's limit is what makes the memory flat: the files are
read into a table within `LOAD_BUDGET` (the text readers' buffers bounded), the ranges grouped within
`BUDGET` and streamed out within `STREAM_BUDGET`; the tables between the steps are evicted to the
spill folder past them. Below a range's worth (10,000 accounts) the engine holds about as much as
these budgets anyway, so the process's peak barely moves from there to 1M accounts.

Imported only on the paths that read usage with the embedded engine (duckdb is a large library).
"""

from __future__ import annotations

from typing import Iterator

import duckdb

from .compile import Dialect, compile_usage

# Rows of aggregated usage a range holds, about: its grouping (two hash tables, some 0.3 KB a row and
# 10 MiB besides) stays inside BUDGET; measured at 1M accounts, 60,000 rows failed within 24 MiB. A
# range the budget cannot group (longer names than these) is halved, down to RANGE_ROWS / SPLIT_ROWS.
RANGE_ROWS = 50_000
SPLIT_ROWS = 16
# Rows of the result a range holds as the accounts stream out: one sort (200,000 rows failed within
# 16 MiB); larger than RANGE_ROWS, since each range costs a query (60 to 200 ms).
STREAM_ROWS = 80_000
SAMPLE_ROWS = 20_000  # rows sampled to place the ranges' bounds
# A result this small (some 30 to 60 MiB in the engine) is streamed out in one sort, without lowering
# the budget, when it holds call records' totals (whose grouping took the whole share anyway).
SMALL_RESULT = 12  # STREAM_ROWS' worth
# DuckDB's limits (bytes) while the files of aggregated usage are read into a table (the text readers'
# buffers bounded: `duck.READ_BUFFER`), while it is grouped a range at a time, and while the accounts
# stream out (a range's sort); the tables are evicted to the spill folder past them. Each limit is
# what DuckDB holds at 100,000 accounts and more (10,000 accounts fit in them): lower ones cost time
# (24 MiB, with ranges of 40,000 rows: 10 s more CPU at 1M accounts), higher ones memory.
LOAD_BUDGET = 16 * 2**20
BUDGET = 28 * 2**20
STREAM_BUDGET = 16 * 2**20

_D = Dialect()
Range = tuple  # (lowest account or None, account past the range or None)


def limit(con: duckdb.DuckDBPyConnection, size: int | str) -> None:
    """Set DuckDB's memory limit (bytes, or DuckDB's own spelling); lowering it evicts what it can
    to the spill folder. A limit it cannot reach at once is left as it was: the next query then
    works within the old one, as it would have without this."""
    try:
        con.execute(f"SET memory_limit = '{int(size)}B'" if isinstance(size, int) else f"SET memory_limit = {_D.lit(size)}")
    except duckdb.Error:
        pass


def bounds(con: duckdb.DuckDBPyConnection, relation: str, column: str, rows: int,
           size: int | None = None) -> list[Range]:
    """Ranges of `column` (an account) cutting `relation` into parts of about `size` rows (default
    RANGE_ROWS); one range (everything) when it is small. A value is in exactly one range; NULL in the last."""
    parts = -(-rows // (size or RANGE_ROWS))
    if parts <= 1:
        return [(None, None)]
    # A sample, not the quantiles: those would sort every account, the very memory this avoids.
    # The bounds only shape the work (each account lands in one range whatever they are).
    sample = sorted(v for (v,) in con.execute(
        f"SELECT {column} FROM {relation} USING SAMPLE reservoir({SAMPLE_ROWS} ROWS) REPEATABLE (10)").fetchall()
        if v is not None)
    cuts: list[str] = []
    for i in range(1, parts):
        if sample:
            cut = sample[min(len(sample) - 1, i * len(sample) // parts)]
            # Written into the queries as literals (so the scans skip the blocks outside a range by
            # their min/max): an account that is not plain printable text is no bound.
            if cut.isprintable() and (not cuts or cut > cuts[-1]):
                cuts.append(cut)
    edges = [None, *cuts, None]
    return list(zip(edges, edges[1:]))


def predicate(column: str, span: Range) -> str:
    """The condition selecting `span` of `column`."""
    low, high = span
    if low is None and high is None:
        return "true"
    if low is None:
        return f"{column} < {_D.lit(high)}"
    if high is None:
        return f"({column} >= {_D.lit(low)} OR {column} IS NULL)"
    return f"{column} >= {_D.lit(low)} AND {column} < {_D.lit(high)}"


def run_ranged(con: duckdb.DuckDBPyConnection, rules, kind: str, period, union: str, table: str,
               budgets: tuple[int, int] | None = None) -> None:
    """The compiled query of `kind` over `union` (the files' projections) into `table`, range by range
    of accounts: the files are read once into a table (evicted to the spill folder past the limit),
    then each range is grouped on its own. `budgets` are the limits (bytes) while the files are read
    and while the ranges are grouped (None: the limit as it is). Raises duckdb's errors as the one
    query would."""
    key = _D.trim("account")  # the account as the query groups it: each group falls in one range
    source = f"{table}_input"
    if budgets:
        limit(con, budgets[0])
    con.execute(f"CREATE OR REPLACE TABLE {source} AS SELECT *, {key} AS range_key FROM {union} AS files")
    if budgets:
        limit(con, budgets[1])  # the input evicted to the spill folder, past it
    try:
        rows = _one(con, f"SELECT count(*) FROM {source}")
        pending = bounds(con, source, "range_key", rows)[::-1]  # a stack: the ranges in ascending order
        made = False
        while pending:
            span = pending.pop()
            try:
                group(con, rules, kind, period, source, table, span, made)
            except duckdb.OutOfMemoryException:
                # Wider rows than RANGE_ROWS allows for (long names, many outcomes): the range in halves,
                # each within the budget, rather than the whole share for every range.
                halves = split(con, source, "range_key", span)
                if halves is None:
                    raise  # one account's rows: the caller reads within the whole share
                pending += halves[::-1]
                continue
            made = True
    finally:
        con.execute(f"DROP TABLE IF EXISTS {source}")


def group(con: duckdb.DuckDBPyConnection, rules, kind: str, period, source: str, table: str, span: Range,
          made: bool) -> None:
    """The compiled query of `kind` over the rows of `span` of `source` into `table` (made by the first)."""
    where = predicate("range_key", span)
    query = compile_usage(rules, kind, period=period, projected=True,
                          source=f"(SELECT * EXCLUDE (range_key) FROM {source} WHERE {where})").sql
    into = f"INSERT INTO {table} " if made else f"CREATE OR REPLACE TABLE {table} AS "
    con.execute(f"{into}SELECT * FROM ({query})")


def split(con: duckdb.DuckDBPyConnection, relation: str, column: str, span: Range) -> list[Range] | None:
    """`span` cut in two at the median of a sample of its values; None when it holds few rows (a
    budget too small for any range: halving it again and again would not help), one value, or no
    printable value to cut at."""
    where = predicate(column, span)
    if _one(con, f"SELECT count(*) FROM {relation} WHERE {where}") <= RANGE_ROWS // SPLIT_ROWS:
        return None
    values = sorted({v for (v,) in con.execute(
        f"SELECT v FROM (SELECT {column} AS v FROM {relation} WHERE {where}) "
        f"USING SAMPLE reservoir({SAMPLE_ROWS} ROWS) REPEATABLE (10)").fetchall() if v is not None})
    # Above values[0], so each half holds fewer values than `span`; the nearest to the median first.
    middle = len(values) // 2
    for _, cut in sorted((abs(i - middle), v) for i, v in enumerate(values) if i > 0):
        if cut.isprintable():
            return [(span[0], cut), (cut, span[1])]
    return None


def result(con: duckdb.DuckDBPyConnection, tables: list[str], budget: int | str,
           small: bool = False) -> tuple[int, list[Range]]:
    """`usage_result` (account, period, api, outcome, calls) from the kinds' `tables`; its largest count
    and the ranges of accounts it is read in. The engine works within `budget` from here on: it holds
    the result and streams it out a range at a time, and past the budget the tables are evicted.
    `small`: a result of at most SMALL_RESULT ranges' worth is streamed in one sort, as it stands."""
    union = " UNION ALL ".join(f"SELECT account, period, api, outcome, calls FROM {t} WHERE in_period"
                               for t in tables) or ("SELECT NULL::VARCHAR AS account, NULL::VARCHAR AS period, "
                                                    "NULL::VARCHAR AS api, NULL::VARCHAR AS outcome, "
                                                    "NULL::HUGEINT AS calls WHERE false")
    if len(tables) == 1:  # one kind: its rows in period are already one per account, period, API, outcome
        # A view, not a copy: a range's reads skip the blocks of the others (aggregated usage was
        # written range by range).
        con.execute(f"CREATE OR REPLACE VIEW usage_result AS SELECT account, period, api, outcome, "
                    f"CAST(calls AS HUGEINT) AS calls FROM ({union})")
    else:  # both kinds: grouped together (one hash table of every account, within the whole share)
        con.execute("CREATE OR REPLACE TABLE usage_result AS SELECT account, period, api, outcome, "
                    f"CAST(sum(calls) AS HUGEINT) AS calls FROM ({union}) GROUP BY account, period, api, outcome")
    found = con.execute("SELECT coalesce(max(calls), 0), count(*) FROM usage_result").fetchone()
    assert found is not None  # an aggregate query returns one row
    largest, rows = found
    if small and rows <= SMALL_RESULT * STREAM_ROWS:
        # Held and sorted whole within the share it was made in: evicting the tables and reading them back a
        # range at a time costs seconds (3 to 5 s of 35 at 20M call records) to save a few tens of MiB.
        return int(largest), [(None, None)]
    limit(con, budget)
    return int(largest), bounds(con, "usage_result", "account", rows, STREAM_ROWS)


def read_ranged(con: duckdb.DuckDBPyConnection, spans: list[Range], sql: str, full: str,
                batch: int) -> Iterator[list[tuple]]:
    """Batches of the rows of `sql` run on each range of accounts in turn (`{range}` is its condition
    on ``account``): an account's rows are all in one range, and the ranges ascend, so an ORDER BY on
    the account holds across them. A range the budget cannot sort is sorted within `full`."""
    for span in spans:
        cursor = con.cursor()
        try:
            cursor.execute(sql.replace("{range}", predicate("account", span)))
        except duckdb.OutOfMemoryException:
            limit(con, full)
            cursor.execute(sql.replace("{range}", predicate("account", span)))
        while rows := cursor.fetchmany(batch):
            yield rows


def _one(con: duckdb.DuckDBPyConnection, sql: str):
    """The one value of an aggregate query (which always returns one row)."""
    row = con.execute(sql).fetchone()
    assert row is not None
    return row[0]


__all__ = ["RANGE_ROWS", "STREAM_ROWS", "SPLIT_ROWS", "SMALL_RESULT", "LOAD_BUDGET", "BUDGET", "STREAM_BUDGET", "limit", "bounds", "predicate", "run_ranged", "group", "split", "result", "read_ranged"]
