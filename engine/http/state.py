"""What `ratecard serve` holds between requests: the rule sets and the ledger. No web framework here.

**Rule sets** are loaded once, at start (a rule set that does not load stops the start, with every
problem listed). Every `reload_interval` seconds a request first looks at the rule files' sizes and
modification times; a folder that changed is read and validated again, and replaces the old
version only when it is valid. A request takes the whole `RulesSnapshot` once and uses nothing
else, so it sees one consistent version of every rule set, and its response names the fingerprint.
An invalid edit leaves the last good version in service and is reported (`GET /v1/rule-sets`).

**Status** answers come from the ledger, one indexed query, never from rating. They are kept in a
bounded LRU cache (`status_cache` entries). Each request compares the ledger file's and its
write-ahead log's size and modification time with those the cache was filled under, and empties
the cache when they differ, so a change committed by any process (a settle run suspending an
account, a top-up resuming it) is normally seen by the very next request. As a bound that holds
whatever the file system's timestamps do, a cached answer is never older than `status_ttl`
seconds: **a suspension is visible within `status_ttl` (default 1 s) of its commit.**
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from ..errors import Location, Problem, RatecardError, RuleSetInvalid
from ..model import RuleSet
from .problems import HttpProblem


# -- rule sets ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Loaded:
    """One rule set as served: the last valid version, and what is wrong with its files if newer ones failed."""

    name: str
    folder: Path
    rules: RuleSet
    files: Mapping[str, bytes]  # file name → content, of the version served
    signature: tuple
    pending_problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class RulesSnapshot:
    sets: Mapping[str, Loaded]
    default: str
    version: int = 0  # how many reloads made it

    def get(self, name: str | None) -> Loaded:
        loaded = self.sets.get(name or self.default)
        if loaded is None:
            raise HttpProblem(404, "unknown-rule-set", "Unknown rule set",
                              f"no rule set named {name!r} is served; served: {', '.join(sorted(self.sets))}")
        return loaded


def _signature(folder: Path) -> tuple:
    from ..rules import RULE_SUFFIXES

    try:
        entries = []
        for p in sorted(folder.iterdir()):
            if p.suffix in RULE_SUFFIXES and p.is_file():
                st = p.stat()
                entries.append((p.name, st.st_mtime_ns, st.st_size))
        return tuple(entries)
    except OSError:
        return ()


def _read_folder(folder: Path) -> tuple[tuple, dict[str, bytes], list[Problem]]:
    from ..rules import display_path

    signature = _signature(folder)
    files, problems = {}, []
    for name, _, _ in signature:
        try:
            files[name] = (folder / name).read_bytes()
        except OSError as exc:
            problems.append(Problem(Location(display_path(folder / name)), f"cannot read the file: {exc.strerror or exc}"))
    if not signature and not problems:
        problems.append(Problem(Location(display_path(folder)), "no rule files (*.yaml) in this folder"))
    return signature, files, problems


def check_files(files: Mapping[str, bytes], *, name: str, shown: str, label=lambda f: f):
    """Validate rule files given by content (see `ratecard.rules.check_rule_files`)."""
    from ..rules import check_rule_files

    return check_rule_files({label(f): content for f, content in files.items()}, name=name, shown=shown)


def load_folder(folder: Path) -> Loaded | list[Problem]:
    from ..rules import display_path

    signature, files, problems = _read_folder(folder)
    if problems:
        return problems
    shown = display_path(folder)
    rules, found = check_files(files, name=folder.resolve().name, shown=shown,
                               label=lambda f: display_path(folder / f))
    if rules is None:
        return [p for p in found if p.severity == "error"]
    return Loaded(rules.name, folder, rules, files, signature)


class RulesStore:
    def __init__(self, folders, *, reload_interval: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.folders = tuple(Path(f) for f in folders)
        if not self.folders:
            raise RatecardError("ratecard serve needs at least one rule set folder (--rules DIR)")
        self.interval, self.clock = reload_interval, clock
        sets: dict[str, Loaded] = {}
        problems: list[Problem] = []
        for folder in self.folders:
            loaded = load_folder(folder)
            if isinstance(loaded, list):
                problems += loaded
                continue
            if loaded.name in sets:
                raise RatecardError(f"two rule sets are named {loaded.name!r} ({sets[loaded.name].folder} and "
                                    f"{folder}); serve folders with distinct names")
            sets[loaded.name] = loaded
        if problems:
            raise RuleSetInvalid(problems, f"{len(problems)} problem(s) in the rule sets to serve; nothing is served")
        self._snapshot = RulesSnapshot(sets, next(iter(sets)))
        self._checked = clock()
        self._lock = threading.Lock()

    def current(self) -> RulesSnapshot:
        """The rule sets to use for one request: reloaded first when a file changed."""
        if self.due():
            self.reload()
        return self._snapshot

    def due(self) -> bool:
        """Whether the files should be looked at again (an async caller reloads in a worker thread)."""
        return self.clock() - self._checked >= self.interval

    def reload(self) -> bool:
        """Look at the files now; True when some rule set was replaced. One reload at a time: a
        request that finds one under way uses the current snapshot rather than wait."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            self._checked = self.clock()
            old = self._snapshot
            sets = dict(old.sets)
            changed = False
            for name, loaded in old.sets.items():
                signature = _signature(loaded.folder)
                if signature == loaded.signature:
                    continue
                fresh = load_folder(loaded.folder)
                if isinstance(fresh, Loaded):
                    sets[name] = fresh
                else:  # keep serving the last good version; say what is wrong with the new one
                    sets[name] = Loaded(name, loaded.folder, loaded.rules, loaded.files, signature, tuple(fresh))
                changed = True
            if changed:
                self._snapshot = RulesSnapshot(sets, old.default, old.version + 1)
            return changed
        finally:
            self._lock.release()


# -- the ledger and the status cache -------------------------------------------------------------------


def _file_signature(path: Path) -> tuple:
    out: list[tuple[int, int, int] | None] = []  # (mtime, size, inode), None for a missing file
    for p in (path, path.with_name(path.name + "-wal")):
        try:
            st = os.stat(p)
            out.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            out.append(None)
    return tuple(out)


@dataclass
class StatusAnswer:
    status: int
    body: bytes


@dataclass
class LedgerAccess:
    """The ledger file the server reads and writes; None when the server has none."""

    path: Path | None
    status_ttl: float = 1.0
    status_cache: int = 10_000
    clock: Callable[[], float] = time.monotonic
    # Two read-only connections: one for status answers (the event loop's, never kept waiting by a
    # long read), one for everything else (invoices, from worker threads).
    _readers: dict = field(default_factory=dict, repr=False)
    _locks: dict = field(default_factory=lambda: {"status": threading.Lock(), "other": threading.Lock()}, repr=False)
    _write_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _cache: OrderedDict = field(default_factory=OrderedDict, repr=False)
    _cache_signature: tuple | None = field(default=None, repr=False)
    _cache_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _unavailable(self, detail: str) -> HttpProblem:
        return HttpProblem(503, "no-ledger", "No ledger", detail)

    def read(self, fn, *, connection: str = "other"):
        """`fn(ledger)` on one of the server's read-only connections (one request at a time uses each)."""
        if self.path is None:
            raise self._unavailable("this server has no ledger (start it with --db PATH or $RATECARD_DB)")
        from ..ledger import Ledger

        with self._locks[connection]:
            reader = self._readers.get(connection)
            if reader is None:
                try:
                    reader = self._readers[connection] = Ledger(self.path, readonly=True)
                except RatecardError as exc:
                    raise self._unavailable(str(exc)) from None
            return fn(reader)

    def write(self, fn):
        """`fn(ledger)` on a writable connection, one writer of this server at a time."""
        if self.path is None:
            raise self._unavailable("this server has no ledger (start it with --db PATH or $RATECARD_DB)")
        from ..ledger import Ledger

        with self._write_lock:
            with Ledger(self.path, create=True) as ledger:
                return fn(ledger)

    def signature(self) -> tuple:
        return _file_signature(self.path) if self.path is not None else ()

    def status(self, account: str, service: str) -> StatusAnswer:
        """The status document of one account and service (200) or the unknown-account problem
        (404), from the cache when the ledger has not changed and the answer is younger than the TTL."""
        key = (account, service)
        signature = self.signature()
        now = self.clock()
        with self._cache_lock:
            if signature != self._cache_signature:
                self._cache.clear()
                self._cache_signature = signature
            hit = self._cache.get(key)
            if hit is not None and now - hit[0] < self.status_ttl:
                self._cache.move_to_end(key)
                return hit[1]
        answer = self._status_now(account, service)
        with self._cache_lock:
            if self._cache_signature == signature and self.status_cache > 0:
                self._cache[key] = (now, answer)
                self._cache.move_to_end(key)
                while len(self._cache) > self.status_cache:
                    self._cache.popitem(last=False)
        return answer

    def _status_now(self, account: str, service: str) -> StatusAnswer:
        from .problems import from_error

        try:
            status = self.read(lambda ledger: ledger.status(account, service), connection="status")
        except RatecardError as exc:
            problem = from_error(exc)
            if problem.status != 404:
                raise problem from None
            document = problem.document(f"/v1/accounts/{account}/status")
            return StatusAnswer(404, (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode())
        return StatusAnswer(200, (json.dumps(status.to_dict(), ensure_ascii=False) + "\n").encode())

    def close(self) -> None:
        for name, lock in self._locks.items():
            with lock:
                reader = self._readers.pop(name, None)
                if reader is not None:
                    reader.close()
