"""DuckDB, the embedded engine: file readers for the compiled query, memory cap and spill, both passes.

Imported only on the paths that read usage (duckdb is a large library).
"""

from __future__ import annotations

import csv
import json
import os
import re
from decimal import Decimal

import duckdb

from ..errors import RatecardError
from .checks import BAD, OUT, RowChecker, calls_or_zero
from .compile import Dialect, compile_usage, count_of_text
from .files import AGGREGATED, CALLS, EXPECTED, KNOWN, MAX_ROW_BYTES, REQUIRED, Source
# What decides a text reader's buffer, a fact of the file: the readers' callers ask for it here.
from .lastline import READ_BUFFER, bounded, long_last_line, plain_text  # noqa: F401
from .rows import records

DEFAULT_MEMORY = "2GiB"  # fits a 2-core / 8 GiB machine beside the rating workers; DuckDB spills past it
# DuckDB's memory limit holds its buffer manager (hash tables, sorts, materialized steps), not all it
# allocates, and the process holds Python and the rating besides: measured at 20M call records, the
# process peaked 80 MiB past DuckDB's limit. So DuckDB gets this share of the user's cap, and the
# process as a whole stays within it.
ENGINE_SHARE = Decimal("0.8")
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}

_D = Dialect()
_NESTING = 200  # brackets in a line beyond which the row pass decides (Python's parser stops near 1,000 levels)
_TEXT_TYPES = ("VARCHAR",)
_INSTANT_TYPES = ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ_NS")  # pandas writes nanoseconds
_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                  "UBIGINT", "UHUGEINT")


def connect(memory_limit: str | None, spill_directory: str, threads: int | None) -> duckdb.DuckDBPyConnection:
    config: dict[str, str | bool | int | float | list[str]] = {
        "memory_limit": engine_memory(memory_limit), "temp_directory": spill_directory,
        "preserve_insertion_order": False}
    if threads:
        config["threads"] = threads
    try:
        con = duckdb.connect(":memory:", config=config)
    except duckdb.Error as exc:
        raise RatecardError(f"cannot start the usage engine: {exc}") from None
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    return con


def engine_memory(memory_limit: str | None) -> str:
    """DuckDB's own limit for a process capped at `memory_limit` (e.g. "2GiB"); a spelling this does
    not know goes to DuckDB as it is, which refuses it or reads it."""
    text = (memory_limit or DEFAULT_MEMORY).strip()
    found = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]+)", text)
    if found is None or found.group(2).lower() not in _UNITS:
        return text
    return f"{int(Decimal(found.group(1)) * _UNITS[found.group(2).lower()] * ENGINE_SHARE)}B"


def engine_bytes(memory_limit: str | None) -> int:
    """`engine_memory` in bytes; a spelling this does not know counts as the default cap."""
    found = re.fullmatch(r"([0-9]+)B", engine_memory(memory_limit))
    return int(found.group(1)) if found else int(engine_memory(None)[:-1])


def lit(text: str) -> str:
    return _D.lit(text)


# -- the file readers (pass 1) ----------------------------------------------------------------------


def projection(source: Source, parquet_types: dict | None = None, *, buffer: int | None = None) -> str:
    """The engine's internal columns of one file, for the compiled query (`projected=True`); `buffer`
    bounds a text reader's buffer (DuckDB's own default when None)."""
    if source.format == "csv":
        return _csv_projection(source, _buffer(buffer))
    if source.format == "jsonl":
        return _json_projection(source, _buffer(buffer))
    return _parquet_projection(source, parquet_types or {})


def _buffer(size: int | None) -> str:
    return f", buffer_size = {int(size)}" if size else ""


def _csv_projection(s: Source, buffer: str = "") -> str:
    names = [f"c{i}" for i in range(len(s.columns))]
    col = {n: names[i] for i, n in enumerate(s.columns) if n in KNOWN}
    columns = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in names) + "}"
    reader = (f"read_csv({lit(s.path)}, header = true, auto_detect = false, delim = {lit(s.delimiter)}, quote = '\"', "
              f"escape = '\"', strict_mode = true, null_padding = false, columns = {columns}, "
              f"compression = '{'gzip' if s.gzip else 'none'}', max_line_size = 131072{buffer})")
    outcome = col.get("outcome", "CAST(NULL AS VARCHAR)")
    error_code = f"coalesce({col['error_code']}, '')" if "error_code" in col else "CAST(NULL AS VARCHAR)"
    return _select(s.kind, {k: col.get(k) for k in REQUIRED[s.kind]}, outcome, error_code,
                   f"({_csv_plain(s, buffer)})", reader, calls_text=True)


def _field(delimiter: str) -> str:
    return '([^"' + delimiter + '\r\n]*|"([^"]|"")*")'


def _csv_plain(s: Source, buffer: str = "") -> str:
    """Whether every line of the file is plainly one record of the header's width.

    DuckDB's reader forgives what the row checks refuse (and Python's csv module reads otherwise): it
    drops empty fields past the header's width ("a,b,c,") and the spaces around a quoted field
    (a, "b"). So the file is read as lines too, and any line that is not exactly `width` plain fields
    (quoted fields included) sends the file to the row checks, whose verdict then stands."""
    width = len(s.columns)
    lines = (f"read_csv({lit(s.path)}, header = false, auto_detect = false, delim = '\x01', quote = '', "
             f"escape = '', columns = {{'line': 'VARCHAR'}}, compression = '{'gzip' if s.gzip else 'none'}', "
             f"max_line_size = 131072, strict_mode = true{buffer})")
    sep, field = s.delimiter, _field(s.delimiter)
    record = field + "(" + sep + field + "){" + str(width - 1) + "}"
    if sep in "%_\\":
        fields = f"length(line) - length(replace(line, {lit(sep)}, '')) = {width - 1}"
    else:  # exactly width - 1 delimiters, by two scans (cheaper than counting them)
        at_least = "%" + (sep + "%") * (width - 1)
        fields = f"line LIKE {lit(at_least)} AND line NOT LIKE {lit(at_least + sep + '%')}"
    # The usual lines skip the regular expression (byte searches, no character counting): those without a
    # quote, those whose only quotes are an empty last field, and those whose only quotes are whole empty
    # fields ("", as DuckDB and Spark write an empty text).
    empty_last = lit(sep + '""')
    last_empty = f"(ends_with(line, {empty_last}) AND line NOT LIKE '%\"%\"%\"%')"
    empty_field = lit(sep + '""' + sep)
    empties = f"NOT contains(replace({lit(sep)} || line || {lit(sep)}, {empty_field}, {lit(sep + sep)}), '\"')"
    plain = (f"CASE WHEN NOT contains(line, '\"') OR {last_empty} OR {empties} THEN {fields} "
             f"AND NOT contains(line, chr(13)) ELSE regexp_full_match(line, {lit(record)}) END")
    return f"SELECT coalesce(bool_and({plain}), true) FROM {lines} WHERE line IS NOT NULL AND line <> ''"


def _select(kind: str, col: dict, outcome: str, error_code: str, ok: str, reader: str, *, calls_text: bool,
            calls: str | None = None) -> str:
    if kind == CALLS:
        cols = (f"{_D.trim(col['request_id'])} AS request_id, {col['account']} AS account, {col['api']} AS api, "
                f"{col['timestamp']} AS ts")
    else:
        if calls is None:
            calls = count_of_text(_D, _D.trim(col["calls"])) if calls_text else col["calls"]
        cols = f"{col['account']} AS account, {col['period']} AS period, {col['api']} AS api, {calls} AS calls"
    return f"SELECT {cols}, {outcome} AS outcome, {error_code} AS error_code, {ok} AS input_ok FROM {reader}"


def _json_projection(s: Source, buffer: str = "") -> str:
    # Lines, not DuckDB's JSON reader: the checks need each line as written (its length, its nesting),
    # and a line no JSON text can hold (a raw control character) fails the read, for the row pass.
    lines = (f"read_csv({lit(s.path)}, header = false, auto_detect = false, delim = '\x01', quote = '', "
             f"escape = '', columns = {{'line': 'VARCHAR'}}, compression = '{'gzip' if s.gzip else 'none'}', "
             f"max_line_size = {MAX_ROW_BYTES}, strict_mode = true{buffer})")
    nesting = "length(line) - length(replace(replace(line, '[', ''), '{', ''))"
    reader = (f"(SELECT TRY_CAST(line AS JSON) AS json, {nesting} <= {_NESTING} AS shallow FROM {lines} "
              f"WHERE line IS NOT NULL AND trim(line) <> '')")
    fields = [*REQUIRED[s.kind], "outcome", "error_code"]

    def kind_of(f):
        return f"json_type(json, '$.{f}')"

    text = {f: f"CASE WHEN {kind_of(f)} = 'VARCHAR' THEN json ->> '$.{f}' END" for f in fields}
    checks = ["shallow", "json IS NOT NULL", "json_type(json) = 'OBJECT'",
              "len(json_keys(json)) = len(list_distinct(json_keys(json)))"]
    checks += [f"coalesce({kind_of(f)} IN ('VARCHAR', 'NULL'), true)" for f in fields if f != "calls"]
    calls = None
    if s.kind == AGGREGATED:
        raw = "(json ->> '$.calls')"
        calls = (f"CASE WHEN {kind_of('calls')} IN ('UBIGINT', 'BIGINT', 'VARCHAR') "
                 f"THEN {count_of_text(_D, _D.trim(raw))} END")
    error_code = f"CASE WHEN json_exists(json, '$.error_code') THEN coalesce({text['error_code']}, '') END"
    return _select(s.kind, text, text["outcome"], error_code, "coalesce(" + " AND ".join(checks) + ", false)",
                   reader, calls_text=False, calls=calls)


def parquet_schema(con, source: Source) -> dict[str, str]:
    """Column name (lowercased) → DuckDB type of a Parquet file; a clear error when it is not one."""
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM read_parquet({lit(source.staged or source.path)})").fetchall()
    except duckdb.Error as exc:
        raise RatecardError(f"{source.name}: cannot read the Parquet file: {_first_line(exc)}") from None
    types = ParquetTypes({name.strip().lower(): str(kind) for name, kind, *_ in described})
    types.real = {name.strip().lower(): name for name, *_ in described}
    return types


class ParquetTypes(dict):
    """Column name (lowercased, stripped) → type; `real` keeps each column's name as the file spells it."""

    real: dict[str, str]


def _parquet_relation(source: Source, types: dict, *, row_number: bool = False) -> str:
    """The file's known columns under their names as the checks know them (a header-like name such as
    " Account " is matched as a CSV header is: spaces and case aside)."""
    real = getattr(types, "real", {})
    renamed = [f"{_D.ident(real.get(n, n).replace(chr(34), chr(34) * 2))} AS {_D.ident(n)}"
               for n in types if n in KNOWN]
    if row_number:
        renamed.append("file_row_number")
    options = ", file_row_number = true" if row_number else ""
    return f"(SELECT {', '.join(renamed)} FROM read_parquet({lit(source.path)}{options}))"


def parquet_source(con, source: Source, kind: str | None) -> tuple[Source, dict]:
    types = parquet_schema(con, source)
    names = list(types)
    for n in KNOWN.intersection(names):
        if names.count(n) > 1:
            raise RatecardError(f"{source.name}: column {n!r} appears twice; expected each column once")
    fits = [k for k in ([kind] if kind else (AGGREGATED, CALLS)) if set(names) >= set(REQUIRED[k])]
    if not fits:
        raise RatecardError(f"{source.name}: unrecognised Parquet columns {', '.join(names)}; {EXPECTED}")
    kind = fits[0]
    ts = types.get("timestamp") or ""
    if kind == CALLS and (ts == "TIMESTAMP" or ts.startswith("TIMESTAMP_")):
        raise RatecardError(f"{source.name}: column timestamp is a {ts} without a time zone, so the billing period "
                            "of its calls is unknown; expected TIMESTAMP WITH TIME ZONE (UTC-adjusted) or ISO 8601 "
                            "text with a UTC offset")
    found = Source(source.name, source.path, "parquet", kind, False, tuple(n for n in names if n in KNOWN),
                   source.identity, staged=source.staged)
    return found, types


def _parquet_column(types: dict, name: str) -> tuple[str, str]:
    """(text expression, clean condition) of a Parquet column the checks read as text."""
    kind = types.get(name)
    q = _D.ident(name)
    if kind is None:
        return "CAST(NULL AS VARCHAR)", "true"
    if kind in _TEXT_TYPES:
        return q, "true"
    if kind in _INSTANT_TYPES:
        return _instant_text(q), "true"
    return f"CAST({q} AS VARCHAR)", f"{q} IS NULL"  # not text: the diagnosing pass names it


def parquet_calls(types: dict) -> str:
    kind = types.get("calls", "")
    q = _D.ident("calls")
    if kind in _INTEGER_TYPES:
        return f"CASE WHEN {q} BETWEEN 0 AND {10**15} THEN CAST({q} AS HUGEINT) END"
    if kind in ("DOUBLE", "FLOAT") or kind.startswith("DECIMAL"):
        # pandas writes whole numbers as 1000.0: exact below 2**53, and a count is at most 10**15.
        return f"CASE WHEN {q} = trunc({q}) AND {q} BETWEEN 0 AND {10**15} THEN CAST({q} AS HUGEINT) END"
    if kind in _TEXT_TYPES:
        return count_of_text(_D, _D.trim(q))
    return "CAST(NULL AS HUGEINT)"


def _instant_text(q: str) -> str:
    # strftime truncates nanoseconds to microseconds; a cast to TIMESTAMPTZ would round 15:59:59.9999999
    # up into the next second, and so a call at a month's last instant into the next month.
    return f"strftime(timezone('UTC', {q}), '%Y-%m-%dT%H:%M:%S.%fZ')"


def _parquet_projection(s: Source, types: dict) -> str:
    reader = _parquet_relation(s, types)
    fields = [f for f in REQUIRED[s.kind] if f != "calls"] + ["outcome"]
    text, oks = {}, []
    for f in fields:
        text[f], ok = _parquet_column(types, f)
        oks.append(ok)
    if "error_code" in types:
        expr, ok = _parquet_column(types, "error_code")
        error_code = f"coalesce({expr}, '')"
        oks.append(ok)
    else:
        error_code = "CAST(NULL AS VARCHAR)"
    calls = parquet_calls(types) if s.kind == AGGREGATED else None
    return _select(s.kind, text, text["outcome"], error_code, " AND ".join(oks), reader, calls_text=False,
                   calls=calls)


def parquet_rows(con, source: Source, types: dict):
    """(row number, raw text, values) of every row of a Parquet file, for the diagnosing pass."""
    names = [n for n in types if n in KNOWN]
    exprs = []
    for n in names:
        q = _D.ident(n)
        if types[n] in _INSTANT_TYPES:
            exprs.append(_instant_text(q))
        elif types[n] in ("DOUBLE", "FLOAT"):
            exprs.append(f"CAST({q} AS VARCHAR)")  # as text: the value as written, never a Python float
        else:
            exprs.append(q)
    sql = (f"SELECT file_row_number + 1, {', '.join(exprs)} FROM {_parquet_relation(source, types, row_number=True)} "
           "ORDER BY file_row_number")
    cursor = con.cursor()
    cursor.execute(sql)
    while batch := cursor.fetchmany(10_000):
        for number, *values in batch:
            record = dict(zip(names, values))
            yield number, ",".join("" if v is None else str(v) for v in values), record


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# -- running -----------------------------------------------------------------------------------------------


def run_fast(con, rules, kind: str, period, projections: list[str], table: str, *,
             ranged: str | None = None, budgets: tuple[int, int] | None = None) -> bool:
    """Pass 1: the compiled query over every file of one kind into `table`; True when all is clean.
    `ranged` (the engine's whole share of the cap) runs it a range of accounts at a time within the
    small `budgets` (`ranges.run_ranged`: flat memory in accounts), and again within the whole share
    should they not be enough.

    False when the engine could not read a file as it stands (a malformed row) or a group is not clean:
    then the diagnosing pass decides."""
    union = "(" + " UNION ALL ".join(f"({p})" for p in projections) + ")"
    try:
        if ranged:
            from .ranges import limit, run_ranged

            try:
                run_ranged(con, rules, kind, period, union, table, budgets)
            except duckdb.OutOfMemoryException:
                limit(con, ranged)  # an input the budget cannot hold (very long lines, many files at once)
                run_ranged(con, rules, kind, period, union, table)
        else:
            query = compile_usage(rules, kind, period=period, source=union, projected=True).sql
            con.execute(f"CREATE OR REPLACE TABLE {table} AS {query}")
    except duckdb.OutOfMemoryException as exc:
        raise _resource_error(exc) from None
    except duckdb.Error as exc:
        spill = con.execute("SELECT current_setting('temp_directory')").fetchone()[0]
        if isinstance(exc, duckdb.IOException) and spill and spill in str(exc):
            raise _resource_error(exc) from None
        return False  # a file as it stands cannot be read whole: the row-numbered pass says why
    return con.execute(f"SELECT coalesce(bool_and(clean), true) FROM {table}").fetchone()[0]


def _resource_error(exc) -> RatecardError:
    return RatecardError(f"the usage engine ran out of room: {_first_line(exc)}; raise --memory-limit or free "
                         "disk space in the spill directory (--spill-dir)")


def fast_counts(con, table: str, kind: str) -> dict:
    rows, calls, rows_in, calls_in = con.execute(
        f"SELECT coalesce(sum(\"rows\"), 0), coalesce(sum(calls), 0), "
        f"coalesce(sum(\"rows\") FILTER (WHERE in_period), 0), coalesce(sum(calls) FILTER (WHERE in_period), 0) "
        f"FROM {table}").fetchone()
    rows, calls, rows_in, calls_in = int(rows), int(calls), int(rows_in), int(calls_in)
    if kind == CALLS:  # one call per request id; the other copies are duplicates
        return dict(rows_read=rows, rows_accepted=calls_in, rows_duplicate=rows - calls,
                    rows_out_of_period=calls - calls_in, calls_read=rows, calls_accepted=calls_in,
                    calls_duplicate=rows - calls, calls_out_of_period=calls - calls_in)
    return dict(rows_read=rows, rows_accepted=rows_in, rows_out_of_period=rows - rows_in, calls_read=calls,
                calls_accepted=calls_in, calls_out_of_period=calls - calls_in)


def _texts(*values) -> tuple:
    """Text values as JSON strings for the scratch file: no raw line break or carriage return reaches
    DuckDB's CSV reader, which cannot read one inside a quoted field reliably; NULL stays empty."""
    return tuple(None if v is None else json.dumps(_valid(v)) for v in values)


def _valid(text: str) -> str:
    # A lone surrogate (JSON's "\ud800") cannot be written as UTF-8: shown escaped, never a traceback.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def run_rows(con, rules, kind: str, period, sources: list[Source], parquet_types: dict, scratch: str,
             table: str) -> tuple[dict, list[tuple]]:
    """Pass 2: every row checked in order, with its line number; SQL settles duplicates and sums.

    Returns the reconciliation counts and the bad rows as (source index, line, reason, code, raw, account,
    other accounts held with it)."""
    checker = RowChecker(rules, period)
    path = os.path.join(scratch, f"{table}.csv")
    pos = 0
    with open(path, "w", encoding="utf-8", newline="") as out:
        write = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\n").writerow
        for index, source in enumerate(sources):
            rows = (parquet_rows(con, source, parquet_types[index]) if source.format == "parquet"
                    else records(source))
            for line, raw, values in rows:
                pos += 1
                status, rid, account, p, api, outcome, calls, bad = checker.check(kind, values, source.decimal_comma)
                if bad is None:
                    write((pos, index, line, *_texts(rid, status, account, p, api, outcome), calls,
                           *_texts(None, None, None, None)))
                else:
                    shown = values.get("account") if isinstance(values, dict) else None
                    shown = shown.strip() if isinstance(shown, str) else ""
                    write((pos, index, line, *_texts(rid, BAD, None, None, None, None),
                           calls if kind != CALLS else 1, *_texts(bad.code, bad.reason, raw, shown)))
    texts = ("rid", "status", "account", "period", "api", "outcome", "code", "reason", "raw", "who")
    columns = ("{'pos': 'BIGINT', 'src': 'BIGINT', 'line': 'BIGINT', "
               + ", ".join(f"'{t}': 'VARCHAR'" for t in texts[:6]) + ", 'calls': 'HUGEINT', "
               + ", ".join(f"'{t}': 'VARCHAR'" for t in texts[6:]) + "}")
    decoded = ", ".join(f"CAST({t} AS JSON) ->> '$' AS {t}" for t in texts)
    con.execute(f"CREATE OR REPLACE TABLE {table}_rows AS SELECT pos, src, line, calls, {decoded} "
                f"FROM read_csv({lit(path)}, header = false, auto_detect = false, delim = ',', quote = '\"', "
                f"escape = '\"', new_line = '\\n', columns = {columns}, max_line_size = {8 * MAX_ROW_BYTES})")
    os.unlink(path)
    # A row repeating a request id that an earlier counted row (accepted or out of period) claimed
    # is a duplicate, whatever else is wrong with it; a rejected row claims nothing. A copy that is
    # itself countable but names another account is no copy: one request is one call of one account,
    # so it is rejected, never billed to the first account in silence.
    con.execute(f"""CREATE OR REPLACE TABLE {table}_final AS
        WITH claims AS (SELECT rid, min(pos) AS first FROM {table}_rows
                        WHERE rid IS NOT NULL AND status <> '{BAD}' GROUP BY rid),
        owners AS (SELECT c.rid, c.first, o.account AS owner, o.src AS owner_src, o.line AS owner_line
                   FROM claims AS c JOIN {table}_rows AS o ON o.pos = c.first)
        SELECT r.*, w.owner, w.owner_src, w.owner_line,
               CASE WHEN w.first IS NOT NULL AND r.pos > w.first
                    THEN CASE WHEN r.status <> '{BAD}' AND r.account <> w.owner THEN '{BAD}' ELSE 'duplicate' END
                    ELSE r.status END AS final
        FROM {table}_rows AS r LEFT JOIN owners AS w ON r.rid = w.rid""")
    counts = {}
    for final, n, calls in con.execute(f"SELECT final, count(*), coalesce(sum(calls), 0) FROM {table}_final "
                                       "GROUP BY final").fetchall():
        name = {"ok": "accepted", OUT: "out_of_period", BAD: "rejected", "duplicate": "duplicate"}[final]
        counts[f"rows_{name}"] = int(n)
        counts[f"calls_{name}"] = int(calls)
    counts["rows_read"] = sum(v for k, v in counts.items() if k.startswith("rows_"))
    counts["calls_read"] = sum(v for k, v in counts.items() if k.startswith("calls_"))
    con.execute(f"""CREATE OR REPLACE TABLE {table} AS
        SELECT account, period, api, outcome, CAST(sum(calls) AS HUGEINT) AS calls, true AS in_period
        FROM {table}_final WHERE final = 'ok' GROUP BY account, period, api, outcome""")
    rows = con.execute(f"SELECT src, line, reason, code, raw, who, status, rid, account, owner, owner_src, owner_line "
                       f"FROM {table}_final WHERE final = '{BAD}' ORDER BY pos").fetchall()
    conflicts = [(r[0], r[1]) for r in rows if r[6] != BAD]
    raw_of = _raw_lines(con, sources, parquet_types, conflicts) if conflicts else {}
    bad = [(src, line, reason, code, raw, who, ()) if status == BAD else
           (src, line, f"request id {rid!r} was counted for account {owner!r} "
                       f"({sources[owner_src].name}:{owner_line}), but this copy names account {account!r}: "
                       "one request is one call of one account; fix the account of the wrong copy",
            "conflicting-request-id", raw_of.get((src, line), ""), account, (owner,))
           for src, line, reason, code, raw, who, status, rid, account, owner, owner_src, owner_line in rows]
    con.execute(f"DROP TABLE {table}_rows")
    con.execute(f"DROP TABLE {table}_final")
    return counts, bad


def _raw_lines(con, sources: list[Source], parquet_types: dict, wanted: list[tuple[int, int]]) -> dict:
    """The text of a few rows, by (source index, line), read again: only rows found wrong by the
    SQL step (a request id's copy naming another account) need it, so pass 2 does not keep every row's text."""
    out: dict[tuple[int, int], str] = {}
    for index in sorted({src for src, _ in wanted}):
        lines = {line for src, line in wanted if src == index}
        source = sources[index]
        rows = parquet_rows(con, source, parquet_types[index]) if source.format == "parquet" else records(source)
        for line, raw, _ in rows:
            if line in lines:
                out[(index, line)] = raw
                if len(out) == len(wanted):
                    return out
    return out


__all__ = ["connect", "projection", "parquet_source", "run_fast", "fast_counts", "run_rows", "calls_or_zero"]
