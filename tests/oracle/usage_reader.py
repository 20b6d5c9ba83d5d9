"""The usage reader ratecard had before the compiled query (kept as the differential tests' oracle).

Deliberate changes since: a whole number written with a zero fraction (``1000.0``, as pandas
writes it; JSON numbers parsed as Decimal, never float) is accepted; a key repeated inside an object
nested in a field ratecard ignores no longer refuses the row (only the record's own fields must be
unique: the compiled query checks those alone, and both passes must agree); a lone surrogate in JSON
text (``"\ud800"``) is a bad row, since no document could be written with it. Issue 14's everyday
inputs: a CSV file's fields may be separated by semicolons or tabs (as its header line shows; a
semicolon file's decimal mark is `,`, so no count in it may hold one); a file may hold one JSON array
of records (each numbered by the line it starts on); a timestamp of digits only is a Unix time, in
seconds (9 or 10 digits) or milliseconds (12 or 13); a count may be written as on the command line
(ratecard.counts: 1,000, 1_000, 5k), and 1.000 is refused as ambiguous.

Usage in: streaming readers for usage files, bad rows, and the reconciliation of a bill run.

Two kinds of usage file, each CSV or JSON Lines, plain or gzip-compressed:

- aggregated usage: ``account, period (YYYY-MM), api, calls[, outcome]``;
- call records: ``request_id, account, api, timestamp[, outcome | error_code]``, one call per row;
  the timestamp is ISO 8601 with a UTC offset, and it falls in the period of its local date in the
  time zone of the rules' settlement policy.

Outcomes: an ``outcome`` column holds ``success`` or an error code, and an empty outcome is
unknown (the rules' ``unknown_outcome`` decides). An ``error_code`` column holds the error code of a
failed call, and an empty one means the call succeeded: that is how call logs record success.
When a row has both, a non-empty outcome wins. Extra columns (or JSON keys) are ignored.

Rows are read one at a time. Memory grows with the totals kept for billing (accounts × periods ×
APIs × outcomes) and, for call records, with the set of distinct request ids seen (see
`UsageReader`), never with the number of rows. In strict mode the bad rows are kept too, since the
run must list every one of them.

Row numbers are physical line numbers, the CSV header being line 1, so that ``FILE:LINE`` opens
the row in an editor. A CSV record spanning lines (a quoted line break) is numbered by its first
line. Blank lines (and lines of only spaces and tabs) are skipped and are not rows.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ratecard.counts import CountError, parse_count
from ratecard.errors import Location, NoRulesInForce, PeriodError, Problem, RatecardError, UsageInvalid
from ratecard.model import RuleSet
from ratecard.periods import parse_period, period_of
from ratecard.rating import SUCCESS, Tariff, UsageItem, tariff
from ratecard.rules import display_path

AGGREGATED, CALLS = "aggregated", "calls"
FORMATS = ("csv", "jsonl", "json")
KINDS = (AGGREGATED, CALLS)

_REQUIRED = {AGGREGATED: ("account", "period", "api", "calls"),
             CALLS: ("request_id", "account", "api", "timestamp")}
_OPTIONAL = ("outcome", "error_code")
_KNOWN = frozenset(_OPTIONAL).union(*_REQUIRED.values())
_EXPECTED = ("expected the columns account, period, api, calls[, outcome] (aggregated usage) or "
             "request_id, account, api, timestamp[, outcome | error_code] (call records)")
_GZIP_MAGIC = b"\x1f\x8b"
_INTEGER = re.compile(r"[+-]?[0-9]+(?:\.0+)?")  # ASCII digits only: str.isdigit() would take '²' or '٣'
STDIN_NAME = "<stdin>"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff]")  # incl. invisible marks
MAX_CALLS = 10**15  # in one row: far beyond any real month, and small enough to price exactly
_SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab"}
_SEPARATED = re.compile(r"[0-9][0-9,_.]*[kKmM]|[0-9]+[,_][0-9,_.]*|[0-9]{1,3}(\.[0-9]{3})+")
_WS = re.compile(r"[ \t\r\n]*")


# -- results ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rejected:
    """A bad row: where it is (file and physical line), why it was refused, and its text as read."""

    file: str
    line: int
    reason: str
    raw: str
    code: str = ""  # a stable name for the class of problem, e.g. "negative-calls"
    account: str = ""  # the row's account, when it could be read
    also: tuple = ()  # other accounts held with it (a request id's copies naming two accounts)

    def problem(self) -> Problem:
        return Problem(Location(self.file, self.line, 0), self.reason, code=self.code)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass(frozen=True, slots=True)
class UsageRow:
    """An accepted row of either kind: the calls of one API by one account in one period."""

    file: str
    line: int
    account: str
    period: str
    api: str
    calls: int
    outcome: str | None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class AccountUsage:
    """One account's usage in one period, ready for ``rate(rules, u.items, u.period, account=u.account)``."""

    account: str
    period: str
    items: tuple[UsageItem, ...]

    @property
    def calls(self) -> int:
        return sum(item.calls for item in self.items)


@dataclass(frozen=True)
class Reconciliation:
    """Where every row and every call read went. Nothing lost, nothing counted twice.

    A rejected row whose calls cannot be read (``calls`` missing or not a number) adds no calls:
    its calls are unknown. Each call record is one call.
    """

    rows_read: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    rows_duplicate: int = 0
    rows_out_of_period: int = 0
    calls_read: int = 0
    calls_accepted: int = 0
    calls_rejected: int = 0
    calls_duplicate: int = 0
    calls_out_of_period: int = 0
    period: str | None = None  # the period filter, when one was given

    @property
    def balanced(self) -> bool:
        return (self.rows_read == self.rows_accepted + self.rows_rejected + self.rows_duplicate
                + self.rows_out_of_period
                and self.calls_read == self.calls_accepted + self.calls_rejected + self.calls_duplicate
                + self.calls_out_of_period
                and all(getattr(self, f.name) >= 0 for f in fields(self) if f.name != "period"))

    def check(self) -> Reconciliation:
        """Prove the sums; a failure here is a bug in ratecard, never a problem of the input."""
        if not self.balanced:
            raise RatecardError("internal error: the usage reconciliation does not add up: " + "; ".join(self.lines()))
        return self

    def lines(self) -> list[str]:
        other = f"out of period {self.period}" if self.period else "out of period"
        return [f"rows: {self.rows_read:,} read = {self.rows_accepted:,} accepted + {self.rows_rejected:,} "
                f"rejected + {self.rows_duplicate:,} duplicate + {self.rows_out_of_period:,} {other}",
                f"calls: {self.calls_read:,} read = {self.calls_accepted:,} accepted + {self.calls_rejected:,} "
                f"rejected + {self.calls_duplicate:,} duplicate + {self.calls_out_of_period:,} {other}"]

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)} | {"balanced": self.balanced}


# -- the reader --------------------------------------------------------------------------------------


class _Bad(Exception):
    """A row fails a check: it becomes a Rejected record, never a traceback."""

    def __init__(self, code: str, reason: str, fields: dict | None = None):
        super().__init__(reason)
        self.code, self.reason = code, reason
        self.fields = fields  # a swallowed line's own fields, read alone (issue 11 item 1)


class UsageReader:
    """Reads usage files against one rule set; counts every row; keeps per-account totals.

    `period` keeps only that period's rows: the others are counted as out of period. Bad rows go
    to `on_reject` as they are found (e.g. a `RejectsWriter`); without it they are kept in
    `rejected`, for `raise_for_rejects()`.

    Duplicate request ids: `seen_ids` holds every request id counted so far, across all the files
    this reader reads. It is the one structure that grows with the input: with the number of
    distinct request ids, about 130 bytes per 36-character UUID in a Python set (ten million ids ≈
    1.3 GB). Pass any object with ``__contains__`` and ``add`` to bound it: `ratecard.seen.SeenIds`
    (what ``ratecard bill`` uses) spills the ids to a temporary SQLite file past a limit.
    """

    def __init__(self, rules: RuleSet, *, period: str | None = None,
                 on_reject: Callable[[Rejected], object] | None = None, seen_ids=None):
        if period is not None:
            parse_period(period)
        self.rules, self.period = rules, period
        self.on_reject = on_reject
        self.rejected: list[Rejected] = []
        self.seen_ids = set() if seen_ids is None else seen_ids
        self._owners: dict = {}  # request id → (account, file, line) of the copy counted
        self._counts = dict.fromkeys((f.name for f in fields(Reconciliation) if f.name != "period"), 0)
        self._totals: dict[tuple[str, str], dict[tuple[str, str | None], int]] = {}
        self._names: dict[str, str] = {}
        self._valid_periods: set[str] = set()
        self._tariffs: dict[str, Tariff | str] = {}
        # The rules' time zones, newest policy first: a call's period is its local month in the
        # zone of the policy in force for that month (see _call_period).
        self._zones = tuple(dict.fromkeys(p.time_zone for p in reversed(rules.policies)))

    # -- public ----------------------------------------------------------------------------------

    def read(self, source, *, stdin=None, format: str | None = None, kind: str | None = None,
             name: str | None = None) -> UsageReader:
        """Add one file's accepted rows to the totals. `source` is a path, or ``-`` for `stdin`
        (named `name` in problems, e.g. "request body"; default <stdin>)."""
        totals, names = self._totals, self._names
        for row in self.rows(source, stdin=stdin, format=format, kind=kind, name=name):
            apis = totals.get((row.account, row.period))
            if apis is None:
                # One copy of each period, API and outcome name is kept, not one per account: with
                # many accounts, the names would otherwise take more memory than the totals.
                period = names.setdefault(row.period, row.period)
                apis = totals[(row.account, period)] = {}
            key = (names.setdefault(row.api, row.api), row.outcome and names.setdefault(row.outcome, row.outcome))
            apis[key] = apis.get(key, 0) + row.calls
        return self

    def rows(self, source, *, stdin=None, format: str | None = None, kind: str | None = None,
             name: str | None = None) -> Iterator[UsageRow]:
        """Stream one file's accepted rows (of the period, when filtered); count and route the others.

        `stdin` is the binary stream ``-`` stands for. `format` is ``csv`` or ``jsonl`` and `kind`
        ``aggregated`` or ``calls``; each is detected from the header line when not given.
        """
        if format not in (None, *FORMATS):
            raise RatecardError(f"unknown usage format {format!r}; expected one of: {', '.join(FORMATS)}")
        if kind not in (None, *KINDS):
            raise RatecardError(f"unknown usage kind {kind!r}; expected one of: {', '.join(KINDS)}")
        with _open(source, stdin, name) as (name, binary):
            yield from self._rows(name, _Lines(binary, name), format, kind)

    def accounts(self) -> Iterator[AccountUsage]:
        """Every (account, period) read so far, in that order, with its usage per API and outcome."""
        for (account, period), apis in sorted(self._totals.items()):
            items = tuple(UsageItem(api, calls, outcome)
                          for (api, outcome), calls in sorted(apis.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")))
            yield AccountUsage(account, period, items)

    def account_ids(self) -> set[str]:
        """The accounts read so far."""
        return {account for account, _ in self._totals}

    @property
    def account_periods(self) -> int:
        """How many (account, period) pairs `accounts()` yields."""
        return len(self._totals)

    @property
    def reconciliation(self) -> Reconciliation:
        return Reconciliation(**self._counts, period=self.period)

    def raise_for_rejects(self) -> None:
        """Strict mode: raise UsageInvalid listing every bad row when there is any."""
        count = self._counts["rows_rejected"]
        if count:
            files = sorted({r.file for r in self.rejected})
            raise UsageInvalid([r.problem() for r in self.rejected],
                               f"{', '.join(files) or 'usage'}: {count:,} bad usage row(s); nothing was billed. "
                               "Fix them, or write them to a rejects file and bill the rest")

    # -- one file --------------------------------------------------------------------------------

    def _rows(self, name, lines, format, kind) -> Iterator[UsageRow]:
        first = next((line for line in lines if line.strip()), None)
        if first is None:
            raise RatecardError(f"{name}: the file is empty; {_EXPECTED}")
        if format is None:
            start = first.lstrip()[:1]
            format = "jsonl" if start == "{" else "json" if start == "[" else "csv"
        self._decimal_comma = False
        if format == "json":
            records = self._array_records(name, lines, first, kind)
        elif format == "jsonl":
            records = self._json_records(name, lines, first, kind)
        else:
            records = self._csv_records(name, lines, first, kind)
        for kind, number, raw, values in records:
            row = self._check(name, number, raw, kind, values)
            if row is not None:
                yield row

    def _json_records(self, name, lines, first, kind):
        if kind is None:
            kind = _json_kind(name, lines.number, first)
        yield from self._json_line(kind, lines.number, first)
        for line in lines:
            lines.taken.clear()  # only CSV records need the raw lines kept
            if line.strip():
                yield from self._json_line(kind, lines.number, line)

    def _array_records(self, name, lines, first, kind):
        before = lines.number - 1  # blank lines above the array
        text = first + "".join(lines)
        lines.taken.clear()
        decoder = json.JSONDecoder()
        found = []

        def fail(at, what):
            line = text.count("\n", 0, at) + 1 + before
            column = at - (text.rfind("\n", 0, at) + 1) + 1
            raise RatecardError(f"{name}:{line}: malformed JSON array: {what} (column {column}); expected one array "
                                "[{...}, {...}] of records")

        at = _WS.match(text, 0).end()
        if text[at:at + 1] != "[":
            fail(at, "expected '['")
        at = _WS.match(text, at + 1).end()
        if text[at:at + 1] == "]":
            at += 1
        else:
            while True:
                try:
                    _, end = decoder.raw_decode(text, at)
                except json.JSONDecodeError as exc:
                    fail(exc.pos, exc.msg)
                except RecursionError:
                    fail(at, "nested too deeply")
                found.append((before + 1 + text.count("\n", 0, at), text[at:end].replace("\r", " ").replace("\n", " ")))
                at = _WS.match(text, end).end()
                if text[at:at + 1] == ",":
                    at = _WS.match(text, at + 1).end()
                    continue
                if text[at:at + 1] == "]":
                    at += 1
                    break
                fail(at, "expected ',' or ']' after a record")
        at = _WS.match(text, at).end()
        if at < len(text):
            fail(at, "text after the array's closing ']'")
        if not found:
            raise RatecardError(f"{name}: the JSON array holds no records; {_EXPECTED} as the keys of each record")
        if kind is None:
            kind = _json_kind(name, found[0][0], found[0][1])
        for number, record in found:
            yield from self._json_line(kind, number, record)

    def _json_line(self, kind, number, line):
        raw = line.rstrip("\r\n")
        try:
            values = json.loads(line, object_pairs_hook=_unique_keys, parse_float=Decimal)
        except ValueError as exc:
            values = _Bad("malformed-json", f"malformed JSON: {exc.msg} (column {exc.colno})"
                          if isinstance(exc, json.JSONDecodeError) else f"malformed JSON: {exc}")
        if isinstance(values, _Repeated):
            values = _Bad("malformed-json", f"malformed JSON: field {values.repeated!r} appears twice")
        if not isinstance(values, (dict, _Bad)):
            values = _Bad("malformed-json", f"malformed JSON: expected an object {{...}}, got {type(values).__name__}")
        yield kind, number, raw, values

    def _csv_records(self, name, lines, first, kind):
        header_line = lines.number
        outside = re.sub(r'"[^"]*"', "", first.rstrip("\r\n"))
        seen = [s for s in _SEPARATORS if s in outside]
        if len(seen) > 1:
            raise RatecardError(f"{name}:{header_line}: the header line holds "
                                f"{' and '.join(_SEPARATORS[s] + 's' for s in seen)}, so which one separates the "
                                "columns is ambiguous; expected the column names separated by one of them only "
                                "(comma, semicolon or tab)")
        delimiter = seen[0] if seen else ","
        self._decimal_comma = delimiter == ";"
        try:
            header = next(csv.reader([first], strict=True, delimiter=delimiter))
        except csv.Error as exc:
            raise RatecardError(f"{name}:{header_line}: unreadable CSV header: {exc}; {_EXPECTED}") from None
        names = [h.strip().lower() for h in header]
        kind = _csv_kind(name, header_line, names, kind)
        for n in _KNOWN.intersection(names):
            if names.count(n) > 1:
                raise RatecardError(f"{name}:{header_line}: column {n!r} appears twice in the header; "
                                    "expected each column once")
        columns = {n: i for i, n in enumerate(names) if n in _KNOWN}
        width = len(names)
        reader = csv.reader(lines, strict=True, delimiter=delimiter)
        while True:
            lines.taken.clear()
            number = lines.number + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                row = _Bad("malformed-csv", f"malformed CSV: {exc}")
            raw = "".join(lines.taken).rstrip("\r\n")
            if isinstance(row, list):
                if not row or not raw.strip():
                    continue  # a blank line, or one of only spaces and tabs (issue 11 item 18)
                if len(row) != width:
                    row = _Bad("column-count", f"expected {width} columns ({', '.join(header)}), got {len(row)}")
                else:
                    row = {n: row[i] for n, i in columns.items()}
            if isinstance(row, _Bad) and len(lines.taken) > 1:
                # Issue 11 item 1: a broken record spanning lines is rejected line by line, so the
                # reconciliation counts every physical row and the swallowed rows' calls.
                end = number + len(lines.taken) - 1
                for k, text in enumerate(list(lines.taken)):
                    own = text.rstrip("\r\n")
                    if k and not own.strip():
                        continue
                    try:
                        alone = next(csv.reader([text], strict=True), None)
                    except csv.Error:
                        alone = None
                    fields = ({n: alone[i] for n, i in columns.items()}
                              if alone is not None and len(alone) == width else None)
                    why = (f"{row.reason} (the record runs on from line {number} to line {end}: a quote is not "
                           "closed where it should be; each of its lines is rejected)" if k == 0 else
                           f"read into the record that starts on line {number}, whose quote is not closed "
                           "where it should be; fix that line")
                    yield kind, number + k, own, _Bad(row.code, why, fields)
                continue
            yield kind, number, raw, row

    # -- one row ---------------------------------------------------------------------------------

    def _check(self, name, number, raw, kind, values) -> UsageRow | None:
        counts = self._counts
        counts["rows_read"] += 1
        request_id = row = None
        try:
            if isinstance(values, _Bad):
                raise values
            if kind == CALLS:
                request_id = _text(values, "request_id")
                if request_id in self.seen_ids:
                    conflict = self._conflict(name, number, values, request_id)
                    if conflict is not None:
                        raise conflict
                    # The call was counted already: this is the same call logged again, not a bad row.
                    counts["rows_duplicate"] += 1
                    counts["calls_read"] += 1
                    counts["calls_duplicate"] += 1
                    return None
                row = self._call_row(name, number, values, request_id)
            else:
                row = self._aggregated_row(name, number, values)
            if self.period is not None and row.period != self.period:
                self._claim(request_id, row)
                counts["rows_out_of_period"] += 1
                counts["calls_read"] += row.calls
                counts["calls_out_of_period"] += row.calls
                return None
            self._check_api(row)
        except _Bad as bad:
            # Each call record is one call; a bad aggregated row adds its calls when they can be read.
            calls = 1 if kind == CALLS else row.calls if row else _calls_or_zero(values, self._decimal_comma)
            counts["rows_rejected"] += 1
            counts["calls_read"] += calls
            counts["calls_rejected"] += calls
            account = values.get("account") if isinstance(values, dict) else None
            rejected = Rejected(name, number, bad.reason, raw, bad.code,
                                account.strip() if isinstance(account, str) else "", getattr(bad, "also", ()))
            if self.on_reject is None:
                self.rejected.append(rejected)
            else:
                self.on_reject(rejected)
            return None
        self._claim(request_id, row)
        counts["rows_accepted"] += 1
        counts["calls_read"] += row.calls
        counts["calls_accepted"] += row.calls
        return row

    def _claim(self, request_id, row=None):
        # Only a counted call claims its id: a rejected row does not, so its corrected copy later in
        # the input (or in a re-run of the rejects) is billed, once.
        if request_id is not None:
            self.seen_ids.add(request_id)
            if row is not None:
                self._owners.setdefault(request_id, (row.account, row.file, row.line))

    def _conflict(self, name, number, values, request_id):
        """A later copy of a counted request id that is itself countable but names another account:
        rejected, never billed to the first account in silence."""
        owner = self._owners.get(request_id)
        if owner is None:
            return None
        try:
            copy = self._call_row(name, number, values, request_id)
            if self.period is None or copy.period == self.period:
                self._check_api(copy)
        except _Bad:
            return None  # a copy with something else wrong is a duplicate all the same
        if copy.account == owner[0]:
            return None
        conflict = _Bad("conflicting-request-id",
                    f"request id {request_id!r} was counted for account {owner[0]!r} ({owner[1]}:{owner[2]}), "
                    f"but this copy names account {copy.account!r}: one request is one call of one account; "
                    "fix the account of the wrong copy")
        conflict.also = (owner[0],)
        return conflict

    def _aggregated_row(self, name, number, values) -> UsageRow:
        account = _account(values)
        period = _text(values, "period")
        if period not in self._valid_periods:  # a handful of periods, each checked once
            try:
                parse_period(period)
            except PeriodError as exc:
                raise _Bad("bad-period", str(exc)) from None
            self._valid_periods.add(period)
        api = _text(values, "api")
        calls = _calls(values.get("calls"), self._decimal_comma)
        outcome = _outcome(values)
        return UsageRow(name, number, account, period, api, calls, outcome)

    def _call_row(self, name, number, values, request_id) -> UsageRow:
        account = _account(values)
        api = _text(values, "api")
        stamp = values.get("timestamp")
        text = stamp if isinstance(stamp, int) and not isinstance(stamp, bool) else _text(values, "timestamp")
        try:
            moment = _unix(text) if re.fullmatch(r"[0-9]+", str(text)) else datetime.fromisoformat(str(text))
        except _Bad:
            raise
        except ValueError:
            raise _Bad("bad-timestamp", f"bad timestamp {text!r}: expected ISO 8601 with a UTC offset, "
                       "e.g. 2020-09-30T23:30:00Z or 2020-10-01T07:30:00+08:00") from None
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise _Bad("naive-timestamp", f"timestamp {text!r} has no UTC offset, so its billing period is "
                       "unknown; expected e.g. 2020-09-30T23:30:00Z or 2020-10-01T07:30:00+08:00")
        return UsageRow(name, number, account, self._call_period(moment), api, 1, _outcome(values), request_id)

    def _call_period(self, moment: datetime) -> str:
        try:
            return self._local_period(moment)
        except PeriodError as exc:
            raise _Bad("bad-timestamp", str(exc)) from None

    def _local_period(self, moment: datetime) -> str:
        # Nearly always one zone, tried once. Should a policy version ever change the time zone,
        # the period is the local month in the zone of the policy in force for that month.
        for zone in self._zones:
            period = period_of(moment, zone)
            t = self._tariff(period)
            if not isinstance(t, Tariff) or t.policy.time_zone == zone:
                return period
        return period_of(moment, self._zones[0])

    def _tariff(self, period: str) -> Tariff | str:
        found = self._tariffs.get(period)
        if found is None:
            try:
                found = tariff(self.rules, period)
            except NoRulesInForce as exc:
                found = str(exc)
            self._tariffs[period] = found
        return found

    def _check_api(self, row: UsageRow) -> None:
        t = self._tariff(row.period)
        if not isinstance(t, Tariff):
            raise _Bad("no-rules", t)
        # Only `unknown_api: error` refuses the row; `report` and `ignore` are rating's business.
        if row.api not in t.index and t.unknown_api == "error":
            raise _Bad("unknown-api", f"unknown API {row.api!r}: the API mapping in force for {row.period} "
                       f"({t.mapping.source}) does not list it")


def read_usage(sources: Iterable, rules: RuleSet, *, period: str | None = None, stdin=None,
               format: str | None = None, kind: str | None = None,
               on_reject: Callable[[Rejected], object] | None = None, seen_ids=None) -> UsageReader:
    """Read usage files (paths, or ``-`` for `stdin`) into one reader; see `UsageReader`."""
    reader = UsageReader(rules, period=period, on_reject=on_reject, seen_ids=seen_ids)
    for source in ([sources] if isinstance(sources, (str, Path)) else sources):
        reader.read(source, stdin=stdin, format=format, kind=kind)
    return reader


# -- field checks ------------------------------------------------------------------------------------


def _dumps(value) -> str:
    return str(value) if isinstance(value, Decimal) else json.dumps(value)


def _text(values: dict, name: str) -> str:
    value = values.get(name)
    if value is None or value == "":
        raise _Bad("missing-field", f"missing field {name!r}")
    if not isinstance(value, str):
        raise _Bad("bad-field", f"{name} must be text, got {_dumps(value)}")
    value = value.strip()
    if not value:
        raise _Bad("missing-field", f"missing field {name!r}")
    return _unicode(name, value)


def _unicode(name: str, value: str) -> str:
    if re.search(r"[\ud800-\udfff]", value):
        shown = value.encode("utf-8", "backslashreplace").decode("utf-8")
        raise _Bad("bad-field", f"{name} {shown!r} is not valid Unicode text (a lone surrogate); expected UTF-8 text")
    return value


def _account(values: dict) -> str:
    value = values.get("account")
    if isinstance(value, str) and not value.strip():
        raise _Bad("empty-account", "empty account: every row must name the account to bill")
    account = _text(values, "account")
    if _CONTROL.search(account):
        raise _Bad("bad-field", f"account {account!r} contains control characters; expected printable text")
    return account


class _Repeated(dict):
    repeated: str


def _unique_keys(pairs):
    """object_pairs_hook: a JSON record naming a field twice is ambiguous (which account pays?);
    the record is checked for it, never the objects nested in its fields."""
    record = {}
    for key, value in pairs:
        if key in record and not isinstance(record, _Repeated):
            record = _Repeated(record)
            record.repeated = key
        record[key] = value
    return record


def _unix(value) -> datetime:
    digits = str(value)
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    if len(digits) in (9, 10):
        return epoch + timedelta(seconds=int(digits))
    if len(digits) in (12, 13):
        return epoch + timedelta(milliseconds=int(digits))
    raise _Bad("bad-timestamp", f"bad timestamp {value!r}: digits only are a Unix time, 9 or 10 digits in seconds "
               f"or 12 or 13 in milliseconds, and {len(digits)} digits is neither; expected e.g. 1601508600, "
               "1601508600000 or 2020-09-30T23:30:00Z")


def _calls(value, decimal_comma: bool = False) -> int:
    if value is None or value == "":
        raise _Bad("missing-field", "missing field 'calls'")
    stripped = value.strip() if isinstance(value, str) else ""
    if isinstance(value, int) and not isinstance(value, bool):
        calls = value
    elif isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        calls = int(value)
    elif _SEPARATED.fullmatch(stripped) and len(stripped) <= 40:
        if decimal_comma and "," in stripped:
            raise _Bad("ambiguous-calls", f"calls {stripped!r} is ambiguous in a semicolon-separated file, where "
                       f"`,` is the decimal mark: write plain digits ({re.sub('[,_]', '', stripped)}) or group "
                       "thousands with _")
        try:
            calls = parse_count(stripped)
        except CountError as exc:
            raise _Bad("bad-calls", f"calls {exc}") from None
    elif isinstance(value, str) and _INTEGER.fullmatch(value.strip()) and len(value.strip()) <= 40:
        calls = int(value.strip().split(".")[0])
    else:
        shown = value if isinstance(value, str) else _dumps(value)
        raise _Bad("bad-calls", f"calls must be a whole number, got {shown!r}")
    if calls < 0:
        raise _Bad("negative-calls", f"calls must not be negative, got {calls}")
    if calls > MAX_CALLS:
        raise _Bad("bad-calls", f"calls {calls} is out of range: expected at most {MAX_CALLS:,} in one row")
    return calls


def _calls_or_zero(values, decimal_comma: bool = False) -> int:
    """The calls of an aggregated row refused for another reason (0 when they cannot be read)."""
    if isinstance(values, _Bad):
        values = values.fields
    try:
        return _calls(values.get("calls"), decimal_comma) if isinstance(values, dict) else 0
    except _Bad:
        return 0


def _outcome(values: dict) -> str | None:
    outcome = values.get("outcome")
    if isinstance(outcome, str) and outcome.strip():
        outcome = _unicode("outcome", outcome.strip())
        # Logs disagree on the case of "success"; an error code keeps its case, which is significant.
        return SUCCESS if outcome.lower() == SUCCESS else outcome
    if outcome is not None and not isinstance(outcome, str):
        raise _Bad("bad-field", f"outcome must be text, got {_dumps(outcome)}")
    if "error_code" in values:
        code = values["error_code"]
        if code is None or code == "" or isinstance(code, str) and not code.strip():
            return SUCCESS
        if not isinstance(code, str):
            raise _Bad("bad-field", f"error_code must be text, got {_dumps(code)}")
        return _unicode("error_code", code.strip())
    return None


# -- kinds ---------------------------------------------------------------------------------------------


def _csv_kind(name: str, line: int, names: list[str], kind: str | None) -> str:
    present = set(names)
    fits = [k for k in ([kind] if kind else KINDS) if present >= set(_REQUIRED[k])]
    if fits:
        return fits[0]
    # Name the columns missing from the closest kind: that is the likely typo.
    closest = kind or max(KINDS, key=lambda k: len(present & set(_REQUIRED[k])))
    missing = [c for c in _REQUIRED[closest] if c not in present]
    raise RatecardError(f"{name}:{line}: unrecognised header {','.join(names)!r}: missing column(s) "
                        f"{', '.join(missing)}; {_EXPECTED}")


def _json_kind(name: str, line: int, text: str) -> str:
    try:
        first = json.loads(text)
    except ValueError:
        first = None
    if not isinstance(first, dict):
        raise RatecardError(f"{name}:{line}: the first line is not a JSON object, so the kind of usage is "
                            f"unknown; {_EXPECTED} as the keys of each line's object")
    keys = set(first)
    if keys & {"request_id", "timestamp"}:
        return CALLS
    if keys & {"period", "calls"}:
        return AGGREGATED
    raise RatecardError(f"{name}:{line}: unrecognised keys {', '.join(sorted(keys)) or '(none)'}; "
                        f"{_EXPECTED} as the keys of each line's object")


# -- bytes in ------------------------------------------------------------------------------------------


class _Lines:
    """The decoded lines of a usage file, counted; `taken` keeps the current record's raw text."""

    def __init__(self, binary, name: str):
        self.binary, self.name = binary, name
        self.number = 0
        self.taken: list[str] = []

    def __iter__(self):
        return self

    def __next__(self) -> str:
        try:
            data = self.binary.readline()
        except (OSError, EOFError, zlib.error) as exc:
            after = f" after line {self.number}" if self.number else ""
            raise RatecardError(f"{self.name}: cannot read the usage file{after}: {exc}") from None
        if not data:
            raise StopIteration
        self.number += 1
        try:
            # Decoded line by line (not by a TextIOWrapper) so that an encoding error names its line.
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise RatecardError(f"{self.name}:{self.number}: the file is not UTF-8 text; save it as UTF-8") from None
        if self.number == 1 and text.startswith("\ufeff"):
            text = text[1:]  # the byte order mark spreadsheet programs write
        self.taken.append(text)
        return text


class _Prefixed(io.RawIOBase):
    """A stream whose first bytes were already read (to sniff gzip); never closes the stream it wraps."""

    def __init__(self, head: bytes, rest):
        self._head, self._rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n], self._head = self._head[:n], self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


@contextmanager
def _open(source, stdin, stdin_name=None):
    """A usage source as a binary stream: a path or ``-`` (the given stdin), gunzipped when its bytes say so."""
    file = None
    if str(source) == "-":
        if stdin is None:
            raise RatecardError("-: reading usage from standard input, but no input stream was given")
        # Given sys.stdin itself, read its bytes: decoding is ours, so that errors name the line.
        name, stream = stdin_name or STDIN_NAME, getattr(stdin, "buffer", stdin)
    else:
        name = display_path(Path(source))
        try:
            stream = file = open(source, "rb")
        except OSError as exc:
            raise RatecardError(f"{name}: cannot read the usage file: {exc.strerror or exc}") from None
    try:
        try:
            head = stream.read(2)
        except OSError as exc:
            raise RatecardError(f"{name}: cannot read the usage file: {exc.strerror or exc}") from None
        binary = io.BufferedReader(_Prefixed(head, stream), 1 << 16)
        if head == _GZIP_MAGIC:  # by content, not by name: a .gz suffix is neither needed nor trusted
            binary = gzip.GzipFile(fileobj=binary, mode="rb")
        yield name, binary
    finally:
        if file is not None:
            file.close()


# -- bad rows out --------------------------------------------------------------------------------------


REJECTS_HEADER = ("file", "row", "reason", "raw")


class RejectsWriter:
    """Writes bad rows to a CSV file (file, row, reason, raw) as they are found; use as `on_reject`."""

    def __init__(self, target):
        """`target` is a path or an open text stream (which is left open)."""
        if hasattr(target, "write"):
            self._file, self._owned = target, False
        else:
            try:
                self._file = open(target, "w", encoding="utf-8", newline="")
            except OSError as exc:
                raise RatecardError(f"{display_path(Path(target))}: cannot write the rejects file: "
                                    f"{exc.strerror or exc}") from None
            self._owned = True
        self._csv = csv.writer(self._file)
        self._csv.writerow(REJECTS_HEADER)
        self.count = 0

    def __call__(self, rejected: Rejected) -> None:
        self._csv.writerow((rejected.file, rejected.line, rejected.reason, rejected.raw))
        self.count += 1

    def close(self) -> None:
        if self._owned:
            self._file.close()
        else:
            self._file.flush()

    def __enter__(self) -> RejectsWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def write_rejects(target, rejects: Iterable[Rejected]) -> int:
    """Write bad rows to a rejects CSV file; returns how many were written."""
    with RejectsWriter(target) as writer:
        for rejected in rejects:
            writer(rejected)
        return writer.count
