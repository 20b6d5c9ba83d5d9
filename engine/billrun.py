"""The bill run: every account's usage of a period → rated, rendered invoices, in account order.

Rating and rendering are pure per account, so large runs are split into chunks handed to worker
processes (one per core); results come back in input order, so output stays byte-identical
whatever the number of workers.
"""

from __future__ import annotations

import json
import os
import re
import hashlib
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator

from .bill import Bill
from .model import RuleSet
from .rating import rate, tariff
from .render import FORMATS as TEMPLATE_FORMATS
from .render import render_invoice
from .usage import AccountUsage

OUTPUT_FORMATS = ("text", "markdown", "html", "json", "jsonl")
EXTENSIONS = {"text": "txt", "markdown": "md", "html": "html", "json": "json", "jsonl": "jsonl"}
PARALLEL_FROM = 2000  # accounts; below this a worker pool costs more than it saves
CHUNK = 500
WINDOW = 4  # chunks in flight per worker


@dataclass(frozen=True, slots=True)
class Rendered:
    account: str
    period: str
    currency: str
    total: Decimal
    text: str


@dataclass
class RunTotals:
    invoices: int = 0
    by_currency: dict = field(default_factory=dict)

    def add(self, item: Rendered) -> None:
        self.invoices += 1
        self.by_currency[item.currency] = self.by_currency.get(item.currency, Decimal(0)) + item.total


def render_bill(bill: Bill, rules: RuleSet, fmt: str) -> str:
    if fmt == "jsonl":
        return json.dumps(bill.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n"
    if fmt == "json":
        return json.dumps(bill.to_dict(), ensure_ascii=False, indent=2) + "\n"
    if fmt in TEMPLATE_FORMATS:
        return render_invoice(bill, tariff(rules, bill.period).policy, fmt)
    raise ValueError(f"unknown output format {fmt!r}")


def _bill_one(rules: RuleSet, usage: AccountUsage, fmt: str) -> Rendered:
    bill = rate(rules, usage.items, usage.period, account=usage.account)
    return Rendered(usage.account, usage.period, bill.currency, bill.total, render_bill(bill, rules, fmt))


# Worker-process state: the rule set is loaded once per worker, not shipped with every chunk.
_worker: dict = {}


def _init_worker(rules_path: str, fmt: str) -> None:
    from .rules import load_rules

    _worker["rules"], _worker["fmt"] = load_rules(rules_path), fmt


def _bill_chunk(chunk: list[AccountUsage]) -> list[Rendered]:
    rules, fmt = _worker["rules"], _worker["fmt"]
    return [_bill_one(rules, usage, fmt) for usage in chunk]


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def bill_accounts(rules: RuleSet, accounts: Iterable[AccountUsage], fmt: str, *, jobs: int | None = None,
                  count: int | None = None) -> Iterator[Rendered]:
    """Rate and render every account's usage, in the order given.

    `jobs` worker processes are used (default: one per core when there are at least
    PARALLEL_FROM accounts; `count` says how many there are when `accounts` is an iterator)."""
    if jobs is None:
        jobs = (os.cpu_count() or 1) if (count or 0) >= PARALLEL_FROM else 1
    if jobs <= 1:
        for usage in accounts:
            yield _bill_one(rules, usage, fmt)
        return
    with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker,
                             initargs=(str(Path(rules.path).resolve()), fmt)) as pool:
        # A few chunks per worker in flight, not all of them (as pool.map would submit): the
        # accounts are made and the invoices kept only a window ahead of what has been written.
        chunks = _chunks(accounts, CHUNK)
        pending = deque(pool.submit(_bill_chunk, chunk) for chunk in islice(chunks, jobs * WINDOW))
        try:
            while pending:
                results = pending.popleft().result()
                for chunk in islice(chunks, 1):
                    pending.append(pool.submit(_bill_chunk, chunk))
                yield from results
        finally:
            for future in pending:  # stopped early (an error, a closed pipe): do not finish the run
                future.cancel()


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def invoice_filename(account: str, period: str, fmt: str) -> str:
    """A file name for an account's invoice that is safe on every file system. Accounts whose id
    had to be changed get a short hash suffix, so two ids never map to the same file."""
    safe = _UNSAFE.sub("_", account)[:80].strip(".") or "account"
    if safe != account:
        safe += "-" + hashlib.sha256(account.encode("utf-8")).hexdigest()[:8]
    return f"{safe}.{period}.{EXTENSIONS[fmt]}"
