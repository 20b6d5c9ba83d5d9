"""Settlement as stored: each account's bill for a period, the pack units it takes and its debit (or
the debit scheduled for the deduction window), written in one ``BEGIN IMMEDIATE`` transaction per
batch of accounts (an account whose write fails has the batch written again, each account in its own
savepoint), so that a crash leaves an account wholly settled or untouched and a concurrent run finds
the work done. Collecting the scheduled debits once their window opens is `collect`'s."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, fields
from functools import cache, cached_property
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Callable, Iterable

from ..bill import builder
from ..formatting import format_money
from . import documents as D
from . import flow as F
from . import postings as P
from .collect import collect, late
from .corrections import correct
from .lookups import Ahead, Inside
from .packs import earlier_unsettled, pack_balances, take_packs
from .prerender import Prerenderer
from .records import Settled, SettleReport
from .values import LedgerError, SettleInterrupted, as_text, settlement, stamp, step

if TYPE_CHECKING:
    from .. import settlement as S
    from ..bill import Bill
    from ..invoice import InvoiceMeta
    from ..rating import PackBalance


# Accounts settled in one transaction: a commit (a sync of the log) costs about as much as settling an
# account, and the write lock held meanwhile makes a concurrent writer wait well under a second.
BATCH = 100


def settle(store, rules, usage: Iterable, period: str, at: datetime, *, hold: Iterable[str] = (),
           batch: int = BATCH, jobs: int | None = None,
           on_start: Callable[[SettleReport, tuple[str, ...]], None] | None = None,
           on_account: Callable[[Settled], None] | None = None) -> SettleReport:
    """Settle `period` with `rules`: bill every account that activated the rule set's service
    before the period ended (with its usage, or none), debit the bills (or schedule the debits
    for the deduction window), hold deposits and suspend as the policy says. `usage` holds
    `AccountUsage` of that period (see `ratecard.usage.UsageReader.accounts`). Accounts already
    settled for the period are left as they are. Scheduled debits now due are collected first.
    Accounts in `hold` (e.g. with rejected usage rows) are not settled this time: a settled
    bill is immutable, so it must wait until all of the account's usage can be billed. `batch`
    accounts are settled in one transaction (1: one transaction each): a crash leaves each batch
    wholly recorded or not at all, and each account wholly settled or untouched. `jobs` worker
    processes render the invoices ahead of their transactions (default: one per core for a large
    run; 1: none), with the same documents recorded (see `prerender`).

    By default `usage` may come in any order (it is read wholly first) and the report holds every
    account's result (`SettleReport.accounts`). With `on_account`, the settlement streams, so that its
    memory does not grow with the number of accounts: `usage` is read as the batches need it and must
    come in account order, each account once, all of `period` (as `UsageReader.accounts()` yields
    usage read for one period), and each account's `Settled` is handed to `on_account`, in account
    order, once its batch is committed. The report then keeps, instead of `accounts`, the counts of
    each outcome and the failed and unrecorded accounts (`SettleReport.streamed`): `outcomes`,
    `failed` and `complete` answer as they would. `hold` must be complete when `settle` is called.
    Usage out of order, of another period, or that cannot be read on raises `flow.UsageOrderError`
    (a `RatecardError`) when no account is recorded yet (the scheduled debits due, collected first,
    stay collected), else `SettleInterrupted` (an account whose usage comes later than it should may
    have been settled without it by then: the next run bills it the difference). An `on_account`
    that raises stops the settlement with `SettleInterrupted` too, naming what is recorded (its
    whole batch is). `on_start(head, accounts)`,
    when given, is called once before any account is settled, with the report as it stands (the
    debits collected, no accounts) and the accounts to be settled, in order."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1, not {batch}")
    S = settlement()
    from ..documents import INVOICE
    from ..invoice import invoice_meta, invoice_number
    from ..rating import rate, tariff
    from ..tax import TaxError

    t = tariff(rules, period)
    policy, book = t.policy, t.book
    seller = rules.seller_at(period)
    when_ = S.check_settleable(policy, period, at)
    service, end = rules.name, stamp(when_.end)
    streaming = on_account is not None
    # Read before anything is written, so that usage of another period is refused with nothing changed.
    ordered = F.in_order(usage, period) if streaming else iter(F.sorted_usage(usage, period))
    held = set(hold)
    merge = F.UsageMerge(ordered, held, F.why_unbilled(store, service, end))

    collected = tuple(collect(store, at))

    billable = tuple(sorted(a for (a,) in store.read(
        "SELECT account FROM services WHERE service = ? AND activated_at < ?", (service, end)) if a not in held))
    tally = F.Tally(keep=not streaming)
    zone = policy.time_zone

    dues: dict[date, date | None] = {}

    def due_on(bill, issued: date) -> date | None:
        """An invoice's due date: a function of the period, the policy and the issue date alone (see
        `invoice_meta`), the same for every bill of the run, so worked out once."""
        if issued not in dues:
            dues[issued] = invoice_meta(bill, policy, issued=issued).due_date
        return dues[issued]

    def priced(bill, packs, prerendered=_not_rendered, fingerprint: str | None = None) -> _Priced:
        list_cost = S.list_price_cost(book, bill)
        freeze = S.freeze_amount(policy, list_cost)
        basis = "" if freeze is None else S.freeze_basis(policy, list_cost, bill.currency)
        return _new_priced(bill, fingerprint or invoice_number(bill.rules_name, bill.account, bill.period),
                           list_cost, S.Terms.of(policy, freeze, basis), packs,
                           lambda number, issued: invoice_meta(bill, policy, number=number, issued=issued),
                           lambda issued: due_on(bill, issued), prerendered)

    # The numbers the new invoices will get if nothing else issues any meanwhile (a prediction: the
    # transaction assigns the real one, and a text rendered with another is not used).
    issued_on = at.astimezone(when_.start.tzinfo).date()
    series = policy.numbering.series(INVOICE, issued_on)
    next_seq = store.read("SELECT coalesce(max(seq), 0) + 1 FROM documents WHERE series = ?", (series,))[0][0]

    def rate_account(account: str, ahead: Ahead, items, recorded: bool, currency: str
                     ) -> Callable[[Inside], Settled]:
        """Rate the account (reading the ledger only, outside any transaction, so that the write lock
        is held for writing alone); returns what records it, inside its batch's transaction."""
        nonlocal next_seq
        suspended = ahead.suspended(account)
        # An account already settled is re-rated with its packs as they were before its bill, to
        # compare like with like.
        packs = pack_balances(store, account, service, when_, zone, before_bill=True) if recorded \
            else ahead.packs(account)
        # Whom tax rules tax by: the buyer details as they are when the period is settled.
        buyer = ahead.party(account) if t.tax is not None else None
        try:
            bill = rate(rules, items, period, account=account, packs=packs, suspended=suspended, buyer=buyer)
        except TaxError as exc:  # this account cannot be taxed as its details stand: the others are settled
            untaxed = Settled(account, "failed", "", book.currency, None, problem=str(exc))
            return lambda inside: untaxed
        number = invoice_number(bill.rules_name, bill.account, bill.period)

        def as_now(inside: Inside, fresh_packs) -> Bill:
            """The bill as the ledger stands inside the transaction: rated again when another process
            changed what it depends on (packs, suspension, the buyer tax rules tax by) since it was rated."""
            now = (fresh_packs, inside.suspended(account), inside.buyer(account) if t.tax is not None else None)
            if now == (packs, suspended, buyer):
                return bill
            return rate(rules, items, period, account=account, packs=now[0], suspended=now[1], buyer=now[2])

        if recorded:
            # A recorded bill is never altered: usage that now rates differently is billed (or
            # credited) by a supplementary invoice (or credit note) for the difference.
            def correct_recorded(inside: Inside) -> Settled:
                try:
                    inside.numbered_elsewhere()  # a correction is numbered in the invoices' series too
                    return correct(store, policy, as_now(inside, packs), service, when_, at, seller)
                except TaxError as exc:
                    return Settled(account, "failed", "", book.currency, None, problem=str(exc))
            return correct_recorded
        if currency != bill.currency:
            failed = Settled(account, "failed", number, bill.currency, bill.total,
                             problem=f"the account is in {currency} but {rules.name} bills in "
                             f"{bill.currency}")
            return lambda inside: failed
        # A bill rated without pack balances takes no pack units.
        waiting = earlier_unsettled(store, bill, service) if packs else ()
        if waiting:
            # Settling now would take pack units an earlier period is owed, and a recorded bill is never
            # altered: the earlier period would pay for them instead, so the money would depend on the order.
            earliest = sorted({q for _, q in waiting})[0]
            packs_ = ", ".join(sorted({p for p, _ in waiting}))
            periods = ", ".join(sorted({q for _, q in waiting}))
            failed = Settled(account, "failed", number, bill.currency, bill.total, problem=(
                f"its bill would take units of resource pack {packs_}, which also serves {periods}, not settled "
                f"yet for {account}: a pack's units go to the earlier period first; settle {earliest} first"))
            return lambda inside: failed

        def again(inside: Inside, current: _Priced) -> _Priced:
            fresh = inside.packs(account)
            now = as_now(inside, fresh)
            return current if now is bill else priced(now, fresh)

        prerendered: Callable[[str, object], tuple[str, str, str] | None] = _not_rendered
        if pre.active:
            prerendered = pre.add(account, items, packs, suspended, buyer, policy.numbering.number(series, next_seq),
                                  ahead.party(account))
            next_seq += 1
        first = priced(bill, packs, prerendered, number)
        step("rated")

        def record(inside: Inside) -> Settled:
            done = _settle_one(store, first, service, when_, at, policy, again, seller, inside)
            if done is None:  # a concurrent run settled it after we looked: what it recorded stands
                before = pack_balances(store, account, service, when_, zone, before_bill=True)
                try:
                    inside.numbered_elsewhere()
                    done = correct(store, policy, as_now(inside, before), service, when_, at, seller)
                except TaxError as exc:
                    done = Settled(account, "failed", number, book.currency, None, problem=str(exc))
            return done
        return record

    def rate_batch(accounts: list[str]) -> list[Callable[[Inside], Settled]]:
        # What is read of each batch as it comes, rather than of the whole ledger up front: its usage
        # (from the merge), whether its bills are recorded already, its currencies.
        usage_of = merge.take(accounts)
        recorded, currencies = F.batch_facts(store, accounts, service, period)
        ahead = Ahead(store, accounts, service, end, when_, zone, recorded)
        return [rate_account(account, ahead, usage_of[account].items if account in usage_of else (),
                             account in recorded, currencies[account]) for account in accounts]

    def interrupted(cause: Exception, left, stopped: str | None = None) -> SettleInterrupted:
        """What a settlement stopped part-way says: the accounts committed before are billable[:count]."""
        if tally.keep:
            return SettleInterrupted(period, service, cause, tuple(tally.kept), tuple(left), stopped)
        failed = tally.failed_accounts()
        recorded = [a for a in billable[:tally.count] if a not in failed]
        return SettleInterrupted(period, service, cause, (), tuple(left), stopped, recorded=recorded)

    def committed(done: list[Settled]) -> None:
        for result in done:
            tally.add(result)
            step("committed")
        if on_account is None:
            return
        for result in done:
            try:
                on_account(result)
            except Exception as exc:  # noqa: BLE001 - the caller's (a report that cannot be written): what is recorded is said
                raise interrupted(exc, billable[tally.count:], f"{result.account} (handing over its result)") from exc

    def write_batch(chunk: list[str], records, start: int, savepoints: bool = False
                    ) -> tuple[list[Settled], LedgerError | None]:
        """Record a batch's accounts in one transaction: the results of those recorded, and the failure
        (a LedgerError) that stopped the batch at the account after them, whose changes are undone.
        First without a savepoint an account (each costs about a tenth of recording a bill): an account
        that fails then undoes the whole batch, and the accounts before it are recorded again, each
        in its savepoint, as they would have been had the first try had savepoints."""
        done: list[Settled] = []
        failure = None
        try:
            with store.batch(savepoints=savepoints):
                inside = Inside(store, chunk, service, period, when_, stamp(at), issued_on)
                for record in records:
                    try:
                        done.append(record(inside))
                    except LedgerError as exc:
                        failure = exc
                        if savepoints or not store.in_transaction:
                            # Its own changes are undone (its savepoint, or SQLite's rollback of the whole
                            # transaction, which leaving the batch says); those before it are whole.
                            break
                        raise _Redo from None
                    if store.spoiled and not savepoints:
                        # A write failed and the account's own code caught it and went on (a correction
                        # that cannot be taxed): what the write changed is still here, so the batch is
                        # undone and recorded again with savepoints, which undo that write alone.
                        raise _Redo(whole=True)
        except _Redo as redo:
            if redo.whole:  # every account of the batch, the one that failed inside and those after it too
                return write_batch(chunk, records, start, savepoints=True)
            if not done:
                return [], failure
            kept, earlier = write_batch(chunk, records[:len(done)], start, savepoints=True)
            return kept, earlier or failure
        except LedgerError as exc:  # the batch's commit failed: none of it is recorded
            stopped = chunk[len(done)] if failure is not None else None
            raise interrupted(failure or exc, billable[start:], stopped) from None
        return done, failure

    if on_start is not None:
        on_start(SettleReport(period, service, t.fingerprint, at, when_, collected), billable)
    with Prerenderer(rules, period, issued_on, jobs, len(billable)) as pre, store.journals_in_memory(), \
            F.fewer_collections():
        rated: deque[list[Callable[[Inside], Settled]]] = deque()
        upto = 0  # the accounts before it are rated; those of `rated` are not written yet
        for start in range(0, len(billable), batch):
            chunk = list(billable[start:start + batch])
            try:
                # This batch, and with workers the batches after it up to `pre.ahead` accounts: rated (their
                # invoices handed to the workers) before this one is written, so that the workers render
                # while the ledger writes, and have work left whenever they finish a task first.
                while upto <= start or (pre.active and upto < len(billable) and upto - start < batch + pre.ahead):
                    rated.append(rate_batch(list(billable[upto:upto + batch])))
                    upto += batch
                records = rated.popleft()
            except LedgerError as exc:  # the ledger could not be read: nothing of this batch was written
                raise interrupted(exc, billable[start:]) from None
            except F.UsageOrderError as exc:
                if not tally.count:
                    raise
                raise interrupted(exc, billable[start:]) from None
            done, failure = write_batch(chunk, records, start)
            committed(done)
            if failure is not None:
                # The batches before are recorded and stay so: saying "nothing was changed" would be
                # wrong (a full disk, a lost lock).
                raise interrupted(failure, billable[start + len(done):]) from None
    try:
        merge.rest()
    except F.UsageOrderError as exc:
        if not tally.count:
            raise
        raise interrupted(exc, (), exc.account) from None
    return SettleReport(period, service, t.fingerprint, at, when_, collected, tuple(tally.kept), merge.unbilled(),
                        streamed=None if tally.keep else tally.streamed())


class _Redo(Exception):
    """Leaves a batch written without savepoints, rolling it back, to record it again with them: the
    accounts before the one that failed (which stops the settlement), or, `whole`, every account (one
    whose own code caught a failed write and went on)."""

    def __init__(self, whole: bool = False):
        super().__init__()
        self.whole = whole


def _settle_one(store, priced: _Priced, service, when_, at, policy, again, seller, inside: Inside) -> Settled | None:
    """Record one account's bill, numbered in its series, the pack units it uses (and those its packs
    lose by expiring), and its debit, in one transaction. `again(inside, priced)` is the bill priced
    anew when what it depends on changed since it was priced (a pack bought, a top-up that resumed
    the service, new buyer details, committed meanwhile by another process), else `priced`. `inside`:
    what the batch's transaction read of its accounts. None: a concurrent run recorded the period's
    bill after it was looked for."""
    S = settlement()
    INVOICE, SETTLEMENT, TaxError = _recording()

    bill = priced.bill
    account, period = bill.account, bill.period
    when, opens, closes = inside.when, inside.opens, inside.closes
    with store.write() as db:
        if inside.recorded(account):
            return None
        try:
            position = inside.position(account)
        except LedgerError as exc:
            return Settled(account, "failed", priced.fingerprint, bill.currency, bill.total, problem=str(exc))
        try:
            priced = again(inside, priced)  # as the ledger stands now, should another process have changed it
        except TaxError as exc:
            return Settled(account, "failed", priced.fingerprint, bill.currency, None, problem=str(exc))
        bill = priced.bill
        issued_on = inside.issued_on
        number, series, seq = inside.assign_number(db, policy.numbering, INVOICE)
        # Set once, then only when the policy's zone changes: with the service's row, as its debit updates it.
        zone = (service, policy.time_zone) if inside.time_zone(account) != policy.time_zone else None
        buyer, party = inside.buyer(account), seller.party if seller else None
        paper = seller.paper if seller else "A4"
        ahead = priced.prerendered(number, buyer)
        if ahead is not None:  # rendered by a worker for this number and buyer: the same texts
            invoice_text, bill_json, document_json = ahead
        else:
            # Imported only here: with workers the ledger's process renders nothing (jinja and the templates unloaded).
            from .. import render

            meta = priced.meta(number, issued_on)
            invoice_text = render.render_invoice(bill, policy, "text", meta=meta, seller=party, buyer=buyer, paper=paper)
            bill_json = D.bill_json(priced.bill_dict)
            document_json = D.invoice_json(meta, priced.bill_dict, policy.locale, paper, party, buyer)
        currency, total, terms = bill.currency, bill.total, priced.terms
        # The bill's JSON and invoice text are its document's (below), stored once (schema version 5).
        db.execute("INSERT INTO bills (account, service, period, invoice_number, currency, total, list_cost, "
                   "rules_name, rules_fingerprint, issued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (account, service, period, number, currency, as_text(total), as_text(priced.list_cost),
                    bill.rules_name, bill.rules_fingerprint, when))
        money = format_money(total, currency)
        billed = S.new_change(S.BILL_ISSUED, f"invoice {number} for {period}: {money} ({bill.rules_name}, "
                              f"{bill.rules_fingerprint[:19]})", service, period, ref=number)
        if when < opens:
            window = f"{when_.deduction_opens.date().isoformat()} to {when_.deduction_last_day.isoformat()}"
            then, after = [S.Change(
                S.DEBIT_SCHEDULED, f"invoice {number} for {period}: {money} to be debited in the deduction "
                f"window, {window} ({when_.time_zone})", service, period, ref=number)], position
            debit = "scheduled"
        else:
            outcome = S.apply_debit(position, service, period, total, terms, number, note=late(when, closes))
            then, after = outcome.changes, outcome.position
            debit = "applied"
        if inside.has_packs(account):
            # The units a bill takes are recorded between its bill and its debit (they change no balance).
            issued = P.record(db, account, position, when, [billed], position)
            entry = issued.entries[0].seq
            issued = P.merge(issued, take_packs(db, bill, service, when_, position, when))
            applied = P.merge(issued, P.record(db, account, position, when, then, after, time_zone=zone))
        else:  # the bill's entry and its debit's in one go: the account's row is updated once
            applied = P.record(db, account, position, when, [billed, *then], after, time_zone=zone)
            entry = applied.entries[0].seq
        D.insert_document(db, number=number, series=series, seq=seq, kind=INVOICE, account=account, service=service,
                        period=period, refers_to=None, cause=SETTLEMENT, reason="", currency=currency, amount=total,
                        fingerprint=priced.fingerprint, bill_json=bill_json, document_json=document_json,
                        document_text=invoice_text, issued_at=when, entry=entry)
        step("billed")
        # The debit's row as it ends up (applied, with its entry; or scheduled): one statement, not two.
        taken = next(e.seq for e in applied.entries if e.kind == S.DEBIT) if debit == "applied" else None
        db.execute("INSERT INTO debits (account, service, period, amount, due_at, closes_at, arrears_action, "
                   "resume_when, freeze, freeze_basis, status, entry) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (account, service, period, as_text(total), opens, closes, terms.arrears_action,
                    terms.resume_when, None if terms.freeze is None else as_text(terms.freeze), terms.freeze_basis,
                    debit, taken))
        step("debited")
    return _new_settled(account, "settled", number, currency, total, debit, when_.deduction_opens, applied,
                        issue_date=issued_on, due_date=priced.due(issued_on))


_new_settled = builder(Settled)  # a settled account's result, without a frozen __init__'s per-field stores


@cache
def _recording():
    """What recording a bill needs of modules `ratecard status` does not load: imported once, not once an
    account."""
    from ..documents import INVOICE, SETTLEMENT
    from ..tax import TaxError

    return INVOICE, SETTLEMENT, TaxError


@dataclass(frozen=True)
class _Priced:
    """One account's bill for a period, priced, with the packs it was priced with. `meta(number,
    issued)` gives its invoice's number and dates once the settlement's transaction has numbered it."""

    bill: Bill
    fingerprint: str
    list_cost: Decimal
    terms: S.Terms
    packs: tuple[PackBalance, ...]
    meta: Callable[[str, date], InvoiceMeta]  # (number, issue date) → the invoice's number and dates
    due: Callable[[date], date | None]  # issue date → its due date
    # (number, buyer) → its invoice text, bill JSON and document JSON rendered ahead, or None
    prerendered: Callable[[str, object], tuple[str, str, str] | None]

    @cached_property
    def bill_dict(self) -> dict:
        return self.bill.to_dict()


_PRICED_FIELDS = tuple(f.name for f in fields(_Priced))


def _new_priced(*values) -> _Priced:
    """`_Priced(*values)` without a frozen __init__'s per-field stores (it has no checks to skip)."""
    priced = object.__new__(_Priced)
    priced.__dict__.update(zip(_PRICED_FIELDS, values))
    return priced


def _not_rendered(number: str, buyer: object) -> tuple[str, str, str] | None:
    return None
