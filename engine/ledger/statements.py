"""Statements and the ledger's own audit: an account's entries over a period with the balances
around them and what the period cost, and `verify`, which re-adds every entry to prove the
balances, deposits and service states kept."""

from __future__ import annotations

from decimal import Decimal

from . import accounts as acc
from . import documents as docs
from . import packs as pk
from . import postings as P
from .records import Charge, Entry, Statement
from .values import ACTIVE, SUSPENDED, stamp
from ..formatting import counted


def statement(store, account: str, *, period: str | None = None, time_zone: str = "UTC") -> Statement:
    """The account's entries (all, or those dated within `period` in `time_zone`) with the balance
    and deposits before and after them. A period's statement also says what the period cost (the
    packs bought in it and its bills, whenever they are issued) and which packs served it."""
    from zoneinfo import ZoneInfo

    from .. import settlement as S
    from ..periods import period_bounds

    info = acc.account(store, account)
    ZoneInfo(time_zone)
    charges: list[Charge] = []
    if period is None:
        entries = acc.entries(store, account)
        opening = (Decimal(0), Decimal(0))
        bills = docs.bills(store, account)
        packs = pk.packs(store, account)
    else:
        bounds = period_bounds(period, time_zone)
        start, end = (stamp(t) for t in bounds)
        before = store.read("SELECT balance_after, frozen_after FROM entries WHERE account = ? AND at < ? "
                            "ORDER BY seq DESC LIMIT 1", (account, start))
        opening = (Decimal(before[0][0]), Decimal(before[0][1])) if before else (Decimal(0), Decimal(0))
        entries = [P.entry_of(r) for r in store.read(
            f"SELECT {P.ENTRY_COLUMNS} FROM entries WHERE account = ? AND at >= ? AND at < ? ORDER BY seq",
            (account, start, end))]
        invoices = {e.ref for e in entries if e.kind == S.BILL_ISSUED}
        bills = [b for b in docs.bills(store, account) if b.invoice_number in invoices]
        bought = {p.id: p for p in pk.packs(store, account, at=bounds[1])}
        for e in entries:
            if e.kind == S.PACK_PURCHASE:
                assert e.ref is not None  # a purchase's entry names the pack it bought
                p = bought[e.ref]
                charges.append(Charge(S.PACK_PURCHASE, p.service, p.id, f"pack {p.id}: {p.category}, "
                                      f"{counted(p.units, p.unit)}", -e.amount))
        charges += [Charge("invoice", b.service, b.invoice_number, f"invoice {b.invoice_number} (issued "
                           f"{b.issued_at.astimezone(ZoneInfo(time_zone)).date()}, debit {b.debit_status})",
                           b.total)
                    for b in docs.bills(store, account, period)]
        # The packs that served the period (or were bought in it), with their units up to it.
        packs = [p for p in pk.packs(store, account, period=period, as_of=bounds[1])
                 if p.bought_at < bounds[1] and (p.expires_at > bounds[0] or any(h.period == period
                                                                                 for h in p.history))]
    closing = (entries[-1].balance_after, entries[-1].frozen_after) if entries else opening
    return Statement(info, period, time_zone, opening[0], opening[1], tuple(entries), closing[0], closing[1],
                     tuple(bills), tuple(charges), tuple(packs))


def verify(store) -> list[str]:
    """Re-add every entry and compare with the balances, deposits and service states kept. Returns
    the discrepancies (none in a sound ledger)."""
    from .. import settlement as S

    problems = []
    entries: dict[str, list[Entry]] = {}
    for e in acc.entries(store):
        entries.setdefault(e.account, []).append(e)
    for acct in acc.accounts(store):
        balance = frozen = Decimal(0)
        # Keyed as the entries name services: None for an entry of the whole account.
        per_service: dict[str | None, Decimal] = {}
        state: dict[str | None, str] = {}
        for e in entries.get(acct.id, ()):
            balance, frozen = S.add(balance, e.amount), S.add(frozen, e.frozen_change)
            if e.frozen_change:
                per_service[e.service] = S.add(per_service.get(e.service, Decimal(0)), e.frozen_change)
            if e.kind in (S.SUSPENDED, S.RESUMED):
                state[e.service] = SUSPENDED if e.kind == S.SUSPENDED else ACTIVE
            if (e.balance_after, e.frozen_after) != (balance, frozen):
                problems.append(f"{acct.id}: entry {e.seq} says balance {e.balance_after} and deposits "
                                f"{e.frozen_after}, but the entries up to it add up to {balance} and {frozen}")
        if balance != acct.balance:
            problems.append(f"{acct.id}: balance {acct.balance} but its entries add up to {balance}")
        if frozen != acct.frozen:
            problems.append(f"{acct.id}: deposits {acct.frozen} but its entries add up to {frozen}")
        for svc in acct.services:
            expected = per_service.get(svc.service, Decimal(0))
            if svc.frozen != expected:
                problems.append(f"{acct.id}/{svc.service}: deposit {svc.frozen} but its entries add up to "
                                f"{expected}")
            if svc.state != state.get(svc.service, ACTIVE):
                problems.append(f"{acct.id}/{svc.service}: state {svc.state} but its entries say "
                                f"{state.get(svc.service, ACTIVE)}")
    counts = store.read(
        "SELECT d.account, d.service, d.period, d.status, "
        "(SELECT count(*) FROM entries AS e WHERE e.account = d.account AND e.service = d.service "
        " AND e.period = d.period AND e.kind = 'debit'), "
        "(SELECT count(*) FROM entries AS e WHERE e.account = d.account AND e.service = d.service "
        " AND e.period = d.period AND e.kind = 'bill-issued') FROM debits AS d")
    for account, service, period, status, debits, issued in counts:
        if debits != (1 if status == "applied" else 0) or issued != 1:
            problems.append(f"{account}/{service}/{period}: debit {status} with {debits} debit entries and "
                            f"{issued} bill entries")
    bills = store.read("SELECT count(*) FROM bills")[0][0]
    if bills != len(counts):
        problems.append(f"{bills} bills but {len(counts)} debits")
    problems += pk.verify_packs(store)
    problems += docs.verify_documents(store)
    return problems
