"""A set of request ids whose memory stays bounded however many ids it holds.

Duplicate detection must remember every request id counted so far, and a month of call records
can hold hundreds of millions of them: in a Python set that is about 130 bytes per id. `SeenIds`
keeps the first `memory_limit` ids in a set (small runs never touch the disk) and then moves them
to an SQLite database in a temporary file, where lookups go through a bounded page cache. From
then on the memory held is the page cache plus one batch of ids waiting to be inserted, whatever
the number of ids.

The price is time and disk: about 5 µs an id once spilled (random UUIDs; a set takes 0.2 µs) and
about 50 bytes of disk an id (500 MB for ten million). The database is scratch data, rebuilt by
every run: no journal, no fsync, one connection holding an exclusive lock. The file is deleted on
`close()` (or when the object is collected).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import weakref
from pathlib import Path

from .errors import RatecardError

# Small on purpose: what the store holds at its largest (the set just before the spill, or the
# page cache and one batch after it) is a few per cent of a bill run's memory, so a file ten times
# larger peaks within 10% of the smaller one wherever the spill falls (bench/bill.py measures it).
MEMORY_LIMIT = 10_000  # ids held in a set before spilling: ≈ 1.3 MB of 36-character UUIDs
BATCH = 10_000  # ids inserted per transaction once spilled: larger batches share more B-tree pages
CACHE_KIB = 2_048  # SQLite page cache of the spilled store


def _remove(path: str, connection: sqlite3.Connection) -> None:
    connection.close()
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _key(item: str) -> bytes:
    """An id as stored: its UTF-8 bytes, lone surrogates included (a JSON request id may hold
    "\\ud800"), so that every Python string the reader can see is stored and told apart exactly."""
    return item.encode("utf-8", "surrogatepass")


class SeenIds:
    """A set-like store of strings: ``in``, ``add`` and ``len``, bounded in memory.

    Use it as a context manager (or call `close`) to delete its temporary file. `directory` is
    where that file goes (default: the system's temporary folder, e.g. ``$TMPDIR``).
    """

    def __init__(self, memory_limit: int | None = None, *, batch: int | None = None, cache_kib: int | None = None,
                 directory: str | os.PathLike | None = None):
        # Defaults read at call time, so that a test can lower them for a whole run.
        memory_limit = MEMORY_LIMIT if memory_limit is None else memory_limit
        batch = BATCH if batch is None else batch
        cache_kib = CACHE_KIB if cache_kib is None else cache_kib
        if memory_limit < 0 or batch < 1 or cache_kib < 1:
            raise ValueError("memory_limit must be >= 0, batch and cache_kib >= 1")
        self.memory_limit, self.batch, self.cache_kib = memory_limit, batch, cache_kib
        self.directory = directory
        self._ids: set[str] = set()  # every id before the spill; the batch not yet inserted after
        self._db: sqlite3.Connection | None = None
        self._cursor: sqlite3.Cursor | None = None
        self._stored = 0  # ids in the database
        self._path: str | None = None
        self._finalizer = None
        # The id `__contains__` last found absent: `add` right after it need not ask the database
        # again (the reader always asks before it adds). Any add invalidates it.
        self._absent: str | None = None
        self._closed = False

    # -- the set protocol --------------------------------------------------------------------------

    def __contains__(self, item) -> bool:
        if item in self._ids:
            return True
        if self._db is None:
            if self._closed:
                raise ValueError("SeenIds is closed")
            return False
        if not isinstance(item, str):
            return False  # only strings are ever stored
        if self._stored_has(item):
            return True
        self._absent = item
        return False

    def add(self, item: str) -> None:
        if self._closed:
            raise ValueError("SeenIds is closed")
        if not isinstance(item, str):
            # SQLite would store 1 and "1" alike: keep the set's meaning by taking text only.
            raise TypeError(f"SeenIds holds strings, not {type(item).__name__}")
        ids = self._ids
        if item in ids:
            return
        if self._db is not None and item != self._absent and self._stored_has(item):
            return
        self._absent = None
        ids.add(item)
        if self._db is None:
            if len(ids) > self.memory_limit:
                self._spill()
        elif len(ids) >= self.batch:
            self._flush()

    def __len__(self) -> int:
        return self._stored + len(self._ids)

    def __bool__(self) -> bool:
        return len(self) > 0

    # -- lifetime ----------------------------------------------------------------------------------

    @property
    def spilled(self) -> bool:
        """Whether the ids have moved to the database."""
        return self._db is not None

    @property
    def path(self) -> str | None:
        """The temporary database file, once spilled and until closed."""
        return self._path

    def close(self) -> None:
        """Forget every id and delete the temporary file. Closing twice is harmless."""
        self._closed = True
        self._ids = set()
        self._stored = 0
        if self._finalizer is not None:
            self._finalizer()  # closes the connection and removes the file, once
            self._finalizer = None
        self._db = self._cursor = self._path = None

    def __enter__(self) -> SeenIds:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- the database ------------------------------------------------------------------------------

    def _stored_has(self, item) -> bool:
        try:
            return self._cursor.execute("SELECT 1 FROM seen WHERE id = ?", (_key(item),)).fetchone() is not None
        except sqlite3.Error as exc:
            raise self._error("cannot read", exc) from None

    def _spill(self) -> None:
        fd, path = tempfile.mkstemp(prefix="ratecard-seen-", suffix=".sqlite", dir=self.directory)
        os.close(fd)
        try:
            db = sqlite3.connect(path, isolation_level=None)  # transactions are explicit, one per batch
        except sqlite3.Error as exc:
            os.unlink(path)
            raise self._error("cannot create", exc, path) from None
        self._db, self._path = db, path
        self._finalizer = weakref.finalize(self, _remove, path, db)
        try:
            db.execute("PRAGMA journal_mode = OFF")
            db.execute("PRAGMA synchronous = OFF")
            db.execute("PRAGMA locking_mode = EXCLUSIVE")
            db.execute("PRAGMA temp_store = FILE")
            db.execute(f"PRAGMA cache_size = -{int(self.cache_kib)}")  # negative: KiB, not pages
            db.execute("CREATE TABLE seen (id BLOB PRIMARY KEY) WITHOUT ROWID")
            self._cursor = db.cursor()  # one cursor for every lookup: the hot path
        except sqlite3.Error as exc:
            raise self._error("cannot create", exc) from None
        self._flush()

    def _flush(self) -> None:
        db = self._db
        # Sorted, the inserts walk the B-tree in order: fewer pages touched per batch.
        batch = sorted(self._ids)
        try:
            db.execute("BEGIN")
            db.executemany("INSERT INTO seen (id) VALUES (?)", ((_key(i),) for i in batch))
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._error("cannot write", exc) from None
        self._stored += len(batch)
        self._ids = set()

    def _error(self, what: str, exc: Exception, path: str | None = None) -> RatecardError:
        where = Path(path or self._path or tempfile.gettempdir())
        return RatecardError(f"{where}: {what} the temporary store of request ids (used to find duplicate "
                             f"calls): {exc}; free some disk space or set TMPDIR to a folder with room")

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"spilled to {self._path}" if self._db else "in memory"
        return f"<SeenIds {len(self):,} ids, {state}>"
