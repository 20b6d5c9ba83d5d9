"""The usage reader: files in, each account's usage per period out, with every row accounted for.

`UsageReader.read` names and sniffs each file (format, kind, columns; whole-file problems are raised
there and then); the files are read together when a result is first asked for, by the compiled
query on the chosen engine (`ratecard.usage.compile`), so a request id is counted once across every
file of the run. Only when that query finds something not clean does the row-numbered diagnosing
pass run over the same files, to name each bad row (`ratecard.usage.checks`).

Memory: `memory_limit` caps the process; the engine works within four fifths of it (the rest is the
process's own, see `duck.ENGINE_SHARE`) and spills to `spill_directory` past that; accounts
stream out in order from the engine's sorted result, so Python holds one account at a time.
"""

from __future__ import annotations

import hashlib
import os
import stat
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from ..errors import RatecardError, UsageInvalid
from ..model import RuleSet
from ..periods import parse_period
from ..bill import builder
from ..rating import UsageItem
from .files import AGGREGATED, CALLS, KINDS, STDIN_NAME, Source, copy_pipe, copy_stdin, expand, identity_of, shown, sniff
from .records import AccountUsage, Reconciliation, Rejected
from .remote import is_url

if TYPE_CHECKING:
    import duckdb

    from .remote import Remote

ENGINES = ("duckdb", "spark")
_BATCH = 10_000  # result rows fetched at a time (as Python objects: a few MiB)
_item = builder(UsageItem)  # the frozen record, built without its slow __init__


class UsageReader:
    """Reads usage files against one rule set; counts every row; yields per-account totals.

    `period` keeps only that period's rows: the others are counted as out of period. Bad rows go to
    `on_reject` (e.g. a `RejectsWriter`) once the files are read; without it they are kept in
    `rejected`, for `raise_for_rejects()`. `memory_limit` (e.g. ``"4GiB"``) caps the memory of
    the reading (the engine gets four fifths of it), `spill_directory` is where it spills (default: a fresh folder in the system's temporary
    folder), `threads` its worker threads (default: one per core). `engine` is ``duckdb`` or
    ``spark`` (with `master`, default ``local[*]``).
    """

    def __init__(self, rules: RuleSet, *, period: str | None = None,
                 on_reject: Callable[[Rejected], object] | None = None, memory_limit: str | None = None,
                 spill_directory: str | os.PathLike | None = None, threads: int | None = None,
                 engine: str = "duckdb", master: str | None = None, spark=None):
        if period is not None:
            parse_period(period)
        if engine not in ENGINES:
            raise RatecardError(f"unknown usage engine {engine!r}; expected one of: {', '.join(ENGINES)}")
        self.rules, self.period, self.on_reject = rules, period, on_reject
        self.memory_limit, self.threads, self.engine, self.master, self.spark = memory_limit, threads, engine, master, spark
        self._rejected: list[Rejected] = []
        self.sources: list[Source] = []
        try:
            if spill_directory is not None:
                os.makedirs(spill_directory, exist_ok=True)
            self._scratch = tempfile.mkdtemp(prefix="ratecard-usage-", dir=spill_directory)
        except OSError as exc:
            raise RatecardError(f"{spill_directory or tempfile.gettempdir()}: cannot make the spill directory: "
                                f"{exc.strerror or exc}") from None
        self._con: duckdb.DuckDBPyConnection | None = None
        self._done = False
        self._counts: dict[str, int] = {}
        self._identities: dict[tuple, str] = {}
        self._sizes: dict[int, list[tuple[str, str]]] = {}  # size → (name, path) of the regular files read
        self._digests: dict[str, str] = {}
        self.copies: list[tuple[Source, str, str]] = []  # (source, name of the earlier file, sha256)
        self._stdin_read = False
        self._streams = 0  # file objects read, to name each one
        self._pipes = 0  # named pipes and devices copied to the scratch folder
        self.diagnosed = False  # whether the row-numbered pass had to run (something was not clean)
        self._valued = None  # the groups read by the `valued` path, when the rules need it
        self._ranges: list[tuple] = []  # the ranges of accounts the result is read in (see `ranges`)
        self._full = ""  # the engine's whole share of the cap
        self._remote: Remote | None = None  # the Hadoop file systems of the Spark session, once a URL is read
        self._remotes = 0  # files read at a URL

    # -- input ----------------------------------------------------------------------------------

    def read(self, source, *, stdin=None, format: str | None = None, kind: str | None = None,
             name: str | None = None) -> UsageReader:
        """Add a file (a path, a glob pattern, ``-`` for the binary stream `stdin`, an open file
        object, text or binary, such as ``io.StringIO(text)``, or with the Spark engine a URL of a
        file system Spark reads, such as ``hdfs://…`` or ``s3a://…/*.parquet``) to the run; standard input is named
        `name` in problems (e.g. "request body"; default <stdin>), a file object by `name`, else its
        own name, else ``<stream N>``."""
        if self._done:
            raise RatecardError("usage was already read: add every file before asking for the results")
        if hasattr(source, "read"):
            self._streams += 1
            own = getattr(source, "name", None)
            shown_as = name or (own if isinstance(own, str) and own else f"<stream {self._streams}>")
            real = copy_stdin(source, self._scratch, f"stream-{self._streams}", shown_as)
            found = self._sniffed(real, shown_as, format, kind, None)
            self._note_copy(found)
            self.sources.append(found)
            return self
        if not isinstance(source, (str, os.PathLike)):
            raise RatecardError(f"cannot read usage from a {type(source).__name__}: expected a path, a glob "
                                "pattern, '-' or a file object opened for reading")
        if isinstance(source, str) and is_url(source):
            return self._read_url(source, format, kind)
        for path in expand(source):
            if path == "-":
                if self._stdin_read:
                    raise RatecardError("-: standard input is given twice; it can be read once")
                name, real, identity = name or STDIN_NAME, copy_stdin(stdin, self._scratch), None
                self._stdin_read = True
            else:
                name, real = shown(path), str(path)  # noqa: PLW2901 - one name per file
                if os.path.isdir(real):
                    raise RatecardError(f"{name}: cannot read the usage file: Is a directory")
                identity = identity_of(real)
                if identity is not None and identity in self._identities:
                    raise RatecardError(f"{name}: this usage file is given twice (also as "
                                        f"{self._identities[identity]}); each file is read once, or its calls "
                                        "would count twice")
                if identity is not None:
                    self._identities[identity] = name
                if _is_stream(real):
                    self._pipes += 1
                    real = copy_pipe(real, self._scratch, name, self._pipes)
            found = self._sniffed(real, name, format, kind, identity)
            self._note_copy(found)
            self.sources.append(found)
        return self

    def _read_url(self, url: str, format: str | None, kind: str | None) -> UsageReader:
        """A file (or a glob of files) at a URL: Spark reads it where it is (see `remote`)."""
        if self.engine != "spark":
            # Never silently a local path that does not exist ("s3a:/bucket/..." would be one).
            raise RatecardError(f"{url}: a URL is read with --engine spark, through the cluster's file systems; "
                                "the DuckDB engine reads local (or mounted) files: copy or mount it, or run the "
                                "compiled query where the files are (`ratecard usage --sql --dialect spark`) and bill its result")
        from .remote import Remote, is_pattern, starts_array

        remote = self._remote = self._remote or Remote(self.spark or self._spark_session())
        for path in remote.expand(url):
            name = path if is_pattern(url) else url  # as given, or as the file system names a match
            identity = ("url", path)
            if identity in self._identities:
                raise RatecardError(f"{name}: this usage file is given twice (also as {self._identities[identity]}); "
                                    "each file is read once, or its calls would count twice")
            self._identities[identity] = name
            self._remotes += 1
            head = remote.stage(path, self._scratch, self._remotes)
            if format == "json" or (format is None and starts_array(head, name)):
                # A JSON array is read as JSON Lines, one record a line, made here from the whole file.
                whole = remote.fetch(path, self._scratch, f"remote-{self._remotes}")
                self.sources.append(self._sniffed(whole, name, format, kind, identity))
                continue
            found = replace(sniff(head, name, format=format, kind=kind, identity=identity), path=path, staged=head)
            if found.format == "parquet":
                from .duck import parquet_source

                found, _ = parquet_source(self._connection(), found, kind)
            self.sources.append(found)
        return self

    def _spark_session(self):
        from .spark import session

        return session(self.master)

    def _sniffed(self, real: str, name: str, format: str | None, kind: str | None, identity) -> Source:
        found = sniff(real, name, format=format, kind=kind, identity=identity, scratch=self._scratch)
        if found.format == "parquet":
            from .duck import parquet_source

            found, _ = parquet_source(self._connection(), found, kind)
        return found

    def _note_copy(self, source: Source) -> None:
        """Two files with the same bytes are most likely one file copied under another name (a hard
        link is refused above by device and inode). Only regular files are compared, and only
        those of equal size are hashed: a pipe can be read once, a device may never end."""
        try:
            st = os.stat(source.path)
        except OSError:
            return
        if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
            return
        for other, other_path in self._sizes.get(st.st_size, ()):
            digest = self._digest(source.path)
            if digest == self._digest(other_path):
                self.copies.append((source, other, digest))
                break
        self._sizes.setdefault(st.st_size, []).append((source.name, source.path))

    def _digest(self, path: str) -> str:
        if path not in self._digests:
            digest = hashlib.sha256()
            try:
                with open(path, "rb") as fh:
                    for block in iter(lambda: fh.read(1 << 20), b""):
                        digest.update(block)
            except OSError as exc:
                raise RatecardError(f"{path}: cannot read the usage file: {exc.strerror or exc}") from None
            self._digests[path] = digest.hexdigest()
        return self._digests[path]

    @property
    def warnings(self) -> list[str]:
        """Legal but suspicious input, one sentence each: files with the same content."""
        out = []
        for source, other, digest in self.copies:
            effect = ("its call records are counted once (by request id), so this changes no money"
                      if source.kind == CALLS else "its usage is counted twice")
            out.append(f"{source.name} has the same content as {other} (sha256 {digest[:12]}…): {effect}; "
                       "if it is a copy, give each file once")
        return out

    # -- results ----------------------------------------------------------------------------------

    def accounts(self) -> Iterator[AccountUsage]:
        """Every (account, period) read, in that order, with its usage per API and outcome."""
        self._run()
        if self._valued is not None:
            from .valued import accounts

            yield from accounts(self._valued)
            return
        if self._largest > 2**63 - 1:
            raise RatecardError(f"a total of {self._largest:,} calls of one API in one account's month is beyond "
                                "what can be billed exactly; check the usage")
        key: tuple[str, str] | None = None
        items: list[UsageItem] = []
        for batch in self._ranged("SELECT account, period, api, outcome, CAST(calls AS BIGINT) FROM usage_result "
                                  "WHERE {range} ORDER BY account, period, api, coalesce(outcome, '')"):
            for account, period, api, outcome, calls in batch:
                if account != key[0] or period != key[1] if key else True:
                    if key is not None:
                        yield AccountUsage(key[0], key[1], tuple(items))
                    key, items = (account, period), []
                items.append(_item(api, calls, outcome))
        if key is not None:
            yield AccountUsage(key[0], key[1], tuple(items))

    @property
    def rejected(self) -> list[Rejected]:
        """The bad rows, in file and row order (when no `on_reject` takes them)."""
        self._run()
        return self._rejected

    def account_ids(self) -> set[str]:
        """The accounts read."""
        self._run()
        if self._valued is not None:  # read without the engine (see `valued`)
            return {usage.account for usage in self.accounts()}
        return {row[0] for batch in self._ranged("SELECT DISTINCT account FROM usage_result WHERE {range}")
                for row in batch}

    @property
    def account_periods(self) -> int:
        self._run()
        if self._valued is not None:
            return len(self._valued)
        return sum(row[0] for batch in self._ranged("SELECT count(*) FROM (SELECT DISTINCT account, period "
                                                    "FROM usage_result WHERE {range})") for row in batch)

    def _ranged(self, sql: str) -> Iterator[list[tuple]]:
        from .ranges import read_ranged

        return read_ranged(self._connection(), self._ranges, sql, self._full, _BATCH)

    @property
    def reconciliation(self) -> Reconciliation:
        self._run()
        return Reconciliation(**self._counts, period=self.period)

    def raise_for_rejects(self) -> None:
        """Strict mode: raise UsageInvalid listing every bad row when there is any."""
        self._run()
        count = self._counts.get("rows_rejected", 0)
        if count:
            files = sorted({r.file for r in self.rejected})
            raise UsageInvalid([r.problem() for r in self.rejected],
                               f"{', '.join(files) or 'usage'}: {count:,} bad usage row(s); nothing was billed. "
                               "Fix them, or write them to a rejects file and bill the rest")

    def write_aggregated(self, target) -> int:
        """Write the accepted usage as aggregated usage (account, period, api, calls, outcome), sorted;
        Parquet, CSV or JSON Lines by the name's suffix. Returns the number of rows written."""
        self._run()
        if self._valued is not None:
            raise RatecardError(f"{target}: usage with transaction amounts or decimal quantities is not written as "
                                "aggregated usage")
        name = str(target)
        fmt = ("parquet" if name.endswith(".parquet") else "json" if name.endswith((".jsonl", ".json"))
               else "csv" if name.endswith(".csv") else None)
        if fmt is None:
            raise RatecardError(f"{name}: expected a .parquet, .csv or .jsonl file name for the aggregated usage")
        from .ranges import limit

        limit(self._connection(), self._full)  # one sort of the whole result, into a file: the whole share
        largest = _aggregate(self._connection(), "SELECT coalesce(max(calls), 0) FROM usage_result")
        if largest > 2**63 - 1:
            raise RatecardError(f"{name}: a total of {largest:,} calls does not fit a 64-bit count; split the period")
        from .duck import lit

        options = {"parquet": "FORMAT parquet", "json": "FORMAT json", "csv": "FORMAT csv, HEADER true"}[fmt]
        try:
            self._connection().execute(f"COPY (SELECT account, period, api, CAST(calls AS BIGINT) AS calls, outcome "
                              f"FROM usage_result ORDER BY account, period, api, coalesce(outcome, '')) "
                              f"TO {lit(name)} ({options})")
        except Exception as exc:  # noqa: BLE001 - duckdb's error types, reported with the file named
            raise RatecardError(f"{name}: cannot write the aggregated usage: {str(exc).splitlines()[0]}") from None
        return _aggregate(self._connection(), "SELECT count(*) FROM usage_result")

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
        shutil.rmtree(self._scratch, ignore_errors=True)

    def __enter__(self) -> UsageReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __del__(self):
        try:
            shutil.rmtree(self._scratch, ignore_errors=True)
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    # -- the run ----------------------------------------------------------------------------------

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            from .duck import connect

            self._con = connect(self.memory_limit, os.path.join(self._scratch, "spill"), self.threads)
        return self._con

    def run(self) -> UsageReader:
        """Read every file added so far (done on first use of a result otherwise)."""
        self._run()
        return self

    def _run(self) -> None:
        if self._done:
            return
        from . import valued

        if valued.needed(self.rules):
            self._run_valued()
            return
        from . import duck, ranges

        con = self._connection()
        full = self._full = duck.engine_memory(self.memory_limit)  # the engine's share of the cap
        engine = duck.engine_bytes(self.memory_limit)
        budgets = (min(engine, ranges.LOAD_BUDGET), min(engine, ranges.BUDGET))
        counts = dict.fromkeys(("rows_read", "rows_accepted", "rows_rejected", "rows_duplicate", "rows_out_of_period",
                                "calls_read", "calls_accepted", "calls_rejected", "calls_duplicate",
                                "calls_out_of_period"), 0)
        bad_rows: list[tuple[int, int, Rejected]] = []
        results = []
        for kind in KINDS:
            chosen = [(i, s) for i, s in enumerate(self.sources) if s.kind == kind]
            if not chosen:
                continue
            table = f"usage_{kind}"
            sources = [s for _, s in chosen]
            types = {j: (duck.parquet_schema(con, s) if s.format == "parquet" else {}) for j, s in enumerate(sources)}
            # Aggregated usage is read and grouped a range of accounts at a time, within the small budgets;
            # call records' grouping (one entry a request id, growing with the rows) gets the whole share.
            ranged = kind == AGGREGATED and self.engine == "duckdb"
            # A last line longer than a row may be is a bad row the engine's reader would drop unseen.
            runaway = self.engine == "duckdb" and any(duck.long_last_line(s) for s in sources)
            # Without one, every plain text file's last line fits the bounded buffer (`duck.bounded`): each
            # file's end is read once, above.
            projections = [duck.projection(s, types[j], buffer=duck.READ_BUFFER if ranged and duck.plain_text(s)
                                           else None) for j, s in enumerate(sources)]
            ranges.limit(con, budgets[0] if ranged else full)
            if not runaway and self._fast(con, kind, projections, sources, table, full if ranged else None, budgets):
                found = duck.fast_counts(con, table, kind)
            else:
                self.diagnosed = True
                ranges.limit(con, full)
                if self._remote is not None:  # the row pass reads each file here: the remote ones are copied
                    from .remote import fetched

                    sources = fetched(self._remote, sources, self._scratch, kind)
                found, bad = duck.run_rows(con, self.rules, kind, self.period, sources, types, self._scratch, table)
                for src, line, reason, code, raw, who, also in bad:
                    index = chosen[src][0]
                    bad_rows.append((index, line, Rejected(sources[src].name, int(line), reason, raw or "", code,
                                                           who or "", also)))
            for k, v in found.items():
                counts[k] += v
            results.append(table)
        import duckdb

        try:
            stream = min(engine, ranges.STREAM_BUDGET)
            calls = f"usage_{CALLS}" in results  # call records' totals: held as they are when small
            self._largest, self._ranges = ranges.result(con, results, stream, calls)
        except duckdb.OutOfMemoryException:  # a budget too small for what the engine holds meanwhile
            ranges.limit(con, full)
            self._largest, self._ranges = ranges.result(con, results, full, calls)
        if len(results) > 1:  # grouped into usage_result (one kind's table is read through the view)
            for t in results:
                con.execute(f"DROP TABLE IF EXISTS {t}")
        self._counts = counts
        self._done = True
        bad_rows.sort(key=lambda b: (b[0], b[1]))
        for _, _, rejected in bad_rows:
            if self.on_reject is None:
                self._rejected.append(rejected)
            else:
                self.on_reject(rejected)
        Reconciliation(**counts, period=self.period).check()

    def _run_valued(self) -> None:
        from . import valued

        counts, rejected, self._valued = valued.run(self.rules, self.period, self.sources)
        self._counts = counts
        self._done = True
        for bad in rejected:
            if self.on_reject is None:
                self._rejected.append(bad)
            else:
                self.on_reject(bad)
        Reconciliation(**counts, period=self.period).check()

    def _fast(self, con, kind, projections, sources, table, ranged, budgets) -> bool:
        if self.engine == "spark":
            from .spark import run_fast as spark_fast

            return spark_fast(self, con, kind, sources, table)
        from .duck import run_fast

        return run_fast(con, self.rules, kind, self.period, projections, table, ranged=ranged, budgets=budgets)


def read_usage(sources: Iterable, rules: RuleSet, *, period: str | None = None, stdin=None,
               format: str | None = None, kind: str | None = None,
               on_reject: Callable[[Rejected], object] | None = None, **options) -> UsageReader:
    """Read usage files (paths, globs, ``-`` for `stdin`, or open file objects) into one reader; see
    `UsageReader.read`."""
    reader = UsageReader(rules, period=period, on_reject=on_reject, **options)
    for source in ([sources] if isinstance(sources, (str, Path)) or hasattr(sources, "read") else sources):
        reader.read(source, stdin=stdin, format=format, kind=kind)
    reader.run()
    return reader


__all__ = ["UsageReader", "read_usage", "ENGINES", "CALLS"]


def _aggregate(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    """The one value of an aggregate query (which always returns one row)."""
    row = con.execute(sql).fetchone()
    assert row is not None
    return row[0]


def _is_stream(path: str) -> bool:
    """A path that exists but is not a regular file or folder: a pipe or a device, readable once."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False  # missing: sniffing says so, with the name
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))
