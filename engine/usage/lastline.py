"""A text usage file's last line, which DuckDB's CSV reader drops without a word when it is longer
than the reader's buffer (duckdb/duckdb#25825): found before the file is read, so that such a file
goes to the row pass, which names the line as a bad row. And the bounded buffer the readers get."""

from __future__ import annotations

import gzip
import os
import zlib

from .files import MAX_ROW_BYTES, Source

# The text readers' buffer (bytes) when the files are read within a small budget (`ranges.LOAD_BUDGET`):
# DuckDB's own is the file's size up to 32 MB, one for each of the two reads of a CSV file (its records
# and its lines), so a larger file took more memory to read (15.5 MiB a buffer at 100,000 accounts,
# 30.5 at 1M). Twice JSON Lines' longest line (DuckDB wants a buffer larger than it).
READ_BUFFER = 2 * MAX_ROW_BYTES


def plain_text(source: Source) -> bool:
    """A CSV or JSON Lines file that is not gzip-compressed: its last line is found without reading it."""
    return source.format in ("csv", "jsonl") and not source.gzip


def long_last_line(source: Source, size: int = READ_BUFFER) -> bool:
    """Whether a text file's last line is longer than `size` bytes (more than a row may hold, so a bad
    row): DuckDB's reader drops a last line longer than its buffer without a word (a longer line
    elsewhere fails the read; duckdb/duckdb#25825), so such a file goes to the row pass, which names
    it. A plain file's end is read backwards; a gzip file's last line is known only once the whole
    file is decompressed (about a fortieth of the time the engine then takes to bill it)."""
    if source.format not in ("csv", "jsonl"):
        return False
    try:
        if source.gzip:
            with gzip.open(source.path, "rb") as f:
                return _last_line_streamed(f) > size
        with open(source.path, "rb") as f:
            return _last_line_bytes(f, size) > size
    except (OSError, EOFError, zlib.error):
        return False  # a file that cannot be read (or decompressed) to its end: reading it says why


def _last_line_streamed(f, chunk: int = 1 << 16) -> int:
    """The length of the last (not blank) line of the binary stream `f`, read to its end once, a small
    block at a time (the blocks are looked into, never copied)."""
    current, last = 0, 0  # the line being read; the last complete line that is not blank
    while block := f.read(chunk):
        end = max(block.rfind(b"\n"), block.rfind(b"\r"))
        if end < 0:
            current += len(block)
            continue
        stop = end  # past the block's last line that is not blank, if it has one
        while stop >= 0 and block[stop] in b"\r\n":
            stop -= 1
        if stop >= 0:
            cut = max(block.rfind(b"\n", 0, stop), block.rfind(b"\r", 0, stop))
            last = current + stop + 1 if cut < 0 else stop - cut
        elif current:
            last = current
        current = len(block) - end - 1
    return current or last


def _last_line_bytes(f, most: int) -> int:
    """The length of the last (not blank) line of the binary file `f`, read backwards a little at a time
    (up to `most` + a chunk: the count stops past it)."""
    pos, length, trailing = f.seek(0, os.SEEK_END), 0, True
    while pos > 0:
        step = min(1 << 16, pos)
        pos -= step
        f.seek(pos)
        chunk = f.read(step)
        if trailing:  # the line breaks and blank lines at the end are no line of the file's
            chunk = chunk.rstrip(b"\r\n")
            if not chunk:
                continue
            trailing = False
        cut = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
        if cut >= 0:
            return length + len(chunk) - cut - 1
        length += len(chunk)
        if length > most:
            break
    return length


def bounded(source: Source) -> bool:
    """Whether the file is read with the bounded buffer (READ_BUFFER): a plain text file whose last line
    fits it (a gzip file keeps DuckDB's own: its end is not found without decompressing all of it)."""
    return plain_text(source) and not long_last_line(source)
