"""Collecting the scheduled debits: a bill settled before its deduction window opened is debited once
the window has opened, each debit in its own transaction."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from . import postings as P
from .records import Applied, Collected
from .values import LedgerError, as_decimal, moment, settlement, stamp, step


def collect(store, at: datetime) -> list[Collected]:
    """Apply every scheduled debit whose deduction window has opened by `at`, each in its own
    transaction, dated `at`."""
    S = settlement()

    when = stamp(at)
    # A voided invoice's debit is cancelled: never taken.
    due = store.read("SELECT account, service, period FROM debits AS d WHERE status = 'scheduled' AND due_at <= ? "
                     "AND NOT EXISTS (SELECT 1 FROM cancelled_debits AS c WHERE c.account = d.account AND "
                     "c.service = d.service AND c.period = d.period) ORDER BY due_at, account, service, period",
                     (when,))
    done = []
    for account, service, period in due:
        with store.write() as db:
            row = db.execute(
                "SELECT d.amount, d.closes_at, d.arrears_action, d.resume_when, d.freeze, d.freeze_basis, "
                "b.invoice_number, b.currency FROM debits AS d JOIN bills AS b USING (account, service, period) "
                "WHERE d.account = ? AND d.service = ? AND d.period = ? AND d.status = 'scheduled' AND NOT EXISTS "
                "(SELECT 1 FROM cancelled_debits AS c WHERE c.account = d.account AND c.service = d.service AND "
                "c.period = d.period)",
                (account, service, period)).fetchone()
            if row is None:
                continue  # a concurrent run collected it
            amount, closes, action, resume, freeze, basis, invoice, currency = row
            try:
                position = P.position(db, account, when)
            except LedgerError as exc:
                done.append(Collected(account, service, period, Decimal(amount), currency, None, str(exc)))
                continue
            terms = S.Terms(action, resume, as_decimal(freeze), basis)
            applied = _debit(db, account, service, period, Decimal(amount), terms, invoice, position,
                                  when, closes)
            done.append(Collected(account, service, period, Decimal(amount), currency, applied))
        step("collected")
    return done


def _debit(db, account, service, period, amount, terms, invoice, position, when, closes) -> Applied:
    """Take a scheduled debit: its entries, and its row marked applied."""
    S = settlement()

    outcome = S.apply_debit(position, service, period, amount, terms, invoice, note=late(when, closes))
    applied = P.record(db, account, position, when, outcome.changes, outcome.position)
    seq = next(e.seq for e in applied.entries if e.kind == S.DEBIT)
    db.execute("UPDATE debits SET status = 'applied', entry = ? WHERE account = ? AND service = ? AND period = ?",
               (seq, account, service, period))
    return applied


def late(when: str, closes: str) -> str:
    return "" if when < closes else f" (after the deduction window, which closed {moment(closes).isoformat()})"
