"""`ratecard settle`, `collect` and `status`: recording bills, scheduled debits, the gateway's question."""

from __future__ import annotations

import json
import os
import sys

from ..errors import RatecardError
from ..ledger.values import SettleInterrupted
from ..formatting import counted, format_count, format_money
from .exits import BAD_INPUT, STATUS_EXIT
from .common import (
    applied_text,
    at_arg,
    check_rejects_path,
    rules_of,
    service_of,
    open_ledger,
)


# The exit status of a settlement that left accounts without a recorded bill: distinct from 1 (bad
# input, nothing settled) so that a monthly job can tell "some accounts need a look" (README).
NOT_ALL_SETTLED = 3


def _settle_text(report) -> list[str]:
    """The whole report as text, from a report that kept its accounts."""
    width = max((len(a.account) for a in report.accounts), default=0)
    return (_head_text(report) + ([""] if report.accounts else []) + [_account_text(a, width) for a in report.accounts]
            + _tail_text(report))


def _head_text(report) -> list[str]:
    """The lines before the accounts: what was settled, the schedule, the scheduled debits collected."""
    when = report.schedule
    zone = when.start.tzinfo
    out = [f"Settled {report.period} of {report.service} ({report.rules_fingerprint[:19]}) as of "
           f"{report.at.astimezone(zone).isoformat(timespec='seconds')}",
           f"Bills issued {when.issue.date().isoformat()}; debits due {when.deduction_opens.date().isoformat()} "
           f"to {when.deduction_last_day.isoformat()} ({when.time_zone})"]
    for c in report.collected:
        state = (applied_text(c.applied, c.currency) if c.applied else f"not collected: {c.problem}")
        out.append(f"  collected {c.account} {c.period} ({c.service}): {format_money(c.amount, c.currency)}; {state}")
    return out


def _account_text(a, width: int) -> str:
    """One account's line, its name padded to `width` (the longest name of the accounts settled)."""
    head = (f"  {a.account.ljust(width)}  invoice {a.invoice}  {format_money(a.total, a.currency)}"
            if a.total is not None else f"  {a.account.ljust(width)}  no invoice")
    if a.outcome == "corrected":
        return f"  {a.account.ljust(width)}  {a.problem}; {applied_text(a.applied, a.currency)}"
    if a.outcome == "already-settled":
        return f"{head}  already settled" + (f" — note: {a.problem}" if a.problem else "")
    if a.outcome == "failed":
        return f"{head}  NOT SETTLED: {a.problem}"
    if a.debit == "scheduled":
        return f"{head}  debit scheduled for {a.due_at.date().isoformat()}"
    return f"{head}  debited; {applied_text(a.applied, a.currency)}"


def _tail_text(report) -> list[str]:
    """The lines after the accounts: how many had each outcome, the usage not billed."""
    counts = report.outcomes
    corrected = f"{counts['corrected']:,} corrected, " if counts["corrected"] else ""
    out = ["", f"{counted(report.settled_count, 'account')}: {counts['settled']:,} settled, {corrected}"
           f"{counts['already-settled']:,} already settled, {counts['failed']:,} not settled"]
    if report.unbilled:
        out.append(f"Usage not billed ({counted(len(report.unbilled), 'account')}; settle again once they are set up):")
        width = max(len(u.account) for u in report.unbilled)
        out += [f"  {u.account.ljust(width)}  {counted(u.calls, 'call')}: {u.reason}" for u in report.unbilled]
    return out


class _Guarded:
    """Standard output for a report written while the settlement runs. A write that fails (a pipe
    whose reader is gone, a full disk) must not stop the settlement part-way, leaving most accounts
    unbilled: the first failure is kept, nothing more is written, and it is said once the
    settlement is done."""

    def __init__(self, out):
        self.out, self.error = out, None

    def write(self, text: str) -> None:
        if self.error is None:
            try:
                self.out.write(text)
            except OSError as exc:
                self.error = exc

    def flush(self) -> None:
        if self.error is None:
            try:
                self.out.flush()
            except OSError as exc:
                self.error = exc


class _TextStream:
    """The text report printed as the settlement goes: each account's line once its batch is committed.
    The accounts' column is as wide as the longest name of those to be settled, known before the first."""

    def __init__(self, out):
        self._out, self._width = out, 0

    def start(self, head, accounts) -> None:
        lines = _head_text(head) + ([""] if accounts else [])
        self._width = max((len(a) for a in accounts), default=0)
        self._out.write("".join(line + "\n" for line in lines))

    def account(self, settled) -> None:
        self._out.write(_account_text(settled, self._width) + "\n")

    def interrupted(self, stopped) -> None:
        self._out.write(f"\nstopped part-way: {counted(len(stopped.recorded), 'account')} recorded, "
                        f"{counted(len(stopped.left), 'account')} not (see standard error)\n")


class _JsonStream:
    """`json.dumps(report.to_dict() | extra, indent=2)`, byte for byte, written as the settlement goes:
    the keys before "accounts", each account once its batch is committed, then the rest."""

    def __init__(self, out):
        self._out, self._any = out, False

    @staticmethod
    def _dumps(value) -> str:
        return json.dumps(value, indent=2, ensure_ascii=False)

    def start(self, head, accounts) -> None:
        # The head object's text up to its closing brace, then the key that follows it.
        self._out.write(self._dumps(head.head_dict())[:-2] + ',\n  "accounts": ')

    def account(self, settled) -> None:
        # One item of a list two levels deep: its lines indented by two levels more (no JSON string
        # holds a raw newline, so every newline is the layout's).
        self._out.write(("[\n    " if not self._any else ",\n    ")
                        + self._dumps(settled.to_dict()).replace("\n", "\n    "))
        self._any = True

    def _close(self, tail: dict) -> None:
        """The accounts' list closed, then `tail`'s keys, and the document."""
        self._out.write(("\n  ]" if self._any else "[]") + "," + self._dumps(tail)[1:] + "\n")

    def finish(self, report, extra: dict) -> None:
        self._close(report.tail_dict() | extra)

    def interrupted(self, stopped) -> None:
        """The document closed as one that stopped part-way, so that it is still JSON: the accounts
        recorded are those listed; the usage not billed and the debits collected are not known."""
        self._close({"interrupted": {"message": str(stopped), "recorded": len(stopped.recorded),
                                     "not_recorded": list(stopped.left)}})


def cmd_settle(args) -> int:
    check_rejects_path(args)
    from ..rating import tariff
    from ..settlement import check_settleable

    at = at_arg(args.at)
    out_dir = getattr(args, "out", None)
    if out_dir and args.format != "pdf":
        raise RatecardError("--out writes the settled documents as PDFs: give it with --format pdf")
    if args.format == "pdf" and not out_dir and sys.stdout.isatty():
        raise RatecardError("a PDF is not printed on a terminal: give --out DIR (one PDF per document), or "
                            "redirect standard output to a file")
    rules = rules_of(args)
    check_settleable(tariff(rules, args.period).policy, args.period, at)  # before reading any usage
    from .usage import read_checked

    held: set[str] = set()  # accounts with a rejected row: settled once their rows are fixed
    unowned = []  # rejected rows whose account cannot be read: nobody can be told apart to wait

    def hold(row) -> None:
        held.add(row.account)
        held.update(row.also)  # the other account a request id's copies name
        if not row.account:
            unowned.append(row)

    with open_ledger(args) as ledger:
        # Without a rejects file a bad row stops everything; with one, only its account waits, since
        # a settled period cannot take a corrected row later (its bill is immutable).
        reader, reconciliation, rejects = read_checked(args, rules, also=hold, refuse_copies=True)
        if unowned:
            # Its account could be any: settling the others might record a short bill for it.
            from ..errors import UsageInvalid

            raise UsageInvalid([r.problem() for r in unowned],
                               f"{len(unowned):,} bad usage row(s) whose account cannot be read "
                               f"(first: {unowned[0]}); nothing was settled, since any account could be the "
                               "one they belong to. Fix them and settle again")
        if args.format == "pdf":  # the documents of every account settled are printed: all are kept
            report = ledger.settle(rules, reader.accounts(), args.period, at, hold=held, batch=args.batch,
                                   jobs=args.jobs)
            written = _documents_pdf(ledger, report, out_dir, getattr(args, "paper", None))
        else:
            # Streamed: each account's result is printed once its batch is committed, and not kept, so
            # that memory stays flat however many accounts there are (see docs/scale.md).
            out = _Guarded(sys.stdout)
            stream: _JsonStream | _TextStream = (_JsonStream if args.format == "json" else _TextStream)(out)
            try:
                report = ledger.settle(rules, reader.accounts(), args.period, at, hold=held, batch=args.batch,
                                       jobs=args.jobs, on_start=stream.start, on_account=stream.account)
            except SettleInterrupted as stopped:
                stream.interrupted(stopped)
                out.flush()
                raise
            out.flush()
            if out.error is not None:
                return _unreported(report, out.error)
    if args.format == "pdf":
        # The PDF is standard output's one document (unless --out): the report goes to standard error.
        report_to = sys.stdout if out_dir else sys.stderr
        print("\n".join(_settle_text(report) + reconciliation.lines()), file=report_to)
        print(f"{counted(written, 'document')} printed" + (f", written to {out_dir}" if out_dir else ""),
              file=report_to)
    elif args.format == "json":
        held_out = {"rejects": {"file": args.rejects, "rows": rejects.count,
                                "accounts_held": sorted(held - {""})}} if rejects is not None else {}
        assert isinstance(stream, _JsonStream)
        stream.finish(report, {"reconciliation": reconciliation.to_dict()} | held_out)
    else:
        print("\n".join(_tail_text(report) + reconciliation.lines()))
    if rejects is not None and args.format != "json":
        print(f"{counted(rejects.count, 'bad row')} written to {args.rejects}",
              file=sys.stderr if args.format == "pdf" and not out_dir else sys.stdout)
    _problems(report)
    return 0 if report.complete else NOT_ALL_SETTLED


def _unreported(report, error: OSError) -> int:
    """A settlement that is recorded, but whose report could not all be written to standard output."""
    if isinstance(error, BrokenPipeError):
        # Its reader is gone (`| head`): nothing more is printed there, as any command's output stops; the
        # status still says whether every account was settled, and the problems still go to standard error.
        try:  # what is still buffered for it is dropped, not reported again at exit (Python's advice for EPIPE)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass  # standard output is no file (a test's, a caller's stream): nothing to point elsewhere
        _problems(report)
        return 0 if report.complete else NOT_ALL_SETTLED
    _problems(report)
    counts = report.outcomes
    raise RatecardError(f"the settlement of {report.period} is recorded ({counted(report.settled_count, 'account')}: "
                        f"{counts['settled']:,} settled, {counts['already-settled']:,} already settled, "
                        f"{counts['failed']:,} not settled), but its report could not be written to standard output: "
                        f"{error.strerror or error}; settling again changes nothing and reports each account as "
                        "already settled")


def _problems(report) -> None:
    for failed in report.failed:
        print(f"{failed.account}: not settled: {failed.problem}", file=sys.stderr)
    for unrecorded in report.unrecorded:
        print(f"{unrecorded.account}: usage not recorded: {unrecorded.unrecorded}", file=sys.stderr)
    for unbilled in report.unbilled:
        print(f"{unbilled.account}: not settled: {unbilled.reason}", file=sys.stderr)


def _documents_pdf(ledger, report, out_dir, paper) -> int:
    """The period's invoices and the corrections this settlement issued, as `invoice show --format pdf`
    prints them: one PDF per document in `out_dir`, else one PDF (a page break before each) to
    standard output. Returns how many documents were printed."""
    from pathlib import Path
    from typing import cast

    from ..billrun import _Pending
    from ..pdf import htmls_to_pdf
    from ..reprint import rendered

    refs = [(a.account, a.invoice) for a in report.accounts if a.outcome != "failed" and a.invoice]
    if out_dir is None:
        if refs:
            pages = []
            for account, ref in refs:
                number, document, data, _ = ledger.document(account, ref)
                pages.append(cast(str, rendered(number, document, data, "html", paper)))
            sys.stdout.flush()
            sys.stdout.buffer.write(htmls_to_pdf(pages))
            sys.stdout.buffer.flush()
        return len(refs)
    folder = Path(out_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RatecardError(f"{folder}: cannot make the output folder: {exc.strerror or exc}") from None
    for account, ref in refs:
        number, document, data, _ = ledger.document(account, ref)
        # A number is its series' prefix and digits; anything else a prefix holds is kept out of the path.
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in number).lstrip(".") or "_"
        pending = _Pending(folder / f"{name}.pdf", binary=True)
        try:
            pending.write(rendered(number, document, data, "pdf", paper))
            pending.commit(durable=False)
        except BaseException:
            pending.discard()
            raise
    return len(refs)


def cmd_collect(args) -> int:
    with open_ledger(args) as ledger:
        collected = ledger.collect(at_arg(args.at))
    for c in collected:
        state = applied_text(c.applied, c.currency) if c.applied else f"not collected: {c.problem}"
        print(f"{c.account} {c.period} ({c.service}): {format_money(c.amount, c.currency)}; {state}")
    print(f"collected {counted(sum(c.applied is not None for c in collected), 'scheduled debit')}")
    return 1 if any(c.applied is None for c in collected) else 0


def cmd_status(args) -> int:
    # Kept light on purpose: a gateway asks this often. No rules, no templates: one indexed query.
    with open_ledger(args, readonly=True) as ledger:
        status = ledger.status(args.account, service_of(args))
    if args.format == "json":
        print(json.dumps(status.to_dict(), ensure_ascii=False))
    else:
        since = f" since {status.since.isoformat()}" if status.since else ""
        print(f"{status.account} {status.service}: {status.state}{since} — {status.reason}")
    # A gateway's shell script needs no JSON: 0 only when calls are allowed (see exits.py).
    return STATUS_EXIT.get(status.state, BAD_INPUT)
