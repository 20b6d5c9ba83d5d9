"""The bill run: every account's usage of a period → rated, rendered invoices, in account order.

Rating and rendering are pure per account, so large runs are split into chunks handed to worker
processes (one per core); results come back in input order, so output stays byte-identical
whatever the number of workers.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import unicodedata
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, cast

from .bill import Bill, builder
from .errors import RatecardError
from .model import RuleSet
from .rating import UsageItem, rate, tariff
from .render import FORMATS as TEMPLATE_FORMATS
from .render import render_invoice
from .usage import AccountUsage

OUTPUT_FORMATS = ("text", "markdown", "html", "json", "jsonl", "pdf")
EXTENSIONS = {"text": "txt", "markdown": "md", "html": "html", "json": "json", "jsonl": "jsonl", "pdf": "pdf"}
PARALLEL_FROM = 2000  # accounts; below this a worker pool costs more than it saves
CHUNK = 500
WINDOW = 4  # chunks in flight per worker


@dataclass(frozen=True, slots=True)
class Rendered:
    account: str
    period: str
    currency: str
    total: Decimal
    text: str | bytes  # bytes for a PDF


@dataclass
class RunTotals:
    invoices: int = 0
    by_currency: dict = field(default_factory=dict)

    def add(self, item: Rendered) -> None:
        self.invoices += 1
        self.by_currency[item.currency] = self.by_currency.get(item.currency, Decimal(0)) + item.total


def render_bill(bill: Bill, rules: RuleSet, fmt: str, meta=None, buyer=None) -> str | bytes:
    """A bill in `fmt`: a document's text, or a PDF's bytes (from the HTML invoice, as `invoice show` prints it)."""
    if fmt == "pdf":
        from .pdf import html_to_pdf

        return html_to_pdf(cast(str, render_bill(bill, rules, "html", meta, buyer)))
    if fmt == "jsonl":
        return json.dumps(bill.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n"
    if fmt == "json":
        return json.dumps(bill.to_dict(), ensure_ascii=False, indent=2) + "\n"
    if fmt in TEMPLATE_FORMATS:
        seller = rules.seller_at(bill.period)
        return render_invoice(bill, tariff(rules, bill.period).policy, fmt, meta=meta, buyer=buyer,
                              seller=seller.party if seller else None, paper=seller.paper if seller else "A4")
    raise ValueError(f"unknown output format {fmt!r}")


def _bill_one(rules: RuleSet, usage: AccountUsage, fmt: str, buyers=None) -> Rendered:
    buyer = buyers.get(usage.account) if buyers else None
    bill = rate(rules, usage.items, usage.period, account=usage.account, buyer=buyer)
    return Rendered(usage.account, usage.period, bill.currency, bill.total, render_bill(bill, rules, fmt, buyer=buyer))


# Worker-process state: the rule set is loaded once per worker, not shipped with every chunk.
_worker: dict = {}


def _init_worker(rules_path: str, fmt: str, fingerprint: str, buyers=None) -> None:
    from .rules import load_rules

    rules = load_rules(rules_path)
    # A rule file edited while the run started its workers must not price part of the run.
    _worker["changed"] = rules.fingerprint != fingerprint
    _worker["rules"], _worker["fmt"], _worker["path"], _worker["buyers"] = rules, fmt, rules_path, buyers


# Plain tuples cross the process boundary, both ways: frozen dataclasses are pickled and unpickled
# field by field through Python code, which cost more than billing them to JSON Lines.
_usage_item, _account_usage, _rendered = builder(UsageItem), builder(AccountUsage), builder(Rendered)


def _bill_chunk(chunk: list[tuple]) -> list[tuple]:
    rules, fmt = _worker["rules"], _worker["fmt"]
    if _worker["changed"]:
        raise RatecardError(f"the rules in {_worker['path']} changed while the bill run was starting; "
                            "nothing more is billed: run it again")
    out = []
    for account, period, items in chunk:
        usage = _account_usage(account, period, tuple([_usage_item(*item) for item in items]))
        r = _bill_one(rules, usage, fmt, _worker["buyers"])
        out.append((r.account, r.period, r.currency, r.total, r.text))
    return out


def _chunks(accounts: Iterable[AccountUsage], size: int) -> Iterator[list[tuple]]:
    it = iter(accounts)
    while chunk := list(islice(it, size)):
        yield [(u.account, u.period, [(i.api, i.calls, i.outcome, i.amount) for i in u.items]) for u in chunk]


def bill_accounts(rules: RuleSet, accounts: Iterable[AccountUsage], fmt: str, *, jobs: int | None = None,
                  count: int | None = None, buyers=None) -> Iterator[Rendered]:
    """Rate and render every account's usage, in the order given.

    `jobs` worker processes are used (default: one per core when there are at least
    PARALLEL_FROM accounts to render through a template; `count` says how many there are when
    `accounts` is an iterator). JSON and JSON Lines are written in the one process by default:
    rating and dumping an account costs less than handing it to a worker and back (measured in
    bench/ingest.py's setting, 10,000 accounts from 1M call records on 2 cores: default workers
    took 1.1x (CSV) to 1.7x (JSON Lines) the time of one process).
    `buyers` (account → `model.Party`) are whom tax rules tax by, and print on the invoices."""
    if jobs is None:
        parallel = (count or 0) >= PARALLEL_FROM and fmt in TEMPLATE_FORMATS
        jobs = (os.cpu_count() or 1) if parallel else 1
    if jobs <= 1:
        for usage in accounts:
            yield _bill_one(rules, usage, fmt, buyers)
        return
    with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker,
                             initargs=(str(Path(rules.path).resolve()), fmt, rules.fingerprint, buyers)) as pool:
        # A few chunks per worker in flight, not all of them (as pool.map would submit): the
        # accounts are made and the invoices kept only a window ahead of what has been written.
        chunks = _chunks(accounts, CHUNK)
        pending = deque(pool.submit(_bill_chunk, chunk) for chunk in islice(chunks, jobs * WINDOW))
        try:
            while pending:
                results = pending.popleft().result()
                for chunk in islice(chunks, 1):
                    pending.append(pool.submit(_bill_chunk, chunk))
                for fields in results:
                    yield _rendered(*fields)
        finally:
            for future in pending:  # stopped early (an error, a closed pipe): do not finish the run
                future.cancel()


_RESERVED = frozenset(["CON", "PRN", "AUX", "NUL", *(f"{p}{n}" for p in ("COM", "LPT") for n in range(1, 10))])
_ESCAPE = "+"
_MAX_STEM = 200  # bytes of UTF-8: with ".YYYY-MM.html" well under the 255 every file system allows


def _kept(char: str, first: bool) -> bool:
    """Whether a character of an id can stand for itself in a file name: a name made only of such
    characters is its own case fold and its own canonical (NFC) form, so no file system that ignores
    case (macOS, Windows) or normalization (macOS) can take two of them for one file."""
    if char.isascii():
        return char.islower() or char.isdigit() or char in "-_" or (char == "." and not first)
    return (unicodedata.category(char)[0] in "LN" and char.casefold() == char
            and char.upper().casefold() == char and unicodedata.is_normalized("NFC", char))


def _escaped(char: str, first: bool) -> str:
    lower = char.lower()
    if lower != char and len(lower) == 1 and lower.upper() == char and _kept(lower, first):
        return _ESCAPE + lower  # a capital: "Acme" → "+acme"
    return f"{_ESCAPE}{ord(char):06x}"  # any other character by its code point: "a/b" → "a+00002fb"


def invoice_filename(account: str, period: str, fmt: str) -> str:
    """The file name of an account's invoice: one no other id can have, on every file system.

    Each character of the id stands for itself when it can (`_kept`: lower-case letters of any
    script, digits, ``-``, ``_``, and ``.`` after the first), so ``acme`` is ``acme`` and ``客户`` is
    ``客户``. Any other is written ``+`` and its lower-case letter (a capital) or ``+`` and six hex
    digits of its code point (a letter is never a digit, so the two cannot be confused), and a
    ``+`` itself so. The name can be read back into the id: two ids never share a file, by
    construction. Windows' reserved names (``con``, ``nul.txt``) have their first character
    escaped. An id whose name would pass 200 bytes keeps its first part and ends in ``+-`` and the
    SHA-256 of the id; `InvoiceFolder` refuses to write two invoices to one file all the same."""
    stem = "".join(c if _kept(c, i == 0) else _escaped(c, i == 0) for i, c in enumerate(account)) or _ESCAPE
    if stem.split(".")[0].upper() in _RESERVED:  # only plain letters and digits match: the first is kept
        stem = f"{_ESCAPE}{ord(stem[0]):06x}{stem[1:]}"
    if len(stem.encode("utf-8")) > _MAX_STEM:
        head = stem.encode("utf-8")[:_MAX_STEM - 70].decode("utf-8", "ignore")
        head = re.sub(r"\+[0-9a-f]{0,5}$", "", head)  # not ending inside an escape
        stem = f"{head}{_ESCAPE}-{hashlib.sha256(account.encode('utf-8', 'surrogatepass')).hexdigest()}"
    return f"{stem}.{period}.{EXTENSIONS[fmt]}"


class InvoiceFolder:
    """Writes a bill run's output into a folder: one file per invoice (`invoice_filename`), or one
    stream (`bills.jsonl`). A file appears complete or not at all: it is written to a temporary file
    beside it and renamed into place once whole, so an interrupted run (Ctrl-C, a full disk, a
    crash) never leaves a half-written invoice or a truncated bills.jsonl where a complete one was.

    Two invoices of one run are never written to one file: a name already used in this run (as the
    file system compares names, ignoring case and normalization) or a file the run already wrote
    under another name (the same device and inode) stops the run before anything is overwritten."""

    def __init__(self, folder, fmt: str):
        self.folder, self.fmt = Path(folder), fmt
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RatecardError(f"{self.folder}: cannot make the output folder: {exc.strerror or exc}") from None
        self._names: dict[str, str] = {}  # file name as the file system compares it → account
        self._files: dict[tuple[int, int], str] = {}  # (device, inode) → account
        self._stream = None
        if fmt == "jsonl":
            self._stream = _Pending(self.folder / "bills.jsonl")

    def write(self, item: Rendered) -> None:
        if self._stream is not None:
            self._stream.write(item.text)
            return
        name = invoice_filename(item.account, item.period, self.fmt)
        key = unicodedata.normalize("NFC", name).casefold()
        if key in self._names:
            raise RatecardError(f"the invoices of {self._names[key]!r} and {item.account!r} would both be written "
                                f"to {self.folder / name}; nothing was overwritten: report this as a bug")
        self._names[key] = item.account
        pending = _Pending(self.folder / name, binary=isinstance(item.text, bytes))
        try:
            pending.write(item.text)
            pending.commit(durable=False)
        except BaseException:  # Ctrl-C included: no temporary file is left behind
            pending.discard()
            raise
        stat = pending.path.stat()
        other = self._files.get((stat.st_dev, stat.st_ino))
        if other is not None:
            raise RatecardError(f"the file system stores the invoices of {other!r} and {item.account!r} as one "
                                f"file, {pending.path}: the run stops here; report this as a bug")
        self._files[(stat.st_dev, stat.st_ino)] = item.account

    def close(self, complete: bool) -> None:
        """Put bills.jsonl in place if the run completed; otherwise leave what was there before."""
        if self._stream is not None:
            if complete:
                self._stream.commit(durable=True)
            else:
                self._stream.discard()
            self._stream = None


class _Pending:
    """A file being written under a temporary name in its folder, renamed into place by `commit`."""

    def __init__(self, path: Path, binary: bool = False):
        self.path = path
        try:
            fd, temp = tempfile.mkstemp(prefix=f".{path.name[:80]}.", suffix=".partial", dir=path.parent)
        except OSError as exc:
            raise RatecardError(f"{path}: cannot write the file: {exc.strerror or exc}") from None
        self.temp = Path(temp)
        self.file: IO[Any] = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="\n")

    def write(self, text: str | bytes) -> None:
        try:
            self.file.write(text)
        except OSError as exc:
            self.discard()
            raise RatecardError(f"{self.path}: cannot write the file: {exc.strerror or exc}; "
                                "it was left as it was") from None

    def commit(self, durable: bool) -> None:
        """Rename into place. `durable` first forces the data to disk (one stream of a whole run);
        an invoice file of many is only renamed: complete on any interruption but a power loss."""
        try:
            self.file.flush()
            if durable:
                os.fsync(self.file.fileno())
            self.file.close()
            os.replace(self.temp, self.path)
        except OSError as exc:
            self.discard()
            raise RatecardError(f"{self.path}: cannot write the file: {exc.strerror or exc}; "
                                "it was left as it was") from None

    def discard(self) -> None:
        try:
            self.file.close()
        except OSError:
            pass
        self.temp.unlink(missing_ok=True)
