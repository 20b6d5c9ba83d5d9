"""Apache Spark, the engine past one machine: the same compiled query (Spark SQL dialect) over files
Spark reads from any path it can reach; the aggregated result comes back to the local engine, which
streams accounts out and, should a group not be clean, runs the row-numbered pass.

Imported only with ``--engine spark`` (pyspark is the optional extra ``ratecard[spark]``).
"""

from __future__ import annotations

import os

from ..errors import RatecardError
from .compile import SparkDialect, compile_usage, count_of_text
from .files import AGGREGATED, CALLS, KNOWN, REQUIRED, Source

DEFAULT_MASTER = "local[*]"
_D = SparkDialect()
_sessions: dict = {}


def session(master: str | None):
    """The SparkSession of this process for `master` (one; Spark allows one active context)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise RatecardError("--engine spark needs pyspark: pip install 'ratecard[spark]' (and Java 17)") from None
    master = master or DEFAULT_MASTER
    found = _sessions.get(master)
    if found is None:
        try:
            found = (SparkSession.builder.master(master).appName("ratecard usage")
                     .config("spark.sql.session.timeZone", "UTC")
                     .config("spark.ui.enabled", "false")
                     .config("spark.ui.showConsoleProgress", "false")
                     .config("spark.sql.shuffle.partitions", str(max(2, (os.cpu_count() or 2) * 2)))
                     .getOrCreate())
        except Exception as exc:  # noqa: BLE001 - py4j and JVM start-up errors, reported plainly
            raise RatecardError(f"cannot start Spark at {master}: {str(exc).strip().splitlines()[0]}") from None
        found.sparkContext.setLogLevel("ERROR")
        _sessions[master] = found
    return found


def _view(spark, source: Source, index: int, types: dict) -> str:
    """Register one file as a view with the engine's internal columns; returns the view's name."""
    name = f"ratecard_input_{index}"
    if source.format == "csv":
        from pyspark.sql.types import StringType, StructField, StructType

        schema = StructType([StructField(f"c{i}", StringType()) for i in range(len(source.columns))])
        frame = spark.read.csv(source.path, schema=schema, header=True, sep=source.delimiter, quote='"', escape='"', multiLine=True,
                               mode="FAILFAST", enforceSchema=True, ignoreLeadingWhiteSpace=False,
                               ignoreTrailingWhiteSpace=False, nullValue="\u0000\u0001", emptyValue="")
        frame.createOrReplaceTempView(f"{name}_raw")
        col = {n: f"c{i}" for i, n in enumerate(source.columns) if n in KNOWN}
        text = {n: col.get(n, "CAST(NULL AS STRING)") for n in (*REQUIRED[source.kind], "outcome")}
        error_code = f"coalesce({col['error_code']}, '')" if "error_code" in col else "CAST(NULL AS STRING)"
        calls = count_of_text(_D, _D.trim(col["calls"])) if source.kind == AGGREGATED else None
        ok = "true"
    elif source.format == "parquet":
        spark.read.parquet(source.path).createOrReplaceTempView(f"{name}_raw")
        text, oks = {}, []
        for n in (*[f for f in REQUIRED[source.kind] if f != "calls"], "outcome"):
            text[n], check = _parquet_text(types, n)
            oks.append(check)
        if "error_code" in types:
            expr, check = _parquet_text(types, "error_code")
            error_code, ok_ec = f"coalesce({expr}, '')", check
            oks.append(ok_ec)
        else:
            error_code = "CAST(NULL AS STRING)"
        calls = _parquet_calls(types) if source.kind == AGGREGATED else None
        ok = " AND ".join(oks)
    elif source.format == "jsonl":
        text, error_code, calls, ok = _json_columns(spark, source, name)
    else:
        raise RatecardError(f"{source.name}: --engine spark reads CSV, JSON Lines and Parquet, not {source.format}")
    if source.kind == CALLS:
        cols = (f"{_D.trim(text['request_id'])} AS request_id, {text['account']} AS account, {text['api']} AS api, "
                f"{text['timestamp']} AS ts")
    else:
        cols = f"{text['account']} AS account, {text['period']} AS period, {text['api']} AS api, {calls} AS calls"
    spark.sql(f"SELECT {cols}, {text['outcome']} AS outcome, {error_code} AS error_code, {ok} AS input_ok "
              f"FROM {name}_raw").createOrReplaceTempView(name)
    return name


# A record Spark reads without the row pass: one flat JSON object whose values are strings without
# escapes, null or whole numbers, its keys plain names. Anything else (an escape, a nested value, a
# fraction, a key named twice, bytes that are not UTF-8) is left to the row-numbered pass, which
# reads it exactly as the DuckDB engine does: this check only ever sends more rows there, never fewer.
_STRING = r'"[^"\\\x00-\x1f]*"'
_VALUE = rf"(?:{_STRING}|null|-?(?:0|[1-9][0-9]*))"
_WS = r"[ \t\r]*"  # JSON's whitespace within a line (a regular expression's \s has more)
_MEMBER = rf'"[A-Za-z0-9_]+"{_WS}:{_WS}{_VALUE}{_WS}'
_FLAT_OBJECT = rf"{_WS}\{{{_WS}(?:{_MEMBER}(?:,{_WS}{_MEMBER})*)?\}}{_WS}"


def _json_columns(spark, source: Source, name: str) -> tuple[dict, str, str | None, str]:
    """The text columns of a JSON Lines file, as `duck._json_projection` reads them, for the records
    it can read plainly (`_FLAT_OBJECT`); any other line makes its group not clean."""
    from .duck import _NESTING
    from .files import MAX_ROW_BYTES

    # Lines end at \n only, as the DuckDB engine and the row pass split them (Spark's default also
    # splits at a lone \r); a CRLF line keeps its \r, which JSON reads as whitespace.
    spark.read.option("lineSep", "\n").text(source.path).createOrReplaceTempView(f"{name}_lines")
    spark.sql(f"SELECT value AS line, CASE WHEN {_D.full_match('value', _FLAT_OBJECT)} THEN "
              f"json_object_keys(value) END AS keys FROM {name}_lines WHERE trim(value) <> ''"
              ).createOrReplaceTempView(f"{name}_raw")
    fields = [*REQUIRED[source.kind], "outcome", "error_code"]

    def value_is(f: str, token: str) -> str:
        return _D.search("line", f'"{f}"{_WS}:{_WS}{token}')

    text = {f: f"CASE WHEN {value_is(f, chr(34))} THEN get_json_object(line, '$.{f}') END" for f in fields}
    checks = ["keys IS NOT NULL", "is_valid_utf8(line)", f"octet_length(line) <= {MAX_ROW_BYTES}",
              f"length(line) - length(replace(replace(line, '[', ''), '{{', '')) <= {_NESTING}",
              "size(keys) = size(array_distinct(keys))"]
    checks += [f"NOT {value_is(f, '-?[0-9]')}" for f in fields if f != "calls"]
    calls = None
    if source.kind == AGGREGATED:
        # A count as the DuckDB engine takes it: a whole number, or text holding one.
        number_or_text = value_is("calls", '(?:"|-?[0-9])')
        raw = _D.trim("get_json_object(line, '$.calls')")
        calls = f"CASE WHEN {number_or_text} THEN {count_of_text(_D, raw)} END"
    error_code = f"CASE WHEN array_contains(keys, 'error_code') THEN coalesce({text['error_code']}, '') END"
    ok = "coalesce(" + " AND ".join(checks) + ", false)"
    return text, error_code, calls, ok


def _parquet_text(types: dict, name: str) -> tuple[str, str]:
    kind = types.get(name)
    q = _D.ident(name)
    if kind is None:
        return "CAST(NULL AS STRING)", "true"
    if kind == "VARCHAR":
        return q, "true"
    if kind == "TIMESTAMP WITH TIME ZONE":
        return f"date_format({q}, \"yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'\")", "true"
    return f"CAST({q} AS STRING)", f"{q} IS NULL"


def _parquet_calls(types: dict) -> str:
    kind = types.get("calls", "")
    q = _D.ident("calls")
    if kind in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT"):
        return f"CASE WHEN {q} BETWEEN 0 AND {10**15} THEN CAST({q} AS DECIMAL(38,0)) END"
    if kind in ("DOUBLE", "FLOAT") or kind.startswith("DECIMAL"):
        return f"CASE WHEN {q} = floor({q}) AND {q} BETWEEN 0 AND {10**15} THEN CAST({q} AS DECIMAL(38,0)) END"
    if kind == "VARCHAR":
        return count_of_text(_D, _D.trim(q))
    return "CAST(NULL AS DECIMAL(38,0))"


def run_fast(reader, con, kind: str, sources: list[Source], table: str) -> bool:
    """Pass 1 on Spark: the compiled query over the files; the result lands in the local `table`."""
    from . import duck

    for s in sources:
        if s.gzip and not s.path.endswith(".gz"):
            return False  # Spark decompresses by file name only: the local row pass reads it
    spark = reader.spark or session(reader.master)
    types = [duck.parquet_schema(con, s) if s.format == "parquet" else {} for s in sources]
    views = [_view(spark, s, i, types[i]) for i, s in enumerate(sources)]
    union = "(" + " UNION ALL ".join(f"SELECT * FROM {v}" for v in views) + ")"
    query = compile_usage(reader.rules, kind, period=reader.period, dialect_name="spark", source=union,
                          projected=True).sql
    out = os.path.join(reader._scratch, f"spark-{table}")
    try:
        spark.sql(query).write.mode("overwrite").parquet(out)
    except Exception as exc:  # noqa: BLE001 - a malformed row fails the job (FAILFAST): the row pass says why
        if "FAILFAST" in str(exc) or "Malformed" in str(exc) or "SparkException" in type(exc).__name__:
            return False
        raise RatecardError(f"the Spark job failed: {str(exc).strip().splitlines()[0]}") from None
    con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT account, period, api, outcome, category, in_period, "
                f"CAST(calls AS HUGEINT) AS calls, CAST(billable_calls AS HUGEINT) AS billable_calls, "
                f"CAST(\"rows\" AS HUGEINT) AS \"rows\", clean FROM read_parquet({duck.lit(out + '/*.parquet')})")
    return con.execute(f"SELECT coalesce(bool_and(clean), true) FROM {table}").fetchone()[0]
