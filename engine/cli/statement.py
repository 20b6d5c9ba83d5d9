"""`ratecard statement` and `ratecard ledger check|migrate`."""

from __future__ import annotations

import json
import sys

from ..errors import RatecardError
from .account import _pack_time
from ..formatting import counted
from .common import rules_of, open_ledger


def cmd_statement(args) -> int:
    from ..render import render

    if args.time_zone:
        zone = args.time_zone
    else:
        zone = rules_of(args).latest[2].time_zone
    if args.period:
        from ..periods import parse_period

        parse_period(args.period)
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(zone)
    except Exception:
        raise RatecardError(f"unknown time zone {zone!r}: expected an IANA name such as Europe/Berlin or UTC") from None
    with open_ledger(args, readonly=True) as ledger:
        statement = ledger.statement(args.account, period=args.period, time_zone=zone)
    if args.format == "json":
        from ..formatting import money_text

        currency = statement.account.currency

        def money(value):
            return money_text(value, currency)

        print(json.dumps({"account": statement.account.to_dict(), "period": statement.period,
                          "time_zone": statement.time_zone,
                          "opening_balance": money(statement.opening_balance),
                          "closing_balance": money(statement.closing_balance),
                          "opening_frozen": money(statement.opening_frozen),
                          "closing_frozen": money(statement.closing_frozen),
                          "entries": [e.to_dict(currency) for e in statement.entries],
                          "bills": [b.to_dict() for b in statement.bills],
                          "charges": [c.to_dict(currency) for c in statement.charges],
                          "charges_total": money(statement.charges_total) if statement.period else None,
                          "packs": [p.to_dict() for p in statement.packs]}, indent=2, ensure_ascii=False))
        return 0
    ext = {"text": "txt", "markdown": "md"}[args.format]
    sys.stdout.write(render(f"statement.{ext}.j2", _statement_context(statement)))
    return 0


def _statement_context(statement) -> dict:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(statement.time_zone)
    rows = [{"seq": e.seq, "at": e.at.astimezone(zone).strftime("%Y-%m-%d %H:%M"), "kind": e.kind,
             "service": e.service or "", "period": e.period or "", "reason": e.reason, "amount": e.amount,
             "frozen_change": e.frozen_change, "balance": e.balance_after, "frozen": e.frozen_after}
            for e in statement.entries]
    period = statement.period
    packs = []
    for p in statement.packs:
        of = [h for h in p.history if period is None or h.period == period]
        packs.append({"id": p.id, "service": p.service, "category": p.category, "units": p.units, "unit": p.unit,
                      "bought": _pack_time(p, p.bought_at), "expires": _pack_time(p, p.expires_at),
                      "used": sum(h.units for h in of if h.kind == "pack-use"),
                      "lost": sum(h.units for h in of if h.kind == "pack-expired"), "left": p.left,
                      "state": p.state.replace("-", " ")})
    return {"statement": statement, "account": statement.account, "currency": statement.account.currency,
            "entries": rows, "bills": statement.bills, "charges": statement.charges, "packs": packs,
            "service_width": max([12] + [len(e.service) + 2 for e in statement.entries if e.service])}


def cmd_ledger_check(args) -> int:
    with open_ledger(args, readonly=True) as ledger:
        problems = ledger.verify()
        accounts, entries = len(ledger.accounts()), len(ledger.entries())
    for p in problems:
        print(p)
    if problems:
        print(f"{counted(len(problems), 'problem')} in {ledger.path}", file=sys.stderr)
        return 1
    print(f"{ledger.path}: sound — {counted(accounts, 'account')}, {counted(entries, 'entry', 'entries')}; every balance and deposit equals "
          "the sum of its entries, one bill and at most one debit per account, service and period")
    return 0


def cmd_ledger_migrate(args) -> int:
    with open_ledger(args) as ledger:
        version = ledger.version
    print(f"{ledger.path}: ledger schema version {version}")
    return 0
