"""Usage files as bytes and lines: naming, copying streams, opening (gzip by content), sniffing
format and kind, and the counted lines the row-numbered reader (`rows.py`) tokenizes.

Row numbers are physical line numbers, the CSV header being line 1, so that ``FILE:LINE`` opens the
row in an editor. A CSV record spanning lines (a quoted line break) is numbered by its first line;
a broken one (a quote left open swallowing the lines after it) is rejected line by line.
Blank lines, and lines of only spaces and tabs, are skipped and are not rows (nor counted as read). Parquet has no lines: its rows are numbered from 1.
"""

from __future__ import annotations

import csv
import glob
import gzip
import io
import json
import os
import re
import shutil
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from ..errors import RatecardError
from ..rules import display_path

AGGREGATED, CALLS = "aggregated", "calls"
FORMATS = ("csv", "jsonl", "json", "parquet")  # json: one JSON array of records (read as JSON Lines)
KINDS = (AGGREGATED, CALLS)
REQUIRED = {AGGREGATED: ("account", "period", "api", "calls"),
            CALLS: ("request_id", "account", "api", "timestamp")}
OPTIONAL = ("outcome", "error_code")
KNOWN = frozenset(OPTIONAL).union(*REQUIRED.values())
VALUED = frozenset({"amount"})  # read row by row only, by the `valued` path (issue 12)
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}
EXPECTED = ("expected the columns account, period, api, calls[, outcome] (aggregated usage) or "
            "request_id, account, api, timestamp[, outcome | error_code] (call records)")
STDIN_NAME = "<stdin>"
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
MAX_ROW_BYTES = 1 << 20  # a longer line is a bad row, never read into a record: no real call is that large
# A line past this runs on without a line break (/dev/zero, a binary or a corrupt file): not rows to
# reject one by one but a file that is not line-structured, so reading stops there, with an error.
MAX_LINE_BYTES = 1 << 32
_GLOB = frozenset("*?[")


class Bad(Exception):
    """A row fails a check: it becomes a Rejected record, never a traceback."""

    def __init__(self, code: str, reason: str, values: dict | None = None):
        super().__init__(reason)
        self.code, self.reason = code, reason
        self.values = values  # the row's fields when they could still be read (for its calls)


@dataclass(frozen=True)
class Source:
    """One usage file, sniffed: what it is and how to read it."""

    name: str  # as shown in messages
    path: str  # what the engine opens (stdin is copied to a scratch file first)
    format: str  # csv | jsonl | parquet
    kind: str  # aggregated | calls
    gzip: bool
    columns: tuple[str, ...]  # CSV: every header name (lowercased, stripped), in order; else the known ones
    identity: tuple | None = None  # (device, inode): the same file given twice is refused
    delimiter: str = ","  # CSV: what separates the fields, as the header line shows it
    lines: tuple[int, ...] | None = None  # a JSON array read as JSON Lines: each record's line in the file
    # A file at a URL (`path`), read by Spark where it is: its first bytes (a Parquet file's footer)
    # copied here for sniffing and the schema; None for a file this machine opens itself.
    staged: str | None = None

    @property
    def decimal_comma(self) -> bool:
        """A semicolon-separated file comes from a locale whose decimal mark is `,`: in it, a count
        such as 1,000 could be one thousand or one, and is refused."""
        return self.delimiter == ";"

    def has(self, column: str) -> bool:
        return column in self.columns


# -- naming and opening ------------------------------------------------------------------------------


def expand(source) -> list[str]:
    """A usage argument as file paths: itself, or the files a glob pattern matches (sorted)."""
    text = str(source)
    if text == "-" or os.path.exists(text) or not _GLOB & set(text):
        return [text]
    matches = sorted(m for m in glob.glob(text, recursive=True) if os.path.isfile(m))
    if not matches:
        raise RatecardError(f"{text}: no usage file matches this pattern")
    return matches


def copy_stdin(stdin, directory: str, file_name: str = "stdin", name: str = STDIN_NAME) -> str:
    """Standard input (or any file object, text or binary) saved to a scratch file: the engines read
    files, and a pipe can be read once."""
    if stdin is None:
        raise RatecardError("-: reading usage from standard input, but no input stream was given")
    try:
        return copy_stream(_Bytes(getattr(stdin, "buffer", stdin), name), os.path.join(directory, file_name), name)
    except ValueError as exc:  # a closed stream
        raise RatecardError(f"{name}: cannot read the usage stream: {exc}") from None


class _Bytes:
    """A file object read as bytes: a text stream's text as UTF-8, anything else a clear error."""

    def __init__(self, stream, name: str):
        self.stream, self.name = stream, name

    def read(self, size: int = -1) -> bytes:
        try:
            chunk = self.stream.read(size)
        except OSError as exc:
            raise RatecardError(f"{self.name}: cannot read the usage stream: {exc.strerror or exc}") from None
        if isinstance(chunk, str):
            return chunk.encode("utf-8", "surrogateescape")
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise RatecardError(f"{self.name}: the stream gave {type(chunk).__name__}, not text or bytes; expected "
                                "a file opened for reading, e.g. open(path, 'rb') or io.StringIO")
        return bytes(chunk)


def copy_pipe(path: str, directory: str, name: str, number: int) -> str:
    """A usage path that is not a regular file (a named pipe, `<(zcat …)` in a shell, a device) saved
    to a scratch file, as standard input is: sniffing and the query each read the input."""
    try:
        with open(path, "rb") as stream:
            return copy_stream(stream, os.path.join(directory, f"pipe-{number}"), name)
    except OSError as exc:
        raise RatecardError(f"{name}: cannot read the usage file: {exc.strerror or exc}") from None


def copy_stream(stream, path: str, name: str) -> str:
    with open(path, "wb") as out:
        head = stream.read(1 << 20)
        out.write(head)
        if head[:2] == GZIP_MAGIC or head[:4] == PARQUET_MAGIC:
            shutil.copyfileobj(stream, out, 1 << 20)  # binary: its lines are checked as it is read
        else:
            _copy_lines(head, stream, out, name)
    return path


def _copy_lines(head: bytes, stream, out, name: str) -> None:
    """Copy text that must be line-structured, stopping as soon as it is not (`--usage - < /dev/zero`
    would otherwise fill the scratch folder's disk before the reader could refuse it)."""
    line, run, chunk = 1, 0, head
    while chunk:
        last = chunk.rfind(b"\n")
        if last < 0:
            run += len(chunk)
        else:
            line += chunk.count(b"\n")
            run = len(chunk) - last - 1
        if line == 1 and run > MAX_ROW_BYTES:
            raise NotLines(name, 1, MAX_ROW_BYTES)
        if run > MAX_LINE_BYTES:
            raise NotLines(name, line, MAX_LINE_BYTES)
        if chunk is not head:
            out.write(chunk)
        chunk = stream.read(1 << 20)


@contextmanager
def open_binary(path: str, name: str):
    """A usage file as a binary stream, gunzipped when its bytes say so (a .gz name is neither needed nor trusted)."""
    try:
        file = open(path, "rb")
    except OSError as exc:
        raise RatecardError(f"{name}: cannot read the usage file: {exc.strerror or exc}") from None
    try:
        try:
            head = file.read(2)
            file.seek(0)
        except OSError as exc:
            raise RatecardError(f"{name}: cannot read the usage file: {exc.strerror or exc}") from None
        binary = io.BufferedReader(file, 1 << 16)
        yield gzip.GzipFile(fileobj=binary, mode="rb") if head == GZIP_MAGIC else binary
    finally:
        file.close()


class NotLines(RatecardError):
    """A usage file whose line runs on past what any row can be: not line-structured text."""

    def __init__(self, name: str, line: int, limit: int):
        super().__init__(f"{name}:{line}: the line runs on past {limit:,} bytes without a line break, so the "
                         "file is not line-structured text (a device such as /dev/zero, a binary or a corrupt "
                         "file?); expected one row per line; nothing was billed from it")


class Lines:
    """The decoded lines of a usage file, counted; `taken` keeps the current record's raw text."""

    def __init__(self, binary, name: str, longest: int | None = None):
        self.binary, self.name = binary, name
        self.longest = MAX_LINE_BYTES if longest is None else longest
        self.number = 0
        self.taken: list[str] = []
        self.oversize = False  # the line just read was cut at MAX_ROW_BYTES

    def __iter__(self):
        return self

    def __next__(self) -> str:
        try:
            data = self.binary.readline(MAX_ROW_BYTES + 1)
            self.oversize = len(data) > MAX_ROW_BYTES and not data.endswith(b"\n")
            if self.oversize:
                if self.longest <= MAX_ROW_BYTES:
                    raise NotLines(self.name, self.number + 1, MAX_ROW_BYTES)
                length = len(data)
                while (more := self.binary.readline(1 << 20)) and not more.endswith(b"\n"):
                    length += len(more)  # skip the rest of the line: it is reported, not kept
                    if length > self.longest:
                        raise NotLines(self.name, self.number + 1, self.longest)
                data = data[:200]
        except (OSError, EOFError, zlib.error) as exc:
            after = f" after line {self.number}" if self.number else ""
            raise RatecardError(f"{self.name}: cannot read the usage file{after}: {exc}") from None
        if not data:
            raise StopIteration
        self.number += 1
        try:
            # Decoded line by line (not by a TextIOWrapper) so that an encoding error names its line.
            text = data.decode("utf-8", "replace" if self.oversize else "strict")
        except UnicodeDecodeError:
            raise RatecardError(f"{self.name}:{self.number}: the file is not UTF-8 text; save it as UTF-8") from None
        if self.number == 1 and text.startswith("\ufeff"):
            text = text[1:]  # the byte order mark spreadsheet programs write
        self.taken.append(text)
        return text


# -- sniffing ------------------------------------------------------------------------------------------


def sniff(path: str, name: str, *, format: str | None = None, kind: str | None = None,
          identity: tuple | None = None, scratch: str | None = None) -> Source:
    """Read a file's first bytes and first line: its format, kind and columns, or a clear error.
    A JSON array is copied to `scratch` as JSON Lines, one record a line, remembering each record's line."""
    if format not in (None, *FORMATS):
        raise RatecardError(f"unknown usage format {format!r}; expected one of: {', '.join(FORMATS)}")
    if kind not in (None, *KINDS):
        raise RatecardError(f"unknown usage kind {kind!r}; expected one of: {', '.join(KINDS)}")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise RatecardError(f"{name}: cannot read the usage file: {exc.strerror or exc}") from None
    if format == "parquet" or (format is None and head == PARQUET_MAGIC):
        return Source(name, path, "parquet", "", False, (), identity)  # kind and columns: see duck.parquet_source
    with open_binary(path, name) as binary:
        # A header (or first object) past a row's length is no usage file's: said before reading on.
        lines = Lines(binary, name, longest=MAX_ROW_BYTES)
        first = next((line for line in lines if line.strip()), None)
        if first is None:
            raise RatecardError(f"{name}: the file is empty; {EXPECTED}")
        if format is None:
            start = first.lstrip()[:1]
            format = "jsonl" if start == "{" else "json" if start == "[" else "csv"
        if format == "json":
            if scratch is None:
                raise RatecardError(f"{name}: a JSON array is read through a scratch folder, and none was given")
            copy, lines_of = json_array_lines(path, name, scratch)
            if not lines_of:
                raise RatecardError(f"{name}: the JSON array holds no records; {EXPECTED} as the keys of each "
                                    "record")
            with open(copy, encoding="utf-8") as f:
                first_record = f.readline()
            return Source(name, copy, "jsonl", kind or json_kind(name, lines_of[0], first_record), False,
                          tuple(OPTIONAL), identity, lines=lines_of)
        if format == "jsonl":
            return Source(name, path, format, kind or json_kind(name, lines.number, first), head[:2] == GZIP_MAGIC,
                          tuple(OPTIONAL), identity)
        header_line = lines.number
    delimiter = csv_delimiter(name, header_line, first)
    names = csv_header(name, header_line, first, delimiter)
    return Source(name, path, format, csv_kind(name, header_line, names, kind), head[:2] == GZIP_MAGIC,
                  tuple(names), identity, delimiter)


def csv_delimiter(name: str, line: int, first: str) -> str:
    """What separates a CSV file's fields: the one of comma, semicolon and tab its header line holds
    outside quotes (column names never hold one). Both a comma and a semicolon is a clear error,
    never a guess; none (a header of one name) is a comma."""
    outside = re.sub(r'"[^"]*"', "", first.rstrip("\r\n"))
    found = [d for d in DELIMITERS if d in outside]
    if len(found) > 1:
        raise RatecardError(f"{name}:{line}: the header line holds {' and '.join(DELIMITERS[d] + 's' for d in found)}, "
                            "so which one separates the columns is ambiguous; expected the column names separated "
                            "by one of them only (comma, semicolon or tab)")
    return found[0] if found else ","


def csv_header(name: str, line: int, first: str, delimiter: str = ",") -> list[str]:
    try:
        header = next(csv.reader([first], strict=True, delimiter=delimiter))
    except csv.Error as exc:
        raise RatecardError(f"{name}:{line}: unreadable CSV header: {exc}; {EXPECTED}") from None
    names = [h.strip().lower() for h in header]
    for n in KNOWN.intersection(names):
        if names.count(n) > 1:
            raise RatecardError(f"{name}:{line}: column {n!r} appears twice in the header; expected each column once")
    return names


def csv_kind(name: str, line: int, names, kind: str | None) -> str:
    present = set(names)
    fits = [k for k in ([kind] if kind else KINDS) if present >= set(REQUIRED[k])]
    if fits:
        return fits[0]
    # Name the columns missing from the closest kind: that is the likely typo.
    closest = kind or max(KINDS, key=lambda k: len(present & set(REQUIRED[k])))
    missing = [c for c in REQUIRED[closest] if c not in present]
    raise RatecardError(f"{name}:{line}: unrecognised header {','.join(names)!r}: missing column(s) "
                        f"{', '.join(missing)}; {EXPECTED}")


def json_kind(name: str, line: int, text: str) -> str:
    try:
        first = json.loads(text)
    except (ValueError, RecursionError):
        first = None
    if not isinstance(first, dict):
        raise RatecardError(f"{name}:{line}: the first line is not a JSON object, so the kind of usage is "
                            f"unknown; {EXPECTED} as the keys of each line's object")
    keys = set(first)
    if keys & {"request_id", "timestamp"}:
        return CALLS
    if keys & {"period", "calls"}:
        return AGGREGATED
    raise RatecardError(f"{name}:{line}: unrecognised keys {', '.join(sorted(keys)) or '(none)'}; "
                        f"{EXPECTED} as the keys of each line's object")


_SPACE = re.compile(r"[ \t\r\n]*")


def _skip(text: str, at: int) -> int:
    """The index past JSON whitespace from `at`."""
    found = _SPACE.match(text, at)
    return found.end() if found else at


def json_array_lines(path: str, name: str, scratch: str) -> tuple[str, tuple[int, ...]]:
    """A file holding one JSON array of records, copied to `scratch` as JSON Lines: each record on
    one line (the line breaks between its tokens made spaces, which JSON reads alike), and the line of
    the file each record starts on, so that a bad record is named where it is. The array is read
    whole: for files too large for memory, write JSON Lines."""
    with open_binary(path, name) as binary:
        try:
            data = binary.read()
        except (OSError, EOFError, zlib.error) as exc:
            raise RatecardError(f"{name}: cannot read the usage file: {exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise RatecardError(f"{name}:{line}: the file is not UTF-8 text; save it as UTF-8") from None
    text = text.removeprefix("\ufeff")
    decoder = json.JSONDecoder()
    out_path = os.path.join(scratch, f"array-{len(os.listdir(scratch))}.jsonl")
    starts: list[int] = []
    line, counted = 1, 0

    def fail(at: int, what: str) -> NoReturn:
        where = text.count("\n", 0, at) + 1
        column = at - (text.rfind("\n", 0, at) + 1) + 1
        raise RatecardError(f"{name}:{where}: malformed JSON array: {what} (column {column}); expected one array "
                            "[{...}, {...}] of records")

    at = _skip(text, 0)
    if text[at:at + 1] != "[":
        fail(at, "expected '['")
    at = _skip(text, at + 1)
    with open(out_path, "w", encoding="utf-8", newline="\n") as out:
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
                line += text.count("\n", counted, at)
                counted = at
                starts.append(line)
                out.write(text[at:end].replace("\r", " ").replace("\n", " ") + "\n")
                at = _skip(text, end)
                if text[at:at + 1] == ",":
                    at = _skip(text, at + 1)
                    continue
                if text[at:at + 1] == "]":
                    at += 1
                    break
                fail(at, "expected ',' or ']' after a record")
    at = _skip(text, at)
    if at < len(text):
        fail(at, "text after the array's closing ']'")
    return out_path, tuple(starts)


def identity_of(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def shown(path) -> str:
    return display_path(Path(path))
