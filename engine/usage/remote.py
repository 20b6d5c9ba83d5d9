"""Usage files at a URL Spark reads (``hdfs://``, ``s3a://``, ``abfss://``, ``gs://``, ``file://``…)
through the Hadoop file systems of the Spark session, so `--engine spark` reads them where they are.

Only what this machine itself must see is brought here, into the reader's scratch folder: a file's
first bytes, to tell its format, kind and columns as a local file's are told (`files.sniff`); a
Parquet file's footer, its schema; and, only when the compiled query found a group that is not clean,
the whole file, for the row-numbered pass that names each bad row. The query itself runs on the
cluster, on the files where they are.
"""

from __future__ import annotations

import os
import re
import struct

from ..errors import RatecardError
from .files import MAX_ROW_BYTES, PARQUET_MAGIC, Source, open_binary

URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://")
_GLOB = frozenset("*?[{")
# Enough of a file to hold its header line (or first record) whole, as long as a row may be, even
# compressed: the first line is all that sniffing reads of a text file.
_HEAD = MAX_ROW_BYTES + (1 << 16)


def is_url(text) -> bool:
    return isinstance(text, str) and URL.match(text) is not None


def is_pattern(url: str) -> bool:
    return bool(_GLOB & set(url))


class Remote:
    """The Hadoop file systems of one Spark session."""

    def __init__(self, spark):
        self.spark = spark
        self.jvm = spark.sparkContext._jvm
        self.conf = spark.sparkContext._jsc.hadoopConfiguration()

    def _fs(self, url: str):
        path = self.jvm.org.apache.hadoop.fs.Path(url)
        try:
            return path, path.getFileSystem(self.conf)
        except Exception as exc:  # noqa: BLE001 - py4j: no file system for the scheme, bad credentials
            raise RatecardError(f"{url}: Spark cannot open this location: {_java_message(exc)}; expected a URL one of "
                                "the cluster's file systems serves (its connector on Spark's class path)") from None

    def expand(self, url: str) -> list[str]:
        """The files a URL names: itself, or those a glob pattern in it matches (sorted), qualified
        (``file:/data/x.csv`` for ``file:///data/x.csv``), as Spark will read them."""
        path, fs = self._fs(url)
        try:
            found = fs.globStatus(path) if is_pattern(url) else [fs.getFileStatus(path)]
        except Exception as exc:  # noqa: BLE001 - py4j: FileNotFoundException, access denied
            if "FileNotFoundException" in str(exc):
                raise RatecardError(f"{url}: cannot read the usage file: No such file or directory") from None
            raise RatecardError(f"{url}: cannot read the usage file: {_java_message(exc)}") from None
        if found is None or len(found) == 0:
            raise RatecardError(f"{url}: no usage file matches this pattern")
        files = sorted(str(status.getPath().toString()) for status in found if status.isFile())
        if not files:
            raise RatecardError(f"{url}: cannot read the usage file: Is a directory (name its files, e.g. with a "
                                "glob pattern such as …/*.parquet)")
        return files

    def size(self, url: str) -> int:
        path, fs = self._fs(url)
        return int(fs.getFileStatus(path).getLen())

    def read(self, url: str, size: int, offset: int, length: int) -> bytes:
        """`length` bytes of the file (of `size` bytes) from `offset` (fewer at its end)."""
        path, fs = self._fs(url)
        length = max(0, min(length, size - offset))
        if length == 0:
            return b""
        try:
            stream = fs.open(path)
            try:
                stream.seek(offset)
                # Returned as a Java byte[], which py4j hands over as bytes (a buffer filled in place would not come back).
                return bytes(self.jvm.org.apache.commons.io.IOUtils.toByteArray(stream, length))
            finally:
                stream.close()
        except Exception as exc:  # noqa: BLE001 - py4j: an I/O error on the cluster's side
            raise RatecardError(f"{url}: cannot read the usage file: {_java_message(exc)}") from None

    def stage(self, url: str, directory: str, number: int) -> str:
        """What sniffing reads of the file, as a local file: its first bytes, or for Parquet the
        file with its data left out (magic, footer, footer length, magic: the schema DuckDB
        describes, exactly as from the whole file)."""
        local = os.path.join(directory, f"remote-{number}-head")
        size = self.size(url)  # asked of the file system once: each question is a round trip
        head = self.read(url, size, 0, _HEAD)
        if head[:4] == PARQUET_MAGIC:
            tail = self.read(url, size, max(0, size - 8), 8)
            if len(tail) == 8 and tail[4:] == PARQUET_MAGIC:
                (footer,) = struct.unpack("<I", tail[:4])
                if 0 < footer <= size - 12:
                    head = PARQUET_MAGIC + self.read(url, size, size - 8 - footer, footer + 8)
        with open(local, "wb") as out:
            out.write(head)
        return local

    def fetch(self, url: str, directory: str, file_name: str) -> str:
        """The whole file, copied here as `file_name` (for the row-numbered pass)."""
        local = os.path.join(directory, file_name)
        path, fs = self._fs(url)
        try:
            fs.copyToLocalFile(False, path, self.jvm.org.apache.hadoop.fs.Path(local), True)
        except Exception as exc:  # noqa: BLE001 - py4j: an I/O error, a full local disk
            raise RatecardError(f"{url}: cannot copy the usage file to {directory} to name its bad rows: "
                                f"{_java_message(exc)}; free space there, or spill elsewhere (--spill-dir)") from None
        return local


def starts_array(head: str, name: str) -> bool:
    """Whether a staged head (gzip or not) begins a JSON array."""
    with open_binary(head, name) as binary:
        try:
            start = binary.read(1 << 12)
        except (OSError, EOFError):
            return False  # not gzip after all, or cut short: sniffing says what it is
    return start.lstrip()[:1] == b"["


def fetched(remote: Remote, sources: list[Source], directory: str, kind: str) -> list[Source]:
    """The sources with every remote file's whole bytes brought here (local ones as they are)."""
    from dataclasses import replace

    out = []
    for number, source in enumerate(sources):
        if source.staged is not None:
            source = replace(source, path=remote.fetch(source.path, directory, f"rows-{kind}-{number}"), staged=None)
        out.append(source)
    return out


def _java_message(exc: Exception) -> str:
    """The first line of a Java exception's message, without py4j's wrapping."""
    text = str(getattr(exc, "java_exception", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
