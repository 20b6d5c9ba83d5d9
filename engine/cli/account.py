"""`ratecard account …`, `topup` and `pack …`: accounts, balances and resource packs in the ledger."""

from __future__ import annotations

import json

from ..errors import RatecardError
from ..formatting import counted, format_count, format_money
from .common import (
    applied_text,
    at_arg,
    chosen_rules,
    load_rules,
    rules_of,
    rules_of_service,
    service_of,
    open_ledger,
    services_text,
)


def cmd_account_create(args) -> int:
    with open_ledger(args, create=True) as ledger:
        ledger.create_account(args.account, args.name or args.account, args.currency, at_arg(args.at),
                              **_buyer(args))
        account = ledger.account(args.account)
    print(f"created account {account.id} ({account.name}, {account.currency}) in {ledger.path}")
    return 0


def cmd_account_import(args) -> int:
    import sys

    from ..ledger.imports import decode, read_accounts

    source = "<stdin>" if args.file == "-" else args.file
    if args.file == "-":
        data = sys.stdin.buffer.read()
    else:
        with open(args.file, "rb") as f:
            data = f.read()
    rows = read_accounts(decode(data, source), source)
    with open_ledger(args, create=True) as ledger:
        report = ledger.import_accounts(rows, at_arg(args.at), source=source, update=args.update)
    if args.format == "json":
        print(json.dumps(report.to_dict() | {"ledger": str(ledger.path)}, indent=2, ensure_ascii=False))
        return 0
    print(f"{source}: {counted(len(report.created), 'account')} created, {format_count(len(report.unchanged))} "
          f"unchanged, {format_count(len(report.updated))} updated in {ledger.path}")
    return 0


def _time_zone(args) -> str | None:
    """The time zone of the activated rule set's policy (times are shown in it), if it can be read."""
    from ..discovery import resolve
    from ..errors import RatecardError as Problem

    spec = getattr(args, "rules", None) or getattr(args, "service", None)
    try:
        chosen = resolve(spec, "--rules") if spec else chosen_rules(args)
        return load_rules(chosen.path).latest[2].time_zone
    except Problem:
        return None


def _buyer(args) -> dict:
    return {"legal_name": args.legal_name, "address": args.address, "country": args.country, "tax_id": args.tax_id}


def cmd_account_update(args) -> int:
    buyer = {k: v for k, v in _buyer(args).items() if v is not None}
    if not buyer:
        raise RatecardError("nothing to update: give --legal-name, --address, --country or --tax-id")
    with open_ledger(args) as ledger:
        ledger.update_account(args.account, **buyer)
        party = ledger.account(args.account).buyer
    print(f"{args.account}: buyer details for documents issued from now on: {party.legal_name}"
          + "".join(f", {x}" for x in (*party.address, party.country, party.tax_id and f"tax id {party.tax_id}") if x))
    return 0


def cmd_account_activate(args) -> int:
    service = service_of(args, known=True)
    currencies = frozenset(book.currency for book in rules_of_service(args, service).pricing)
    with open_ledger(args) as ledger:
        applied = ledger.activate(args.account, service, args.terms, at_arg(args.at), _time_zone(args),
                                  currencies=currencies)
    print(applied.note if not applied.changed else f"{args.account}: {applied.entries[-1].reason}")
    return 0


def cmd_account_show(args) -> int:
    with open_ledger(args, readonly=True) as ledger:
        account = ledger.account(args.account)
        bills = ledger.bills(args.account)
    if args.format == "json":
        print(json.dumps(account.to_dict() | {"bills": [b.to_dict() for b in bills]}, indent=2, ensure_ascii=False))
        return 0
    cur = account.currency
    print(f"Account {account.id} — {account.name}")
    print(f"  currency   {cur}")
    print(f"  created    {account.created_at.isoformat()}")
    print(f"  balance    {format_money(account.balance, cur)}")
    print(f"  deposits   {format_money(account.frozen, cur)}")
    print(f"  available  {format_money(account.available, cur)}")
    print("Services" if account.services else "Services: none activated")
    for s in account.services:
        pending = f"; deposit pending {format_money(s.pending_freeze, cur)}" if s.pending_freeze is not None else ""
        print(f"  {s.service}: {s.state} since {s.since.isoformat()} — {s.reason}")
        print(f"    activated {s.activated_at.isoformat()}; terms of service {s.terms_version} accepted "
              f"{s.terms_accepted_at.isoformat()}; deposit held {format_money(s.frozen, cur)}{pending}")
    print("Bills" if bills else "Bills: none")
    for b in bills:
        print(f"  {b.period}  {b.service}  {b.invoice_number}  {format_money(b.total, b.currency)}  "
              f"debit {b.debit_status}")
    return 0


def cmd_account_list(args) -> int:
    with open_ledger(args, readonly=True) as ledger:
        accounts = ledger.accounts()
    if args.format == "json":
        print(json.dumps([a.to_dict() for a in accounts], indent=2, ensure_ascii=False))
        return 0
    rows = [("Account", "Name", "Balance", "Available", "Services")]
    rows += [(a.id, a.name, format_money(a.balance, a.currency), format_money(a.available, a.currency),
              services_text(a)) for a in accounts]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.rjust(w) if i in (2, 3) else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
              + "  " + r[4])
    print(f"{counted(len(accounts), 'account')} in {ledger.path}")
    return 0


def cmd_topup(args) -> int:
    with open_ledger(args) as ledger:
        applied = ledger.top_up(args.account, args.amount, at_arg(args.at), reference=args.reference)
        currency = ledger.account(args.account).currency
    if not applied.changed:
        print(f"{args.account}: {applied.note}; nothing was changed")
    else:
        print(f"{args.account}: {applied.entries[0].reason}; {applied_text(applied, currency)}")
    return 0


def cmd_pack_buy(args) -> int:
    rules = rules_of(args)
    with open_ledger(args) as ledger:
        bought = ledger.buy_pack(rules, args.account, args.category, args.size, at_arg(args.at),
                                 reference=args.reference)
    pack, applied = bought.pack, bought.applied
    if args.format == "json":
        from ..formatting import money_text

        print(json.dumps({"pack": pack.to_dict(), "changed": applied.changed, "note": applied.note or None,
                          "balance": money_text(applied.balance, pack.currency),
                          "frozen": money_text(applied.frozen, pack.currency),
                          "entries": [e.to_dict(pack.currency) for e in applied.entries]}, indent=2, ensure_ascii=False))
    elif not applied.changed:
        print(f"{args.account}: {applied.note}; nothing was changed")
    else:
        print(f"{args.account}: {applied.entries[0].reason}; {applied_text(applied, pack.currency)}")
    return 0


def _pack_time(pack, moment) -> str:
    return pack.local(moment).strftime("%Y-%m-%d %H:%M")


def cmd_pack_list(args) -> int:
    at = at_arg(args.at)
    with open_ledger(args, readonly=True) as ledger:
        packs = ledger.packs(args.account, service=service_of(args) if (args.service or args.rules) else None, at=at)
    if args.format == "json":
        print(json.dumps({"account": args.account, "at": at.isoformat(), "packs": [p.to_dict() for p in packs]},
                         indent=2, ensure_ascii=False))
        return 0
    if not packs:
        print(f"{args.account}: no resource packs as of {at.isoformat(timespec='seconds')}")
        return 0
    rows = [("Pack", "Service", "Category", "Units", "Used", "Lost", "Left", "Bought", "Expires", "State")]
    rows += [(p.id, p.service, p.category, format_count(p.units), format_count(p.used), format_count(p.lost),
              format_count(p.left), _pack_time(p, p.bought_at), _pack_time(p, p.expires_at),
              p.state.replace("-", " ")) for p in packs]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print(f"Resource packs of {args.account} as of {at.isoformat(timespec='seconds')} (times in "
          f"{', '.join(sorted({p.time_zone for p in packs}))})")
    for r in rows:
        print("  ".join(c.rjust(w) if 3 <= i <= 6 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip())
    for p in packs:
        if p.expired and p.left:
            print(f"{p.id}: expired; its {counted(p.left, p.unit)} left still serve the calls of "
                  f"{p.last_period}, the month it expired in, until that month is settled; then they are lost")
    return 0
