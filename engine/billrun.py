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

from .bill import Bill, builder
from .errors import RatecardError
from .model import RuleSet
from .rating import UsageItem, rate, tariff
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


def _init_worker(rules_path: str, fmt: str, fingerprint: str) -> None:
    from .rules import load_rules

    rules = load_rules(rules_path)
    # A rule file edited while the run started its workers must not price part of the run.
    _worker["changed"] = rules.fingerprint != fingerprint
    _worker["rules"], _worker["fmt"], _worker["path"] = rules, fmt, rules_path


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
        r = _bill_one(rules, usage, fmt)
        out.append((r.account, r.period, r.currency, r.total, r.text))
    return out


def _chunks(accounts: Iterable[AccountUsage], size: int) -> Iterator[list[tuple]]:
    it = iter(accounts)
    while chunk := list(islice(it, size)):
        yield [(u.account, u.period, [(i.api, i.calls, i.outcome, i.amount) for i in u.items]) for u in chunk]


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
                             initargs=(str(Path(rules.path).resolve()), fmt, rules.fingerprint)) as pool:
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


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


_RESERVED = frozenset(["CON", "PRN", "AUX", "NUL", *(f"{p}{n}" for p in ("COM", "LPT") for n in range(1, 10))])


def invoice_filename(account: str, period: str, fmt: str) -> str:
    """A file name for an account's invoice that is safe on every file system.

    An id used as it is must be a name no other id can map to: on a case-insensitive file system
    (macOS, Windows) ``Acme`` and ``acme`` are one file, and Windows reserves ``con`` and the
    like. Every other id (changed, or with a capital letter, or reserved) gets a hash of the id
    after a ``~``, a character the ids used as they are never contain, so no two ids share a file."""
    safe = _UNSAFE.sub("_", account)[:80].strip(".") or "account"
    if safe != account or account != account.lower() or safe.split(".")[0].upper() in _RESERVED:
        safe += "~" + hashlib.sha256(account.encode("utf-8")).hexdigest()[:10]
    return f"{safe}.{period}.{EXTENSIONS[fmt]}"
