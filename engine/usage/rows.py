"""The rows of a usage file as the diagnosing pass reads them: (physical line, raw text, values or
`Bad`), for CSV and JSON Lines, with the problems a row can have before any field is checked
(malformed, oversize, the wrong number of columns, a quote left open)."""

from __future__ import annotations

import csv
import json
from decimal import Decimal

from .files import KNOWN, MAX_ROW_BYTES, VALUED, Bad, Lines, Source, open_binary

def records(source: Source):
    """(line, raw text, values dict or Bad) for every row of a CSV or JSON Lines file, in order."""
    with open_binary(source.path, source.name) as binary:
        lines = Lines(binary, source.name)
        first = next((line for line in lines if line.strip()), None)
        if source.format == "jsonl" and first is None:
            return  # no line at all: refused when the file's kind was read (json_kind)
        if source.format == "jsonl" and source.lines is not None:
            at = source.lines  # a JSON array's copy: record k is on line k of the copy
            for number, raw, values in _json_lines(lines, first):
                yield at[number - 1], raw, values
        elif source.format == "jsonl":
            yield from _json_lines(lines, first)
        else:
            yield from _csv_records(source, lines)


def _json_lines(lines: Lines, first):
    yield from _json_line(lines, first)
    for line in lines:
        lines.taken.clear()  # only CSV records need the raw lines kept
        if line.strip():
            yield from _json_line(lines, line)


class _Repeated(dict):
    """A JSON object naming a key twice (the key in `repeated`)."""

    repeated: str


def _unique_keys(pairs):
    """object_pairs_hook: marks an object naming a key twice. Only the record's own fields matter
    (which account pays?): an object nested in a field ratecard ignores is the exporter's business,
    and the fast pass, which checks the record's keys only, must reach the same verdict."""
    record: dict[str, object] = {}
    for key, value in pairs:
        if key in record and not isinstance(record, _Repeated):
            record = _Repeated(record)
            record.repeated = key
        record[key] = value
    return record


def _json_line(lines: Lines, line: str):
    raw = line.rstrip("\r\n")
    if lines.oversize:
        yield lines.number, raw, _oversize()
        return
    try:
        # Decimal, not float: 7.000000000000000001 must not become the whole number 7.
        values = json.loads(line, object_pairs_hook=_unique_keys, parse_float=Decimal)
    except RecursionError:
        values = Bad("malformed-json", "malformed JSON: nested too deeply")
    except ValueError as exc:
        values = Bad("malformed-json", f"malformed JSON: {exc.msg} (column {exc.colno})"
                     if isinstance(exc, json.JSONDecodeError) else f"malformed JSON: {exc}")
    if isinstance(values, _Repeated):
        values = Bad("malformed-json", f"malformed JSON: field {values.repeated!r} appears twice")
    if not isinstance(values, (dict, Bad)):
        values = Bad("malformed-json", f"malformed JSON: expected an object {{...}}, got {type(values).__name__}")
    yield lines.number, raw, values


def _oversize() -> Bad:
    return Bad("oversize-row", f"the row is longer than {MAX_ROW_BYTES:,} bytes; expected one call or one "
               "account's usage per row")


def _csv_records(source: Source, lines: Lines):
    header = list(source.columns)
    columns = {n: i for i, n in enumerate(header) if n in KNOWN or n in VALUED}
    width = len(header)
    reader = csv.reader(_cut(lines), strict=True, delimiter=source.delimiter)
    while True:
        lines.taken.clear()
        number = lines.number + 1
        row: list[str] | dict[str, str] | Bad
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            row = Bad("malformed-csv", f"malformed CSV: {exc}")
        raw = "".join(lines.taken).rstrip("\r\n")
        if lines.oversize:
            row = _oversize()
        elif isinstance(row, list):
            if not row or not raw.strip():
                continue  # a blank line, or one of only spaces and tabs: not a row
            if len(row) != width:
                row = Bad("column-count", f"expected {width} columns ({', '.join(header)}), got {len(row)}")
            else:
                row = {n: row[i] for n, i in columns.items()}
        if isinstance(row, Bad) and len(lines.taken) > 1:
            yield from _runs_on(number, list(lines.taken), row, width, columns)
            continue
        yield number, raw, row


def _runs_on(number: int, taken: list[str], bad: Bad, width: int, columns: dict[str, int]):
    """A bad CSV record spanning several lines (a quote not closed where it should be swallows the
    lines after it) as one rejected row per line: the reconciliation counts the rows of the file,
    and the calls of each swallowed line, when the line alone reads as a row, are counted rejected
    instead of nowhere."""
    last = number + len(taken) - 1
    for offset, line in enumerate(taken):
        raw = line.rstrip("\r\n")
        if offset and not raw.strip():
            continue  # a blank line inside the record: not a row, as anywhere else
        reason = (f"{bad.reason} (the record runs on from line {number} to line {last}: a quote is not "
                  "closed where it should be; each of its lines is rejected)" if offset == 0 else
                  f"read into the record that starts on line {number}, whose quote is not closed where it "
                  "should be; fix that line")
        yield number + offset, raw, Bad(bad.code, reason, _alone(line, width, columns))


def _alone(line: str, width: int, columns: dict[str, int]) -> dict | None:
    try:
        row = next(csv.reader([line], strict=True), None)
    except csv.Error:
        return None
    return {n: row[i] for n, i in columns.items()} if row is not None and len(row) == width else None


def _cut(lines: Lines):
    """The lines for csv.reader; an oversize line is handed on as an empty record's line end."""
    for line in lines:
        yield "\n" if lines.oversize else line
