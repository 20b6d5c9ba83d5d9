"""Corrections without rewriting history: supplementary invoices and credit notes, each a new
numbered document referring to the period's invoice, with its own entry, written in one
``BEGIN IMMEDIATE`` transaction. The invoice itself is never altered.

- Settling a settled period again with usage that rates differently issues the difference
  (`correct`, called by settlement); settling the same corrected usage again finds the period
  already billed at it and changes nothing.
- `credit_note` issues a manual one (a refund, a goodwill credit); the same invoice, amount and
  reason are recorded once.
- `void` cancels an unpaid invoice (its debit still scheduled) with a credit note for all it
  charges; the scheduled debit is then never taken.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

from .. import documents as D
from ..exact import EXACT
from ..formatting import format_money
from . import documents as docs
from . import postings as P
from .accounts import buyer_of
from .records import Applied, Settled
from .values import LedgerError, as_text, parse_amount, stamp, step


def _bill_json(bill) -> str:
    return json.dumps(bill.to_dict(), ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _packs_used(bill: dict) -> list:
    return sorted((line["category"], u["pack_id"], u["units_used"]) for line in bill.get("lines", ())
                  for u in line.get("packs_used", ()))


def _view(db, seller, kind, number, account, service, period, when_, issued, refers_to, cause, reason, currency,
          amount, correction=None, rules_name="", fingerprint="", tax=None, locale="en") -> D.DocumentView:
    from datetime import timedelta

    return D.DocumentView(
        number=number, kind=kind, account=account, service=service, period=period,
        period_start=when_.start.date(), period_end=(when_.end - timedelta(days=1)).date(),
        time_zone=when_.time_zone, issue_date=issued,
        due_date=D.due_date(issued, when_.deduction_last_day) if kind == D.SUPPLEMENTARY else None,
        refers_to=refers_to, cause=cause, reason=reason, currency=currency, amount=amount,
        lines=correction.lines if correction else (),
        total_before=correction.total_before if correction else None,
        total_after=correction.total_after if correction else None,
        rules_name=rules_name, rules_fingerprint=fingerprint, seller=seller.party if seller else None,
        buyer=buyer_of(db, account), paper=seller.paper if seller else "A4",
        tax=correction.tax if correction else tax, locale=locale)


def _issue(db, policy, view: D.DocumentView, position, at: datetime, *, bill_json, fingerprint, invoice,
           balance_change: Decimal, why: str) -> tuple[D.DocumentView, Applied]:
    """Number `view` in its series, render it, post its entry and record it: the caller's transaction."""
    from dataclasses import replace

    from .. import settlement as S
    from ..render import render_document

    number, series, seq = docs.assign_number(db, policy.numbering, view.kind, view.issue_date)
    view = replace(view, number=number)
    if view.kind == D.SUPPLEMENTARY:
        outcome = S.apply_supplementary(position, view.service, view.period, view.amount, number, invoice)
    else:
        outcome = S.apply_credit_note(position, view.service, view.period, balance_change, number, invoice, why)
    when = stamp(at)
    applied = P.record(db, view.account, position, when, outcome.changes, outcome.position)
    docs.insert_document(
        db, number=number, series=series, seq=seq, kind=view.kind, account=view.account, service=view.service,
        period=view.period, refers_to=invoice, cause=view.cause, reason=view.reason, currency=view.currency,
        amount=view.amount, fingerprint=fingerprint, bill_json=bill_json,
        document_json=json.dumps(view.to_dict(), ensure_ascii=False, sort_keys=True),
        document_text=render_document(view, "text", locale=view.locale), issued_at=when, entry=applied.entries[0].seq)
    return view, applied


def correct(store, policy, bill, service: str, when_, at: datetime, seller=None) -> Settled:
    """Bring a settled period to `bill` (its usage rated again): a supplementary invoice or a credit
    note for the difference from what the period is billed at now, or nothing if that is `bill`."""
    account, period, currency = bill.account, bill.period, bill.currency
    new_json = _bill_json(bill)
    with store.write() as db:
        invoice, current_json, _, voided = docs.standing(db, account, service, period)
        if current_json == new_json:
            return Settled(account, "already-settled", invoice, currency, bill.total)
        if voided:
            return Settled(account, "failed", invoice, currency, bill.total, problem=(
                f"invoice {invoice} for {period} was voided, and its usage now rates differently; a voided "
                "period is not billed again automatically"))
        current, new = json.loads(current_json), bill.to_dict()
        if _packs_used(current) != _packs_used(new):
            return Settled(account, "failed", invoice, currency, bill.total, problem=(
                f"the usage now rates differently from invoice {invoice} and would use resource packs "
                "differently; pack units already taken are not re-taken, so this is not corrected "
                "automatically: issue a supplementary invoice or credit note by hand"))
        change = D.correction(current, new)
        if change is None:
            before, after = (sum(Decimal(str(line["calls"])) for line in b.get("lines", ())) for b in (current, new))
            what = f"{after:,} calls instead of {before:,}" if after != before else "the same calls, rated otherwise"
            problem = (f"the usage now rates differently from invoice {invoice} ({what}) but to the same total; "
                       "nothing to charge or credit")
            return Settled(account, "already-settled", invoice, currency, bill.total, problem=problem,
                           unrecorded=f"{problem}, and no recorded document shows it: the invoice stands")
        try:
            position = P.position(db, account, stamp(at))
        except LedgerError as exc:
            return Settled(account, "failed", invoice, currency, bill.total, problem=str(exc))
        issued = at.astimezone(when_.start.tzinfo).date()
        why = (f"usage rated again: {format_money(change.total_after, currency)} instead of "
               f"{format_money(change.total_before, currency)}")
        view = _view(db, seller, change.kind, "", account, service, period, when_, issued, invoice, D.CORRECTION,
                     why, currency, change.amount, change, bill.rules_name, bill.rules_fingerprint,
                     locale=policy.locale)
        view, applied = _issue(db, policy, view, position, at, bill_json=new_json,
                               fingerprint=_fingerprint(new_json), invoice=invoice, balance_change=change.amount,
                               why=why)
        step("corrected")
    return Settled(account, "corrected", view.number, currency, change.amount, "applied", None, applied,
                   problem=f"{view.title.lower()} {view.number} to invoice {invoice}: {why}",
                   issue_date=view.issue_date, due_date=view.due_date)


def _fingerprint(bill_json: str) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(bill_json.encode("utf-8")).hexdigest()


def _invoice_of(db, account: str, invoice: str):
    row = db.execute("SELECT b.service, b.period, b.currency, b.total, d.status, d.due_at, "
                     "(SELECT 1 FROM cancelled_debits AS c WHERE c.account = b.account AND c.service = b.service "
                     "AND c.period = b.period) FROM bills AS b JOIN debits AS d USING (account, service, period) "
                     "WHERE b.account = ? AND b.invoice_number = ?", (account, invoice)).fetchone()
    if row is None:
        raise LedgerError(f"{account} has no invoice {invoice!r}; `ratecard account show {account}` lists its "
                          "invoices; nothing was changed")
    return row


def credit_note(store, rules, account: str, invoice: str, amount, reason: str, at: datetime):
    """Issue a manual credit note of `amount` to `invoice` (a refund, a goodwill credit), credited to
    the balance at once. It may not credit more than the invoice, with its corrections, charges.
    The same invoice, amount and reason are recorded once: recording them again changes nothing."""
    from ..rating import tariff

    reason = " ".join(str(reason or "").split())
    if not reason:
        raise LedgerError("a credit note needs a reason (--reason), which it prints; nothing was changed")
    with store.write() as db:
        service, period, currency, *_ = _invoice_of(db, account, invoice)
        value = parse_amount(amount, currency)
        _check_rules(rules, service)
        seen = db.execute("SELECT number FROM documents WHERE refers_to = ? AND cause = 'manual' AND amount = ? AND "
                          "reason = ?", (invoice, as_text(value), reason)).fetchone()
        position = P.position(db, account)
        if seen is not None:
            return seen[0], P.unchanged(account, position, f"credit note {seen[0]} to invoice {invoice} was "
                                        "already issued for this amount and reason")
        _, standing_json, charged, voided = docs.standing(db, account, service, period)
        if voided:
            raise LedgerError(f"invoice {invoice} was voided: it charges nothing more to credit; nothing was changed")
        if value > charged:
            raise LedgerError(f"a credit note of {format_money(value, currency)} would credit more than invoice "
                              f"{invoice} charges ({format_money(charged, currency)}, with its corrections); "
                              "nothing was changed")
        position = P.position(db, account, stamp(at))
        policy = tariff(rules, period).policy
        when_ = _schedule(policy, period)
        view = _view(db, rules.seller_at(period), D.CREDIT_NOTE, "", account, service, period, when_,
                     at.astimezone(when_.start.tzinfo).date(), invoice, D.MANUAL, reason, currency, value,
                     tax=D.tax_share(json.loads(standing_json), value), locale=policy.locale)
        view, applied = _issue(db, policy, view, position, at, bill_json=None, fingerprint="", invoice=invoice,
                               balance_change=value, why=f"{format_money(value, currency)} credited: {reason}")
        step("credited")
    return view.number, applied


def void(store, rules, invoice: str, at: datetime, reason: str = ""):
    """Void an unpaid invoice (its debit still scheduled) with a credit note for all it charges. Its
    scheduled debit is cancelled, so the note moves on the balance only what the invoice's
    corrections already moved. Voiding it again changes nothing."""
    from ..rating import tariff

    with store.write() as db:
        owner = db.execute("SELECT account FROM bills WHERE invoice_number = ?", (invoice,)).fetchone()
        if owner is None:
            raise LedgerError(f"no invoice {invoice!r} in the ledger; `ratecard account show ACCOUNT` lists an "
                              "account's invoices; nothing was changed")
        account = owner[0]
        service, period, currency, total, status, _, cancelled = _invoice_of(db, account, invoice)
        _check_rules(rules, service)
        position = P.position(db, account)
        seen = db.execute("SELECT number FROM documents WHERE refers_to = ? AND cause = 'void'",
                          (invoice,)).fetchone()
        if seen is not None:
            return seen[0], P.unchanged(account, position, f"invoice {invoice} was already voided by credit note "
                                        f"{seen[0]}")
        if status == "applied" or cancelled:
            raise LedgerError(f"invoice {invoice} is paid (its debit was taken from the balance), so it cannot be "
                              "voided; issue a credit note instead (`ratecard credit-note`); nothing was changed")
        _, standing_json, charged, _ = docs.standing(db, account, service, period)
        position = P.position(db, account, stamp(at))
        policy = tariff(rules, period).policy
        when_ = _schedule(policy, period)
        # The scheduled debit of the invoice's total is never taken; what its corrections moved is undone.
        moved = EXACT.subtract(charged, Decimal(total))
        why = f"invoice voided: its scheduled debit of {format_money(Decimal(total), currency)} is cancelled"
        if moved:
            why += f", and {format_money(abs(moved), currency)} its corrections moved is " + (
                "credited back" if moved > 0 else "taken back")
        text = " ".join(str(reason or "").split()) or "invoice voided"
        view = _view(db, rules.seller_at(period), D.CREDIT_NOTE, "", account, service, period, when_,
                     at.astimezone(when_.start.tzinfo).date(), invoice, D.VOID, text, currency, charged,
                     tax=D.tax_share(json.loads(standing_json), charged), locale=policy.locale)
        view, applied = _issue(db, policy, view, position, at, bill_json=None, fingerprint="", invoice=invoice,
                               balance_change=moved, why=why)
        db.execute("INSERT INTO cancelled_debits (account, service, period, document) VALUES (?, ?, ?, ?)",
                   (account, service, period, view.number))
        step("voided")
    return view.number, applied


def _check_rules(rules, service: str) -> None:
    if rules.name != service:
        raise LedgerError(f"the invoice is of {service}, not of the rule set {rules.name} given (--rules); "
                          "nothing was changed")


def _schedule(policy, period: str):
    from .. import settlement as S

    return S.schedule(policy, period)
