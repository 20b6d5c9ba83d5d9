"""Rendering a settlement's invoices in worker processes, ahead of the transaction that records them.

Rendering an invoice's text costs several times what recording it does, and it needs the invoice's
number, which only the transaction that records the invoice may give (numbers are gap-free: see
`documents.assign_number`). So the number is *predicted* (the series' next numbers, in the order the
accounts are recorded), workers render each invoice with its predicted number and buyer while the
ledger writes earlier ones, and the transaction uses a text only if the number it assigned and the
buyer it read are those the text was rendered with, and the bill was not priced again meanwhile
(a pack bought concurrently). Otherwise — a concurrent run took numbers, a worker failed, the rules
file changed under the workers — it renders the invoice itself, as it would without workers. A text
is the same function of the same inputs wherever it is rendered, so the recorded documents are
byte-identical whatever the number of workers. The workers write the bill's two JSON texts (the
bill's and its document's) with the invoice text, under the same conditions: the ledger's process,
the one that cannot be parallel, then only records them.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path
from typing import Callable

PARALLEL_FROM = 500  # accounts to settle; below this starting the workers costs more than they save
CHUNK = 25  # invoices a task
# Tasks queued a worker beyond the batch being written: one would leave a worker idle whenever it finishes
# before the ledger has written the batch.
TASKS_AHEAD = 4

_worker: dict = {}


def _init_worker(rules_path: str, fingerprint: str, period: str, issued: date) -> None:
    from ..rating import tariff
    from ..rules import load_rules

    rules = load_rules(rules_path)
    _worker.update(rules=rules, changed=rules.fingerprint != fingerprint, period=period, issued=issued,
                   policy=tariff(rules, period).policy, seller=rules.seller_at(period))


def _render_chunk(chunk: list[tuple]) -> list[tuple[str, str, str]]:
    from ..bill import builder
    from ..invoice import invoice_meta
    from ..rating import UsageItem, rate
    from ..render import make_environment, render_invoice
    from .documents import bill_json, invoice_json

    if _worker["changed"]:  # the rule file was edited as the workers started: the caller renders
        raise RuntimeError("rules changed")
    rules, period, policy, seller = _worker["rules"], _worker["period"], _worker["policy"], _worker["seller"]
    out = []
    item = _worker.setdefault("item", builder(UsageItem))
    if "env" not in _worker:
        # The templates read once, as the ledger's process would have read them: the same texts. (What
        # the default environment does but for looking at the files' times every time: a worker's
        # run is short, and a template edited during it must not change some of its invoices only.)
        _worker["env"] = make_environment(locale=policy.locale, reload=False)
    env = _worker["env"]
    for account, items, packs, suspended, taxed_as, number, buyer in chunk:
        # Rating again here is cheaper than shipping the bill: a bill is pickled field by field.
        bill = rate(rules, [item(*i) for i in items], period, account=account, packs=packs, suspended=suspended,
                    buyer=taxed_as)
        meta = invoice_meta(bill, policy, number=number, issued=_worker["issued"])
        party, paper = (seller.party, seller.paper) if seller else (None, "A4")
        as_dict = bill.to_dict()
        # The bill's JSON texts too: the same function of the same inputs as the transaction's, and
        # the workers have time to spare while the ledger writes.
        out.append((render_invoice(bill, policy, "text", env, meta=meta, seller=party, buyer=buyer, paper=paper),
                    bill_json(as_dict), invoice_json(meta, as_dict, policy.locale, paper, party, buyer)))
    return out


class Prerenderer:
    """Workers rendering invoices ahead; `jobs` <= 1 makes none (every text is rendered in place)."""

    def __init__(self, rules, period: str, issued: date, jobs: int | None, accounts: int):
        if jobs is None:
            jobs = (os.cpu_count() or 1) if accounts >= PARALLEL_FROM else 1
        self._pool: ProcessPoolExecutor | None = None
        self._pending: list[tuple] = []
        self._slots: list[dict] = []
        self.ahead = jobs * CHUNK * TASKS_AHEAD  # accounts to rate (and render) ahead of the batch written
        if jobs > 1:
            self._pool = ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker, initargs=(
                str(Path(rules.path).resolve()), rules.fingerprint, period, issued))

    @property
    def active(self) -> bool:
        return self._pool is not None

    def add(self, account: str, items, packs, suspended: bool, taxed_as, number: str,
            buyer) -> Callable[[str, object], tuple[str, str, str] | None]:
        """Queue the invoice of `account` (rated with `taxed_as`, the buyer tax rules tax by) rendered
        with `number` and `buyer`; returns what gives its text, bill JSON and document JSON for the
        number and buyer the transaction found (None: render them there)."""
        if self._pool is None:
            return _none
        index = len(self._pending)
        self._pending.append((account, [(i.api, i.calls, i.outcome, i.amount) for i in items], tuple(packs),
                              suspended, taxed_as, number, buyer))
        slot: dict = {}
        self._slots.append(slot)

        def text(actual_number: str, actual_buyer) -> tuple[str, str, str] | None:
            if (actual_number, actual_buyer) != (number, buyer):
                return None
            if "future" not in slot:
                self.flush()
            try:
                return slot["future"].result()[index]
            except Exception:  # a worker that failed or died: the transaction renders it itself
                return None
        if len(self._pending) >= CHUNK:
            self.flush()
        return text

    def __enter__(self) -> Prerenderer:
        return self

    def flush(self) -> None:
        """Hand the queued invoices to the workers."""
        if not self._pending or self._pool is None:
            return
        future = self._pool.submit(_render_chunk, self._pending)
        for slot in self._slots:
            slot["future"] = future
        self._pending, self._slots = [], []

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def _none(number, buyer) -> None:
    return None
