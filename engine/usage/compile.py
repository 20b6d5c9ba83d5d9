"""The usage rules of a rule set, compiled into one aggregation query (DuckDB or Spark SQL).

Everything the query knows of the product comes from the loaded rule set: which API counts in which
category, which outcomes are billed, what an unknown API is, which dated mapping is in force for
each period, and the time zone a call's period is read in. Nothing of it is written here, so a rule
set never seen before compiles like the shipped ones.

The query reads one input relation (a table, a view, or the engine's file readers) with text
columns, all optional but those of the kind:

- call records: ``request_id, account, api, timestamp[, outcome][, error_code]``;
- aggregated usage: ``account, period, api, calls[, outcome][, error_code]``.

It returns aggregated usage, one row per account, period, API and outcome, with the rules' view of
it: ``account, period, api, outcome, category, calls, billable_calls, rows, clean``. A call record
counts once per request id (``rows`` counts the copies read). ``clean`` is false for a group holding
any row ratecard would refuse or cannot be sure of (a malformed value, an unknown API when the rules
say that is an error, no rules in force, copies of one request id that differ): such a group must
not be billed from this output; ratecard then reads the rows one by one and names each bad one.
The checks only ever err towards "not clean", never the other way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ..model import RuleSet, version_at
from ..periods import FIRST_YEAR, LAST_YEAR, next_month
from ..rating import SUCCESS
from .checks import MAX_CALLS
from .files import AGGREGATED, CALLS

DIALECTS = ("duckdb", "spark")
INPUT = "{input}"  # where the input relation goes in a printed query

# What Python's str.strip() removes: the query trims values exactly as the diagnosing pass does.
WHITESPACE = (9, 10, 11, 12, 13, 28, 29, 30, 31, 32, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029,
              0x202F, 0x205F, 0x3000)
_CONTROL = r"[\x{00}-\x{1f}\x{7f}-\x{9f}\x{200b}-\x{200f}\x{2028}-\x{202e}\x{feff}]"
# The timestamps the query reads itself; any other spelling goes to the diagnosing pass.
_TIMESTAMP = (r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[T ]([01][0-9]|2[0-3]):[0-5][0-9]"
              r"(:[0-5][0-9](\.[0-9]{1,6})?)?(Z|[+-]([01][0-9]|2[0-3]):?[0-5][0-9])")
# A Unix time, in seconds or milliseconds by its number of digits (checks.unix_time says the rule).
_EPOCH_SECONDS, _EPOCH_MILLIS = r"[0-9]{9,10}", r"[0-9]{12,13}"
_PERIOD = r"[0-9]{4}-(0[1-9]|1[0-2])"
_COUNT = r"[0-9]{1,16}"


class Dialect:
    """How one SQL engine spells the few things that differ."""

    name = "duckdb"
    count_type = "HUGEINT"
    materialized = "MATERIALIZED "  # read twice: computed once

    def lit(self, text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    def regex(self, pattern: str) -> str:
        return self.lit(pattern)

    def ident(self, name: str) -> str:
        return '"' + name + '"'

    def trim(self, x: str) -> str:
        # Most values start and end with a visible ASCII character: only the others pay for the full trim.
        return (f"CASE WHEN ord({x}) BETWEEN 33 AND 126 AND ord(right({x}, 1)) BETWEEN 33 AND 126 THEN {x} "
                f"ELSE trim({x}, {self.whitespace()}) END")

    def whitespace(self) -> str:
        return " || ".join(f"chr({c})" for c in WHITESPACE)

    def full_match(self, x: str, pattern: str) -> str:
        return f"regexp_full_match({x}, {self.regex(pattern)})"

    def search(self, x: str, pattern: str) -> str:
        return f"regexp_matches({x}, {self.regex(pattern)})"

    def instant(self, x: str) -> str:
        return f"TRY_CAST({x} AS TIMESTAMPTZ)"

    def epoch_seconds(self, digits: str) -> str:
        return f"to_timestamp(CAST({digits} AS BIGINT))"

    def epoch_millis(self, digits: str) -> str:
        # Whole seconds plus the milliseconds as an interval: exact, and in no session's time zone.
        return f"(to_timestamp(CAST({digits} AS BIGINT) // 1000) + to_milliseconds(CAST({digits} AS BIGINT) % 1000))"

    def local_month(self, instant: str, zone: str) -> str:
        # From the 3rd to the 26th of a UTC month an instant is in that month in every zone (no UTC
        # offset reaches 48 hours): only the days near a month's turn pay for the zone's rules.
        utc = f"make_timestamp(epoch_us({instant}))"
        return (f"CASE WHEN day({utc}) BETWEEN 3 AND 26 THEN date_trunc('month', {utc}) "
                f"ELSE date_trunc('month', timezone({self.lit(zone)}, {instant})) END")

    def id_hash(self, x: str) -> str:
        return f"hash({x})"

    def month_text(self, month: str) -> str:
        return f"strftime({month}, '%Y-%m')"

    def year(self, month: str) -> str:
        return f"year({month})"

    def same(self, columns: list[str]) -> str:
        packed = "struct_pack(" + ", ".join(f"{c} := {c}" for c in columns) + ")"
        return f"min({packed}) = max({packed})"

    def count(self, x: str) -> str:
        return f"TRY_CAST({x} AS {self.count_type})"


class SparkDialect(Dialect):
    name = "spark"
    count_type = "DECIMAL(38,0)"
    materialized = ""

    def lit(self, text: str) -> str:
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

    def ident(self, name: str) -> str:
        return "`" + name + "`"

    def trim(self, x: str) -> str:
        return f"trim(BOTH {self.whitespace()} FROM {x})"

    def whitespace(self) -> str:
        return "'" + "".join(f"\\u{c:04x}" for c in WHITESPACE) + "'"

    def full_match(self, x: str, pattern: str) -> str:
        return f"({x} RLIKE {self.regex('^(' + pattern + ')$')})"

    def search(self, x: str, pattern: str) -> str:
        return f"({x} RLIKE {self.regex(pattern)})"

    def instant(self, x: str) -> str:
        return f"try_cast({x} AS TIMESTAMP)"  # an instant in Spark; the session time zone is UTC

    def epoch_seconds(self, digits: str) -> str:
        return f"timestamp_seconds(CAST({digits} AS BIGINT))"

    def epoch_millis(self, digits: str) -> str:
        return f"timestamp_millis(CAST({digits} AS BIGINT))"

    def local_month(self, instant: str, zone: str) -> str:
        return f"date_trunc('MONTH', from_utc_timestamp({instant}, {self.lit(zone)}))"

    def id_hash(self, x: str) -> str:
        return f"xxhash64({x})"

    def month_text(self, month: str) -> str:
        return f"date_format({month}, 'yyyy-MM')"

    def same(self, columns: list[str]) -> str:
        packed = "named_struct(" + ", ".join(f"'{c}', {c}" for c in columns) + ")"
        return f"min({packed}) = max({packed})"

    def count(self, x: str) -> str:
        return f"try_cast({x} AS {self.count_type})"


def dialect(name: str) -> Dialect:
    if name == "duckdb":
        return Dialect()
    if name == "spark":
        return SparkDialect()
    raise ValueError(f"unknown SQL dialect {name!r}; expected one of: {', '.join(DIALECTS)}")


# -- the rules, as the query sees them ----------------------------------------------------------------


def _month(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def first_periods(versions) -> list[str]:
    """For each version (oldest first), the first period it is in force for (see `model.version_at`)."""
    out = []
    for i, v in enumerate(versions):
        day = v.effective_from
        out.append(_month(day if i == 0 or day.day == 1 else next_month(day)))
    return out


def _version_case(d: Dialect, period: str, versions) -> str:
    """The index of the version in force for `period` (text YYYY-MM), NULL before the first."""
    starts = first_periods(versions)
    arms = [f"WHEN {period} >= {d.lit(start)} THEN {i}" for i, start in reversed(list(enumerate(starts)))]
    return "CASE " + " ".join(arms) + " END"


@dataclass(frozen=True)
class Compiled:
    sql: str
    dialect: str


def _rules_ok(d: Dialect, rules: RuleSet, period: str) -> str:
    """Rules of all three kinds are in force for the period."""
    first = max(first_periods(vs)[0] for vs in (rules.pricing, rules.mappings, rules.policies))
    return f"{period} >= {d.lit(first)}"


def _mapping_values(d: Dialect, rules: RuleSet) -> str:
    rows = []
    for v, mapping in enumerate(rules.mappings):
        for rule in mapping.apis.values():
            rows.append(f"({v}, {d.lit(rule.api)}, {d.lit(rule.category)}, {'true' if rule.billable else 'false'})")
    rows = rows or ["(-1, NULL, NULL, false)"]
    return "(VALUES " + ",\n    ".join(rows) + ") AS m(version, api, category, billable_api)"


def _billed(d: Dialect, rules: RuleSet, v: str, outcome: str) -> str:
    """Whether the outcome of a group is billed by mapping version v (for a billable API)."""
    arms = []
    for i, mapping in enumerate(rules.mappings):
        outcomes = sorted(mapping.billable_error_codes | ({SUCCESS} if mapping.success_billable else set()))
        test = f"{outcome} IN ({', '.join(d.lit(o) for o in outcomes)})" if outcomes else "false"
        if mapping.unknown_outcome == "billable":
            test = f"({test} OR {outcome} IS NULL)"
        arms.append(f"WHEN {i} THEN {test}")
    return f"CASE {v} " + " ".join(arms) + " ELSE false END"


def _unknown_refused(rules: RuleSet, v: str) -> str:
    refusing = [str(i) for i, m in enumerate(rules.mappings) if m.unknown_api == "error"]
    return f"{v} IN ({', '.join(refusing)})" if refusing else "false"


def _period_of_months(d: Dialect, rules: RuleSet, zones: list[str]) -> str:
    """The period of a call from its local month in each zone (newest policy's zone first)."""
    texts = [d.month_text(f"m{i}") for i in range(len(zones))]
    if len(zones) == 1:
        return texts[0]
    policy_v = lambda p: _version_case(d, p, rules.policies)  # noqa: E731
    arms = []
    for i, zone in enumerate(zones):
        zone_of = "CASE " + " ".join(f"WHEN ({policy_v(texts[i])}) = {v} THEN {d.lit(p.time_zone)}"
                                     for v, p in enumerate(rules.policies)) + " END"
        arms.append(f"WHEN ({zone_of}) IS NULL OR ({zone_of}) = {d.lit(zone)} THEN {texts[i]}")
    return "CASE " + " ".join(arms) + f" ELSE {texts[0]} END"


# -- the query ---------------------------------------------------------------------------------------------


def compile_usage(rules: RuleSet, kind: str, *, period: str | None = None, dialect_name: str = "duckdb",
                  source: str = INPUT, has_outcome: bool = True, has_error_code: bool = True,
                  projected: bool = False) -> Compiled:
    """The aggregation query of `kind` usage for `rules`, reading `source` (a relation).

    `projected` says `source` already has the engine's internal columns (see `input_projection`);
    otherwise the query starts by projecting the input's own columns.
    """
    d = dialect(dialect_name)
    if kind not in (CALLS, AGGREGATED):
        raise ValueError(f"unknown usage kind {kind!r}")
    head = source if projected else f"({input_projection(d, kind, source, has_outcome, has_error_code)})"
    zones = list(dict.fromkeys(p.time_zone for p in reversed(rules.policies)))
    if kind == CALLS:
        stages = _calls_stages(d, head, rules, zones)
    else:
        stages = _aggregated_stages(d, head)
    in_period = f"period = {d.lit(period)}" if period else "true"
    refused = _unknown_refused(rules, "r.v")
    sql = f"""WITH
{stages},
trimmed AS (  -- values trimmed as Python's str.strip() does
  SELECT {d.trim('account')} AS account, {d.trim('api')} AS api, period, {d.trim('outcome')} AS outcome,
         {d.trim('error_code')} AS error_code, calls, copies, ok
  FROM groups),
norm AS (
  SELECT account, api, period,
         CASE WHEN outcome <> '' THEN CASE WHEN lower(outcome) = {d.lit(SUCCESS)} THEN {d.lit(SUCCESS)} ELSE outcome END
              WHEN error_code IS NOT NULL THEN coalesce(nullif(error_code, ''), {d.lit(SUCCESS)})
         END AS outcome,
         calls, copies,
         ok AND account IS NOT NULL AND account <> '' AND NOT {d.search('account', _CONTROL)}
            AND api IS NOT NULL AND api <> '' AS ok
  FROM trimmed),
versioned AS (
  SELECT norm.*, {_version_case(d, 'period', rules.mappings)} AS v, {in_period} AS in_period
  FROM norm),
rated AS (
  SELECT r.account, r.period, r.api, r.outcome, r.calls, r.copies, r.in_period, m.category,
         coalesce(m.billable_api, false) AND {_billed(d, rules, 'r.v', 'r.outcome')} AS billable,
         coalesce(r.ok AND r.period IS NOT NULL AND (NOT r.in_period OR ({_rules_ok(d, rules, 'r.period')}
             AND (m.api IS NOT NULL OR NOT ({refused})))), false) AS ok
  FROM versioned AS r
  LEFT JOIN {_mapping_values(d, rules)}
    ON m.version = r.v AND m.api = r.api)
SELECT account, period, api, outcome, category, in_period,
       CAST(sum(calls) AS {d.count_type}) AS calls,
       CAST(sum(CASE WHEN billable THEN calls ELSE 0 END) AS {d.count_type}) AS billable_calls,
       CAST(sum(copies) AS {d.count_type}) AS {d.ident('rows')},
       bool_and(ok) AS clean
FROM rated
GROUP BY account, period, api, outcome, category, in_period"""
    return Compiled(sql, d.name)


def _calls_stages(d: Dialect, head: str, rules: RuleSet, zones: list[str]) -> str:
    months = ", ".join(f"{d.local_month('instant', z)} AS m{i}" for i, z in enumerate(zones))
    keys = ", ".join(f"m{i}" for i in range(len(zones)))
    # The years a period can have (periods.py): the row checks refuse the others, and so must the query.
    years = " AND ".join(f"{d.year(f'm{i}')} BETWEEN {FIRST_YEAR} AND {LAST_YEAR}" for i in range(len(zones)))
    return f"""src AS (SELECT * FROM {head} AS input),
stamped AS (  -- each row's instant, when its timestamp is spelled in a form the query reads
  SELECT request_id, account, api, outcome, error_code, input_ok AND request_id IS NOT NULL AND request_id <> '' AS ok,
         CASE WHEN {d.full_match('ts', _TIMESTAMP)} THEN {d.instant('ts')}
              WHEN {d.full_match('ts', _EPOCH_SECONDS)} THEN {d.epoch_seconds('ts')}
              WHEN {d.full_match('ts', _EPOCH_MILLIS)} THEN {d.epoch_millis('ts')} END AS instant
  FROM src),
months AS (
  SELECT request_id, account, api, outcome, error_code, ok AND instant IS NOT NULL AS ok, {months}
  FROM stamped),
tuples AS {d.materialized}(  -- copies of a call logged twice are one row here, with the number of copies
  SELECT {d.id_hash('request_id')} AS id, account, api, outcome, error_code, {keys}, count(*) AS copies,
         bool_and(ok) AS ok
  FROM months
  GROUP BY request_id, account, api, outcome, error_code, {keys}),
unique_ids AS (  -- copies of one request id that differ (or two ids of one hash): the rows are read one by one
  SELECT count(DISTINCT id) = count(*) AS unique_ids FROM tuples),
local AS (
  SELECT account, api, outcome, error_code, {keys}, count(*) AS calls, sum(copies) AS copies, bool_and(coalesce(ok, false)) AS ok
  FROM tuples
  GROUP BY account, api, outcome, error_code, {keys}),
groups AS (
  SELECT account, api, outcome, error_code, {_period_of_months(d, rules, zones)} AS period, calls, copies,
         ok AND {years} AND unique_ids AS ok
  FROM local CROSS JOIN unique_ids)"""


def _aggregated_stages(d: Dialect, head: str) -> str:
    return f"""src AS (SELECT * FROM {head} AS input),
raw AS (
  SELECT account, api, outcome, error_code, {d.trim('period')} AS period, sum(calls) AS calls, count(*) AS copies,
         bool_and(input_ok AND calls IS NOT NULL) AS ok
  FROM src
  GROUP BY account, api, outcome, error_code, {d.trim('period')}),
groups AS (
  SELECT account, api, outcome, error_code, CASE WHEN {d.full_match('period', _PERIOD)} THEN period END AS period,
         calls, copies, ok AND {d.full_match('period', _PERIOD)} AND period BETWEEN '{FIRST_YEAR:04d}-01' AND '{LAST_YEAR:04d}-12' AS ok
  FROM raw)"""


def input_projection(d: Dialect, kind: str, relation: str, has_outcome: bool, has_error_code: bool) -> str:
    """The input's text columns as the query reads them (`relation` has the columns of its kind)."""
    outcome = f"CAST({d.ident('outcome')} AS VARCHAR)" if has_outcome else "CAST(NULL AS VARCHAR)"
    if d.name == "spark":
        outcome = outcome.replace("VARCHAR", "STRING")
    # An error_code column present but empty means success: '' keeps that apart from "no column".
    error_code = (f"coalesce(CAST({d.ident('error_code')} AS {_text(d)}), '')" if has_error_code
                  else f"CAST(NULL AS {_text(d)})")
    if kind == CALLS:
        cols = (f"{d.trim(f'CAST(request_id AS {_text(d)})')} AS request_id, "
                f"CAST(account AS {_text(d)}) AS account, CAST(api AS {_text(d)}) AS api, "
                f"CAST({d.ident('timestamp')} AS {_text(d)}) AS ts")
    else:
        calls = f"{d.trim(f'CAST(calls AS {_text(d)})')}"
        cols = (f"CAST(account AS {_text(d)}) AS account, CAST({d.ident('period')} AS {_text(d)}) AS period, "
                f"CAST(api AS {_text(d)}) AS api, {count_of_text(d, calls)} AS calls")
    return f"SELECT {cols}, {outcome} AS outcome, {error_code} AS error_code, true AS input_ok FROM {relation}"


def _text(d: Dialect) -> str:
    return "STRING" if d.name == "spark" else "VARCHAR"


def count_of_text(d: Dialect, text: str) -> str:
    """A count written as text, when it is plainly a whole number within range; else NULL."""
    return (f"CASE WHEN {d.full_match(text, _COUNT)} AND {d.count(text)} <= {MAX_CALLS} "
            f"THEN {d.count(text)} END")
