"""The ledger file: opening it (refusing what is not a ledger), migrating it, and the two ways in,
`read` and `write` (one ``BEGIN IMMEDIATE`` transaction, rolled back whole on any error)."""

from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager
from urllib.parse import quote

from . import schema
from .values import APPLICATION_ID, BUSY_TIMEOUT_S, DB_ENV, DEFAULT_DB, LedgerError, NotALedger, default_path


class Store:
    """An open ledger file. `create` makes a new ledger when the file does not exist (or is an empty
    SQLite file); `readonly` opens it for reading only (a missing or out-of-date ledger is then an
    error rather than created or migrated)."""

    def __init__(self, path=None, *, create: bool = False, readonly: bool = False,
                 timeout: float = BUSY_TIMEOUT_S):
        self.path = default_path(path)
        self.readonly, self.timeout = readonly, timeout
        self._batched = False  # inside `batch()`: each `write()` is a savepoint of its transaction
        self._savepoints = True  # ... unless the batch was asked for without
        self._spoiled = False  # a write() of a batch without savepoints failed, its changes kept
        shown = str(self.path)
        if self.path.is_dir():
            raise NotALedger(f"{shown}: is a folder, not a ledger file")
        if not self.path.exists() and (readonly or not create):
            raise LedgerError(f"{shown}: no ledger here; create one with `ratecard account create` "
                              f"(the ledger is --db PATH, else ${DB_ENV}, else ./{DEFAULT_DB})")
        try:
            if readonly:
                db = sqlite3.connect(f"file:{quote(str(self.path.resolve()))}?mode=ro", uri=True,
                                     isolation_level=None, timeout=timeout, check_same_thread=False)
            else:
                db = sqlite3.connect(str(self.path), isolation_level=None, timeout=timeout,
                                     check_same_thread=False)
        except sqlite3.Error as exc:
            raise LedgerError(f"{shown}: cannot open the ledger: {exc}") from None
        self._db = db
        try:
            self._open(create and not readonly)
        except sqlite3.Error as exc:
            db.close()
            raise LedgerError(f"{shown}: {exc}") from None
        except BaseException:
            db.close()
            raise

    # -- opening and migrating -----------------------------------------------------------------

    def _open(self, create: bool) -> None:
        db, shown = self._db, str(self.path)
        try:
            # One read transaction: a concurrent process may be creating the ledger meanwhile, and the
            # id, the tables and the version must come from the same snapshot.
            db.execute("BEGIN")
            try:
                app_id = db.execute("PRAGMA application_id").fetchone()[0]
                tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                version = self.version
            finally:
                db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorname", "") != "SQLITE_NOTADB":
                raise LedgerError(f"{shown}: cannot read the ledger: {exc}") from None
            raise NotALedger(f"{shown}: not a ratecard ledger ({exc}); nothing was changed") from None
        if "ratecard_schema" not in tables:
            if tables or app_id not in (0, APPLICATION_ID):
                raise NotALedger(f"{shown}: an SQLite database, but not a ratecard ledger (it has no "
                                 "ratecard_schema table); nothing was changed")
            if not create:
                raise LedgerError(f"{shown}: an empty database, not a ledger yet; create an account to start one")
        elif app_id != APPLICATION_ID:
            raise NotALedger(f"{shown}: not a ratecard ledger (SQLite application id {app_id:#x}); "
                             "nothing was changed")
        latest = schema.LATEST
        if version > latest:
            raise NotALedger(f"{shown}: written by a newer ratecard (ledger schema version {version}; this "
                             f"release reads up to {latest}); upgrade ratecard. Nothing was changed")
        db.execute("PRAGMA foreign_keys = ON")
        if self.readonly:
            if version < latest:
                raise LedgerError(f"{shown}: ledger schema version {version} is older than this release's "
                                  f"{latest}; run `ratecard ledger migrate --db {shown}` first")
            return
        self._use_wal()
        self.migrate()

    def _use_wal(self) -> None:
        """Write-ahead logging: readers (status checks) never wait for a settle run, nor it for them.
        Switching needs the file to itself, which a process creating the same new ledger at the same
        moment may hold; SQLite does not wait for that by itself, so wait here."""
        db = self._db
        deadline = time.monotonic() + self.timeout
        while db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            try:
                db.execute("PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError as exc:
                if getattr(exc, "sqlite_errorname", "") not in ("SQLITE_BUSY", "SQLITE_LOCKED") \
                        or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)

    @property
    def version(self) -> int:
        try:
            row = self._db.execute("SELECT max(version) FROM ratecard_schema").fetchone()
        except sqlite3.OperationalError:
            return 0
        return row[0] or 0

    def migrate(self) -> list[int]:
        """Apply the migrations this ledger lacks, each in its own transaction. Returns their versions.
        A migration that refuses (a ledger it does not know) changes nothing; those before it stay
        applied, and its error says at which version the ledger is left."""
        done: list[int] = []
        for m in schema.MIGRATIONS:
            with self.write() as db:
                if self.version >= m.version:
                    continue  # already applied (possibly by a concurrent process)
                if m.version == 1:
                    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                try:
                    m.apply(db)
                except LedgerError as exc:
                    left = f"migrated from version {done[0] - 1} to {done[-1]} just now" if done else "as it was"
                    raise LedgerError(f"{exc}; nothing of version {m.version} was applied: the ledger is at version "
                                      f"{m.version - 1}, {left}") from None
                db.execute("INSERT INTO ratecard_schema (version, description) VALUES (?, ?)",
                           (m.version, m.description))
                done.append(m.version)
        return done

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def write(self):
        """One change, all or nothing. Inside `batch()` it is a savepoint of the batch's transaction:
        undone alone when it fails, made durable when the batch commits (in a `batch(savepoints=False)`,
        part of the batch's one change: undone with the whole batch)."""
        if self.readonly:
            raise LedgerError(f"{self.path}: opened read-only")
        if self._batched:
            with (self._savepoint() if self._savepoints else self._part()) as db:
                yield db
            return
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise LedgerError(f"{self.path}: cannot start a change: {exc}") from None
        try:
            yield db
            db.execute("COMMIT")
        except BaseException as exc:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            if isinstance(exc, sqlite3.Error):
                raise LedgerError(f"{self.path}: {exc}; nothing was changed") from None
            raise

    @contextmanager
    def batch(self, *, savepoints: bool = True):
        """Several `write()`s in one ``BEGIN IMMEDIATE`` transaction, committed together on leaving
        (one commit, one sync of the log, instead of one each); on an error every one of them is
        rolled back. A crash leaves all of them recorded or none. Each `write()` is a savepoint, undone
        alone when it fails; with `savepoints` false it is not (a savepoint costs about a tenth of
        recording a bill): a `write()` that fails (a LedgerError) leaves what it changed until the
        batch is rolled back, so the caller must then leave the batch by an exception, which rolls it
        back whole, and redo what it wants kept."""
        if self.readonly:
            raise LedgerError(f"{self.path}: opened read-only")
        if self._batched:
            raise RuntimeError("Store.batch() does not nest")
        with self.write() as db:
            self._batched, self._savepoints, self._spoiled = True, savepoints, False
            try:
                yield db
                if not db.in_transaction:
                    # SQLite undoes a whole transaction by itself after some errors (a full disk, out of
                    # memory): what the batch did is gone, and COMMIT would silently commit nothing.
                    raise LedgerError(f"{self.path}: SQLite rolled the transaction back; nothing of it was "
                                      "recorded")
            finally:
                self._batched = False

    @contextmanager
    def journals_in_memory(self):
        """SQLite's temporary files kept in memory meanwhile: what a run of `batch()`es wants. Each savepoint
        keeps the pages it changes as they were before it (its sub-journal); in a file, past SQLite's first
        64 KiB, that is a write system call a page, several an account, about as much CPU as the rest of
        recording the account. In memory each is a copy. Put back after, so that other reads' large sorts
        still spill to disk. Not inside a transaction (SQLite refuses to change it there)."""
        try:
            before = int(self._db.execute("PRAGMA temp_store").fetchone()[0])
            self._db.execute("PRAGMA temp_store = MEMORY")
        except sqlite3.Error as exc:
            raise LedgerError(f"{self.path}: {exc}") from None
        try:
            yield
        finally:
            try:
                self._db.execute(f"PRAGMA temp_store = {before}")
            except sqlite3.Error:
                pass  # refused only inside a transaction left open, when the connection is of no further use

    @property
    def in_transaction(self) -> bool:
        """False inside a batch whose transaction SQLite rolled back by itself (a full disk, out of memory)."""
        return self._db.in_transaction

    @contextmanager
    def _part(self):
        """A `write()` of a `batch(savepoints=False)`: its errors are said as a savepoint's are, but
        nothing is undone until the batch is."""
        db = self._db
        if not db.in_transaction:
            raise LedgerError(f"{self.path}: SQLite rolled the transaction back; nothing of it was recorded")
        try:
            yield db
        except BaseException as exc:
            # What it changed stays until the batch is rolled back, even when its caller catches the
            # exception and goes on: the batch must then be undone and redone with savepoints.
            self._spoiled = True
            if isinstance(exc, sqlite3.Error):
                raise LedgerError(f"{self.path}: {exc}; nothing was changed") from None
            raise

    @property
    def spoiled(self) -> bool:
        """In a `batch(savepoints=False)`: a `write()` failed, and what it changed is still in the batch."""
        return self._spoiled

    @contextmanager
    def _savepoint(self):
        db = self._db
        if not db.in_transaction:
            raise LedgerError(f"{self.path}: SQLite rolled the transaction back; nothing of it was recorded")
        db.execute("SAVEPOINT change")
        try:
            yield db
            db.execute("RELEASE change")
        except BaseException as exc:
            try:
                db.execute("ROLLBACK TO change")
                db.execute("RELEASE change")
            except sqlite3.Error:
                pass  # the whole transaction is gone already: the batch's commit says so
            if isinstance(exc, sqlite3.Error):
                raise LedgerError(f"{self.path}: {exc}; nothing was changed") from None
            raise

    def read(self, sql: str, params=()) -> list:
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise LedgerError(f"{self.path}: {exc}") from None
