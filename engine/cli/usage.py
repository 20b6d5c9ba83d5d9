"""How `bill`, `settle` and `diff` read usage (engine, memory, formats), and `ratecard usage`: the
compiled aggregation query, or the aggregated usage of some call records written to a file."""

from __future__ import annotations

import argparse
import re
import sys
from typing import TYPE_CHECKING, Callable

from ..errors import RatecardError
from .common import check_rejects_path, choices_help, rules_of, stdin_bytes

if TYPE_CHECKING:
    from ..usage.records import Rejected

INPUT_FORMATS = ("csv", "jsonl", "parquet")
KINDS = ("aggregated", "calls")
_SIZE = re.compile(r"[0-9]{1,6}(\.[0-9]{1,3})?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)


def size_arg(text: str) -> str:
    if not _SIZE.fullmatch(text.strip()):
        raise argparse.ArgumentTypeError(f"expected a memory size such as 4GiB or 512MB, got {text!r}")
    return text.strip()


def threads_arg(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,3}", text) or not 1 <= int(text) <= 256:
        raise argparse.ArgumentTypeError(f"expected a number of threads from 1 to 256, got {text!r}")
    return int(text)


def add_usage_options(p: argparse.ArgumentParser, *, formats: bool = True) -> None:
    """The options every command reading usage files shares."""
    if formats:
        p.add_argument("--input-format", choices=INPUT_FORMATS,
                       help=choices_help("usage file format", INPUT_FORMATS, "detected from the name and content"))
        p.add_argument("--kind", choices=KINDS, help=choices_help("usage kind", KINDS, "detected from the columns",
                       {"aggregated": "account, period, api, calls per row", "calls": "one record per call"}))
    g = p.add_argument_group("usage engine")
    g.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb",
                   help=choices_help("what reads and aggregates the usage", ("duckdb", "spark"), "duckdb",
                                     {"duckdb": "embedded", "spark": "needs ratecard[spark]"}))
    g.add_argument("--master", metavar="URL", help="the Spark master URL (default: local[*]); with --engine spark")
    g.add_argument("--memory-limit", type=size_arg, metavar="SIZE",
                   help="memory the engine may use before it spills to disk, e.g. 4GiB (default: 2GiB)")
    g.add_argument("--spill-dir", metavar="DIR", help="where the engine spills past its memory limit "
                   "(default: a fresh folder in the system's temporary folder, e.g. $TMPDIR)")
    g.add_argument("--threads", type=threads_arg, metavar="N", help="engine threads (default: one per core)")


def open_reader(args, rules, *, on_reject=None, period=None, refuse_copies=False):
    """A UsageReader over every --usage file, with the engine options given. Files with the same
    content are warned about on standard error; with `refuse_copies` (settle, whose bills are
    recorded for good), aggregated usage given twice is refused unless --allow-identical-files."""
    from ..usage import UsageReader

    if args.master and args.engine != "spark":
        raise RatecardError("--master is for --engine spark")
    reader = UsageReader(rules, period=period, on_reject=on_reject, memory_limit=args.memory_limit,
                         spill_directory=args.spill_dir, threads=args.threads, engine=args.engine,
                         master=args.master)
    for source in args.usage:
        reader.read(source, stdin=stdin_bytes(args), format=getattr(args, "input_format", None),
                    kind=getattr(args, "kind", None))
    from ..usage.files import CALLS

    doubled = [(source, other) for source, other, _ in reader.copies if source.kind != CALLS]
    if refuse_copies and doubled and not getattr(args, "allow_identical_files", False):
        source, other = doubled[0]
        raise RatecardError(f"{source.name}: the same content as {other}: settling both would record its usage "
                            "twice, for good; nothing was settled. Give each file once, or --allow-identical-files "
                            "if the copies are intended")
    for warning in reader.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return reader.run()


def read_checked(args, rules, *, also=None, refuse_copies=False):
    """Every --usage file read for a command that bills from it: bad rows go to the --rejects file
    (and to `also`, when given), or, without one, stop the run listing every bad row; the
    reconciliation is proved either way. Returns the reader, its reconciliation and the rejects
    writer (None without --rejects)."""
    from ..usage import RejectsWriter

    rejects = RejectsWriter(args.rejects) if args.rejects else None
    on_reject: Callable[[Rejected], None] | None = rejects
    if rejects is not None and also is not None:
        writer, extra = rejects, also

        def both(row: Rejected) -> None:
            extra(row)
            writer(row)

        on_reject = both
    try:
        reader = open_reader(args, rules, on_reject=on_reject, period=args.period, refuse_copies=refuse_copies)
    finally:
        if rejects is not None:
            rejects.close()
    reconciliation = reader.reconciliation.check()
    if rejects is None:
        reader.raise_for_rejects()  # strict: list every bad row, bill nothing
    return reader, reconciliation, rejects


def cmd_usage(args) -> int:
    from ..usage.compile import compile_usage

    rules = rules_of(args)
    if args.sql:
        if args.usage or args.out:
            raise RatecardError("--sql prints the query only: give no --usage and no --out with it")
        compiled = compile_usage(rules, args.kind or "calls", period=args.period, dialect_name=args.dialect,
                                 has_outcome="outcome" in args.columns, has_error_code="error_code" in args.columns)
        print(f"-- ratecard usage query for rule set {rules.name} ({rules.fingerprint}), {args.dialect} dialect.\n"
              "-- Replace {input} with the table or view holding the records; only groups with clean = true\n"
              "-- may be billed from the result (see docs/scale.md).")
        print(compiled.sql + ";")
        return 0
    if not args.usage or not args.out:
        raise RatecardError("give --sql to print the query, or --usage FILE and --out FILE to aggregate usage")
    check_rejects_path(args)
    reader, reconciliation, rejects = read_checked(args, rules)
    rows = reader.write_aggregated(args.out)
    print(f"wrote {rows:,} aggregated usage row(s) to {args.out}")
    for line in reconciliation.lines():
        print(line)
    if rejects is not None:
        print(f"{rejects.count:,} bad row(s) written to {args.rejects}")
    reader.close()
    return 0


def add_usage_command(sub) -> None:
    p = sub.add_parser("usage", help="aggregate call records to aggregated usage, or print the query that does it")
    p.add_argument("--sql", action="store_true", help="print the aggregation query compiled from the rules, with "
                   "its input table as the parameter {input}")
    p.add_argument("--dialect", choices=("duckdb", "spark"), default="duckdb",
                   help=choices_help("the SQL dialect of --sql", ("duckdb", "spark"), "duckdb"))
    p.add_argument("--columns", type=lambda t: set(t.split(",")), default={"error_code"}, metavar="NAMES",
                   help="with --sql: the optional columns the input has, outcome and/or error_code "
                        "(default: error_code)")
    p.add_argument("--rules", metavar="RULES", help="the rule set: a folder or a rule set's name (default: as for "
                   "every command, see `ratecard bill --help`)")
    p.add_argument("--period", metavar="YYYY-MM", help="only this period; others are counted as out of period")
    p.add_argument("--usage", action="append", metavar="FILE", help="usage file, as for `ratecard bill` (repeatable)")
    p.add_argument("--out", metavar="FILE", help="write the aggregated usage here: .parquet, .csv or .jsonl")
    p.add_argument("--rejects", metavar="FILE", help="write bad rows here and aggregate the rest")
    add_usage_options(p)
    p.set_defaults(func=cmd_usage)
