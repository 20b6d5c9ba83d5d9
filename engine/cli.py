"""The `ratecard` command: parse arguments, call the library, format the result. Nothing else."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from . import resources
from . import __version__
from .errors import RatecardError
from .formatting import format_amount, format_count, format_money, format_price


# The rule loader pulls in YAML and JSON Schema; imported on first use so that commands that need no
# rules (`ratecard status`, asked by a gateway many times a second) start fast.
def load_rules(path):
    from .rules import load_rules as load

    return load(path)


def check_rules(path):
    from .rules import check_rules as check

    return check(path)


def _rule_sets(args_dirs) -> list[Path]:
    return [Path(d) for d in args_dirs] if args_dirs else resources.local_or_shipped_rule_sets()


def _check_rule_sets(args, *, with_lint: bool) -> int:
    """validate and lint: every problem of every rule set named, as text or JSON."""
    lint = None
    if with_lint:
        from .lint import lint
    results = []
    for path in _rule_sets(args.rules):
        rule_set, problems = check_rules(path)
        # Lint only what validates: its warnings assume a consistent rule set, and errors come first.
        if lint is not None and rule_set is not None:
            problems = problems + lint(rule_set)
        results.append((path, rule_set, problems))
    problems = [p for _, _, found in results for p in found]
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    if args.format == "json":
        out = {"valid": not errors}
        if with_lint:
            out["warnings"] = warnings
        out["rule_sets"] = [{"path": str(path), "valid": rs is not None,
                             "fingerprint": rs.fingerprint if rs else None} for path, rs, _ in results]
        out["problems"] = [p.to_dict() for p in problems]
        print(json.dumps(out, indent=2))
    else:
        for p in problems:
            print(p)
        for path, rule_set, found in results:
            if rule_set is None:
                continue
            if with_lint:
                print(f"{rule_set.path}: valid, {sum(p.severity == 'warning' for p in found)} warning(s)")
            else:
                print(summary(rule_set))
        if errors:
            print(f"{errors} error(s) found" + ("; fix them before linting" if with_lint else ""), file=sys.stderr)
    return 1 if errors or (with_lint and args.strict and warnings) else 0


def cmd_validate(args) -> int:
    return _check_rule_sets(args, with_lint=False)


def cmd_lint(args) -> int:
    return _check_rule_sets(args, with_lint=True)


def summary(rule_set) -> str:
    book, mapping, policy = rule_set.latest
    billable = sum(r.billable for r in mapping.apis.values())
    versions = len(rule_set.pricing) + len(rule_set.mappings) + len(rule_set.policies)
    return (f"{rule_set.path}: valid — {len(book.categories)} categories, {billable} billable and "
            f"{len(mapping.apis) - billable} free APIs, {book.currency}, {book.tier_mode} tiers, "
            f"{versions} rule file version(s), {rule_set.fingerprint[:19]}")


# ASCII digits (str.isdigit() takes "²" and "١٢"), and few enough of them to be a real count.
_COUNT = re.compile(r"[0-9]{1,18}")


def _same_file(a, b) -> bool:
    try:
        return a != "-" and Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def _check_rejects_path(args) -> None:
    """A rejects file that is also an input would be emptied before it is read."""
    if getattr(args, "rejects", None) and any(_same_file(u, args.rejects) for u in args.usage):
        raise RatecardError(f"--rejects {args.rejects} is also a --usage file; it would be overwritten before "
                            "it is read: write the rejects somewhere else")


def _jobs(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,2}", text) or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"expected a number of worker processes from 1 to 64, got {text!r}")
    return int(text)


def _usage_args(pairs) -> list:
    """`API=CALLS` or `API:OUTCOME=CALLS` words → usage items."""
    from .rating import UsageItem

    items = []
    for word in pairs:
        name, sep, calls = word.rpartition("=")
        api, _, outcome = name.partition(":")
        digits = calls.replace("_", "").replace(",", "")
        if not sep or not api or not _COUNT.fullmatch(digits):
            raise RatecardError(f"bad usage {word!r}: expected API=CALLS or API:OUTCOME=CALLS with a whole "
                                "number of calls, e.g. RenderWidget=1000000")
        items.append(UsageItem(api, int(digits), outcome or None))
    return items


def _pack_args(pairs) -> list:
    from .rating import PackBalance

    packs = []
    for i, word in enumerate(pairs, 1):
        category, sep, units = word.partition("=")
        digits = units.replace("_", "").replace(",", "")
        if not sep or not category or not _COUNT.fullmatch(digits):
            raise RatecardError(f"bad pack {word!r}: expected CATEGORY=UNITS, e.g. widgets=500000")
        packs.append(PackBalance(f"what-if-{i}", category, int(digits)))
    return packs


def _default_period(rules) -> str:
    from datetime import datetime, timezone

    from .periods import period_of

    return period_of(datetime.now(timezone.utc), rules.latest[2].time_zone)


def cmd_quote(args) -> int:
    from .explain import explain
    from .rating import rate, tariff

    rules = load_rules(args.rules or resources.default_rule_set())
    period = args.period or _default_period(rules)
    packs = _pack_args(args.pack)
    t = tariff(rules, period)
    unknown_packs = sorted({p.category for p in packs} - {c.id for c in t.categories})
    if unknown_packs:
        raise RatecardError(f"--pack names unknown category {', '.join(unknown_packs)}; expected one of: "
                            f"{', '.join(c.id for c in t.categories)}")
    bill = rate(rules, _usage_args(args.usage), period, packs=packs, suspended=args.suspended)
    if args.format == "json":
        out = bill.to_dict()
        if args.explain:
            out["explanation"] = explain(t, bill)
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    print("\n".join(quote_text(bill)))
    if args.explain:
        print()
        print("\n".join(explain(t, bill)))
    return 0


def quote_text(bill) -> list[str]:
    cur = bill.currency
    prepaid = any(line.free_quota_used or line.packs_used for line in bill.lines)
    rows = [("Category", "Billable", "Free") + (("Free quota", "Packs", "Pay-as-you-go") if prepaid else ())
            + ("Tier", "Unit price", "Amount")]
    for line in bill.lines:
        used = (format_count(line.free_quota_used), format_count(sum(p.units_used for p in line.packs_used)),
                format_count(line.payg_calls)) if prepaid else ()
        rows.append((line.name, format_count(line.calls), format_count(line.free_calls)) + used
                    + (str(line.tier), format_price(line.unit_price), format_amount(line.amount, cur)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    fmt = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                              for i, (c, w) in enumerate(zip(r, widths))).rstrip()
    out = [f"Quote for {bill.period} — rules {bill.rules_name}, {cur}", ""]
    out += [fmt(rows[0]), fmt(tuple("-" * w for w in widths))] + [fmt(r) for r in rows[1:]]
    label = len(fmt(rows[0])) - widths[-1] - 2
    r = bill.rounding
    out += ["",
            f"{'Subtotal'.rjust(label)}  {format_amount(bill.subtotal, cur).rjust(widths[-1])}",
            f"{('Rounding (' + r['quantum'] + ', ' + r['mode'] + ')').rjust(label)}  "
            f"{format_amount(bill.rounding_adjustment, cur).rjust(widths[-1])}",
            f"{'Total'.rjust(label)}  {format_money(bill.total, cur)}"]
    for warning in bill.warnings:
        out.append(f"warning: {warning}")
    return out


class _Progress:
    """Progress on standard error, only when it is a terminal and the run is longer than a moment."""

    def __init__(self, total: int, enabled: bool):
        import time

        self.clock, self.total = time.monotonic, total
        self.enabled = enabled and sys.stderr.isatty()
        self.start = self.last = self.clock()
        self.shown = False

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if now - self.start >= 2 and now - self.last >= 0.25:
            self.last, self.shown = now, True
            print(f"\rbilling: {done:,}/{self.total:,} accounts", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.shown:
            print("\r\033[K", end="", file=sys.stderr, flush=True)


def cmd_bill(args) -> int:
    _check_rejects_path(args)
    from .billrun import RunTotals, bill_accounts, invoice_filename
    from .seen import SeenIds
    from .usage import RejectsWriter, UsageReader

    rules = load_rules(args.rules or resources.default_rule_set())
    rejects = RejectsWriter(args.rejects) if args.rejects else None
    # Request ids spill to a temporary file past a limit, so memory stays flat however many calls;
    # the store is gone before the workers are forked.
    seen = SeenIds()
    try:
        reader = UsageReader(rules, period=args.period, on_reject=rejects, seen_ids=seen)
        for source in args.usage:
            reader.read(source, stdin=sys.stdin.buffer, format=args.input_format, kind=args.kind)
    finally:
        seen.close()
        if rejects is not None:
            rejects.close()
    reconciliation = reader.reconciliation.check()
    if rejects is None:
        reader.raise_for_rejects()  # strict: list every bad row, bill nothing

    count = reader.account_periods
    accounts = reader.accounts()  # made one at a time, as they are billed: not all held at once
    out_dir = Path(args.out) if args.out else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    machine = args.format in ("json", "jsonl")
    report = sys.stdout if out_dir is not None or not machine else sys.stderr
    totals = RunTotals()
    progress = _Progress(count, not args.quiet)
    stream = None
    if out_dir is not None and args.format == "jsonl":
        stream = open(out_dir / "bills.jsonl", "w", encoding="utf-8", newline="\n")
    try:
        if out_dir is None and args.format == "json":
            print("[")
        for i, item in enumerate(bill_accounts(rules, accounts, args.format, jobs=args.jobs, count=count)):
            totals.add(item)
            if stream is not None:
                stream.write(item.text)
            elif out_dir is not None:
                path = out_dir / invoice_filename(item.account, item.period, args.format)
                path.write_text(item.text, encoding="utf-8", newline="\n")
            elif args.format == "json":
                sys.stdout.write(("," if i else "") + item.text.rstrip("\n") + "\n")
            else:
                sys.stdout.write(("\n" if i and args.format != "jsonl" else "") + item.text)
            progress.update(i + 1)
        if out_dir is None and args.format == "json":
            print("]")
    finally:
        progress.close()
        if stream is not None:
            stream.close()
    sys.stdout.flush()
    money = ", ".join(format_money(v, c) for c, v in sorted(totals.by_currency.items())) or "nothing"
    print(f"{'' if machine or out_dir else chr(10)}billed {totals.invoices:,} invoice(s): {money}"
          + (f", written to {out_dir}" if out_dir else ""), file=report)
    for line in reconciliation.lines():
        print(line, file=report)
    if rejects is not None:
        print(f"{rejects.count:,} bad row(s) written to {args.rejects}", file=report)
    return 0


def cmd_ratecard(args) -> int:
    from .render import render_rate_card

    rules = load_rules(args.rules or resources.default_rule_set())
    sys.stdout.write(render_rate_card(rules, args.format, args.period))
    return 0


def _pct_arg(text: str):
    from decimal import Decimal, InvalidOperation

    try:
        value = Decimal(text)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"expected a percentage of at least 0, e.g. 5 or 12.5, got {text!r}")
    return value


def diff_text(result) -> list[str]:
    """The impact report of `ratecard diff` as text lines."""
    cur = result.currency

    def signed(value) -> str:
        return ("+" if value > 0 else "") + format_amount(value, cur)

    def pct(value) -> str:
        return "new" if value is None else f"{'+' if value > 0 else ''}{value}%"

    def table(title, rows, total=None) -> list[str]:
        cells = [(title, "Base calls", "New calls", "Base total", "New total", "Change", "Change %")]
        for r in rows + ([total] if total else []):
            cells.append((r.name, format_count(r.base_calls), format_count(r.new_calls),
                          format_amount(r.base_total, cur), format_amount(r.new_total, cur), signed(r.change),
                          pct(r.percent)))
        widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
        fmt = lambda c: "  ".join(v.ljust(w) if i == 0 else v.rjust(w)  # noqa: E731
                                  for i, (v, w) in enumerate(zip(c, widths))).rstrip()
        out = [fmt(cells[0]), fmt(tuple("-" * w for w in widths))] + [fmt(c) for c in cells[1:len(rows) + 1]]
        if total:
            out += [fmt(tuple("-" * w for w in widths)), fmt(cells[-1])]
        return out

    base, new = result.base, result.rules
    periods = ", ".join(result.periods) or "no period"
    out = [f"Impact of {new.path} ({new.fingerprint[:19]}) against base {base.path} ({base.fingerprint[:19]})",
           f"{format_count(result.bills)} bill(s) in {periods}, {cur}", ""]
    for v in result.versions:
        shown = lambda versions: ", ".join(f"{kind} {since}" for kind, since in versions)  # noqa: E731
        same = " (the same)" if v.base == v.new else f"; new: {shown(v.new)}"
        out.append(f"Versions for {v.period}: base: {shown(v.base)}{same}")
    out += ["", "By category (line amounts, before each bill's rounding to its total)"]
    out += table("Category", list(result.categories)) + [""]
    out += ["By account (bill totals)"] + table("Account", list(result.accounts), result.total) + [""]
    if result.tier_changes:
        out.append(f"Tier changes ({len(result.tier_changes)}):")
        out += [f"  {t.account} {t.period} {t.name}: tier {t.base_tier} -> tier {t.new_tier} "
                f"({format_count(t.base_calls)} -> {format_count(t.new_calls)} calls)" for t in result.tier_changes]
    else:
        out.append("Tier changes: none")
    if result.alert_pct is not None:
        above = f"Bills rising more than {result.alert_pct}%"
        out.append(f"{above} ({len(result.alerts)}):" if result.alerts else f"{above}: none")
        out += [f"  {a.account} {a.period}: {format_amount(a.base_total, cur)} -> {format_amount(a.new_total, cur)} "
                f"({signed(a.change)}, {pct(a.percent)})" for a in result.alerts]
    for n in result.not_billed:
        side = "base" if n.side == "base" else "new"
        out.append(f"Not billed by the {side} rules: {format_count(n.calls)} calls of {n.api} ({n.account} "
                   f"{n.period}): the API mapping does not list it")
    return out


def cmd_diff(args) -> int:
    _check_rejects_path(args)
    from .diff import diff_rules
    from .usage import RejectsWriter, UsageReader
    from .versions import is_git_spec, load_rule_spec

    new_spec = args.rules or str(resources.default_rule_set())
    # git:REV is a revision of the folder the other side names, or of the shipped rule set.
    folder = next((s for s in (new_spec, args.base) if not is_git_spec(s)), str(resources.default_rule_set()))
    rules = load_rule_spec(new_spec, folder=folder)
    base = load_rule_spec(args.base, folder=folder)
    rejects = RejectsWriter(args.rejects) if args.rejects else None
    try:
        # Usage is read as a bill run with the new rules would read it; what the base rules do not
        # know is listed as not billed by them.
        reader = UsageReader(rules, period=args.period, on_reject=rejects)
        for source in args.usage:
            reader.read(source, stdin=sys.stdin.buffer)
    finally:
        if rejects is not None:
            rejects.close()
    reader.reconciliation.check()
    if rejects is None:
        reader.raise_for_rejects()
    result = diff_rules(base, rules, reader.accounts(), alert_pct=args.alert_pct)
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        print("\n".join(diff_text(result)))
        if rejects is not None:
            print(f"{rejects.count:,} bad row(s) written to {args.rejects}")
    return 0


# -- the ledger: accounts, settlement, arrears (engine/ledger.py) ----------------------------------


def _at(text):
    """The moment a ledger command acts at: --at, else now. The only place the ledger reads the clock."""
    from datetime import datetime, timezone

    if text is None:
        return datetime.now(timezone.utc)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is not None and not 1970 <= moment.year <= 9998:
        raise RatecardError(f"bad --at {text!r}: expected a date between 1970 and 9998")
    if moment is None or moment.tzinfo is None or moment.utcoffset() is None:
        raise RatecardError(f"bad --at {text!r}: expected an ISO 8601 date and time with a UTC offset, "
                            "e.g. 2024-04-05T09:00:00+02:00 or 2024-04-05T07:00:00Z")
    return moment


def _open_ledger(args, **options):
    from .ledger import Ledger

    return Ledger(args.db, **options)


def _default_service() -> str:
    return resources.default_rule_set().name


def _services_text(account) -> str:
    return ", ".join(f"{s.service} {s.state}" for s in account.services) or "no service activated"


def _applied_text(applied, currency) -> str:
    text = (f"balance {format_money(applied.balance, currency)}, deposits {format_money(applied.frozen, currency)}, "
            f"available {format_money(applied.balance - applied.frozen, currency)}")
    standing = [f"{e.service} {e.kind}" for e in applied.entries if e.kind in ("suspended", "resumed")]
    if standing:
        text += "; " + ", ".join(standing)
    elif applied.suspended:
        text += f"; suspended: {', '.join(applied.suspended)}"
    return text


def cmd_account_create(args) -> int:
    with _open_ledger(args, create=True) as ledger:
        ledger.create_account(args.account, args.name or args.account, args.currency, _at(args.at))
        account = ledger.account(args.account)
    print(f"created account {account.id} ({account.name}, {account.currency}) in {ledger.path}")
    return 0


def cmd_account_activate(args) -> int:
    service = args.service or _default_service()
    with _open_ledger(args) as ledger:
        applied = ledger.activate(args.account, service, args.terms, _at(args.at))
    print(applied.note if not applied.changed else f"{args.account}: {applied.entries[-1].reason}")
    return 0


def cmd_account_show(args) -> int:
    with _open_ledger(args, readonly=True) as ledger:
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
    with _open_ledger(args, readonly=True) as ledger:
        accounts = ledger.accounts()
    if args.format == "json":
        print(json.dumps([a.to_dict() for a in accounts], indent=2, ensure_ascii=False))
        return 0
    rows = [("Account", "Name", "Balance", "Available", "Services")]
    rows += [(a.id, a.name, format_money(a.balance, a.currency), format_money(a.available, a.currency),
              _services_text(a)) for a in accounts]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.rjust(w) if i in (2, 3) else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
              + "  " + r[4])
    print(f"{len(accounts)} account(s) in {ledger.path}")
    return 0


def cmd_topup(args) -> int:
    with _open_ledger(args) as ledger:
        applied = ledger.top_up(args.account, args.amount, _at(args.at), reference=args.reference)
        currency = ledger.account(args.account).currency
    if not applied.changed:
        print(f"{args.account}: {applied.note}; nothing was changed")
    else:
        print(f"{args.account}: {applied.entries[0].reason}; {_applied_text(applied, currency)}")
    return 0


def cmd_pack_buy(args) -> int:
    rules = load_rules(args.rules or resources.default_rule_set())
    with _open_ledger(args) as ledger:
        bought = ledger.buy_pack(rules, args.account, args.category, args.size, _at(args.at),
                                 reference=args.reference)
    pack, applied = bought.pack, bought.applied
    if args.format == "json":
        print(json.dumps({"pack": pack.to_dict(), "changed": applied.changed, "note": applied.note or None,
                          "balance": str(applied.balance), "frozen": str(applied.frozen),
                          "entries": [e.to_dict() for e in applied.entries]}, indent=2, ensure_ascii=False))
    elif not applied.changed:
        print(f"{args.account}: {applied.note}; nothing was changed")
    else:
        print(f"{args.account}: {applied.entries[0].reason}; {_applied_text(applied, pack.currency)}")
    return 0


def _pack_time(pack, moment) -> str:
    return pack.local(moment).strftime("%Y-%m-%d %H:%M")


def cmd_pack_list(args) -> int:
    at = _at(args.at)
    with _open_ledger(args, readonly=True) as ledger:
        packs = ledger.packs(args.account, service=args.service, at=at)
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
            print(f"{p.id}: expired; its {format_count(p.left)} {p.unit}(s) left still serve the calls of "
                  f"{p.last_period}, the month it expired in, until that month is settled; then they are lost")
    return 0


def _settle_text(report) -> list[str]:
    from .formatting import format_count

    when = report.schedule
    zone = when.start.tzinfo
    out = [f"Settled {report.period} of {report.service} ({report.rules_fingerprint[:19]}) as of "
           f"{report.at.astimezone(zone).isoformat(timespec='seconds')}",
           f"Bills issued {when.issue.date().isoformat()}; debits due {when.deduction_opens.date().isoformat()} "
           f"to {when.deduction_last_day.isoformat()} ({when.time_zone})"]
    for c in report.collected:
        state = (_applied_text(c.applied, c.currency) if c.applied else f"not collected: {c.problem}")
        out.append(f"  collected {c.account} {c.period} ({c.service}): {format_money(c.amount, c.currency)}; {state}")
    if report.accounts:
        out.append("")
        width = max(len(a.account) for a in report.accounts)
    for a in report.accounts:
        head = f"  {a.account.ljust(width)}  invoice {a.invoice}  {format_money(a.total, a.currency)}"
        if a.outcome == "already-settled":
            out.append(f"{head}  already settled" + (f" — note: {a.problem}" if a.problem else ""))
        elif a.outcome == "failed":
            out.append(f"{head}  NOT SETTLED: {a.problem}")
        elif a.debit == "scheduled":
            out.append(f"{head}  debit scheduled for {a.due_at.date().isoformat()}")
        else:
            out.append(f"{head}  debited; {_applied_text(a.applied, a.currency)}")
    counts = {k: sum(a.outcome == k for a in report.accounts) for k in ("settled", "already-settled", "failed")}
    out += ["", f"{len(report.accounts)} account(s): {counts['settled']} settled, {counts['already-settled']} "
            f"already settled, {counts['failed']} not settled"]
    if report.unbilled:
        out.append(f"Usage not billed ({len(report.unbilled)} account(s); settle again once they are set up):")
        width = max(len(u.account) for u in report.unbilled)
        out += [f"  {u.account.ljust(width)}  {format_count(u.calls)} call(s): {u.reason}" for u in report.unbilled]
    return out


def cmd_settle(args) -> int:
    _check_rejects_path(args)
    from .usage import UsageReader

    from .rating import tariff
    from .settlement import check_settleable

    at = _at(args.at)
    rules = load_rules(args.rules or resources.default_rule_set())
    check_settleable(tariff(rules, args.period).policy, args.period, at)  # before reading any usage
    from .usage import RejectsWriter

    held: set[str] = set()  # accounts with a rejected row: settled once their rows are fixed
    rejects = RejectsWriter(args.rejects) if args.rejects else None

    def reject(row) -> None:
        held.add(row.account)
        rejects(row)

    with _open_ledger(args) as ledger:
        try:
            reader = UsageReader(rules, period=args.period, on_reject=reject if rejects else None)
            for source in args.usage:
                reader.read(source, stdin=sys.stdin.buffer, format=args.input_format, kind=args.kind)
        finally:
            if rejects is not None:
                rejects.close()
        reconciliation = reader.reconciliation.check()
        # Without a rejects file a bad row stops everything; with one, only its account waits, since
        # a settled period cannot take a corrected row later (its bill is immutable).
        if rejects is None:
            reader.raise_for_rejects()
        report = ledger.settle(rules, reader.accounts(), args.period, at, hold=held)
    if args.format == "json":
        held_out = {"rejects": {"file": args.rejects, "rows": rejects.count,
                                "accounts_held": sorted(held - {""})}} if rejects is not None else {}
        print(json.dumps(report.to_dict() | {"reconciliation": reconciliation.to_dict()} | held_out, indent=2,
                         ensure_ascii=False))
    else:
        print("\n".join(_settle_text(report) + reconciliation.lines()))
    if rejects is not None and args.format != "json":
        print(f"{rejects.count:,} bad row(s) written to {args.rejects}")
    for failed in report.failed:
        print(f"{failed.account}: not settled: {failed.problem}", file=sys.stderr)
    return 1 if report.failed else 0


def cmd_collect(args) -> int:
    with _open_ledger(args) as ledger:
        collected = ledger.collect(_at(args.at))
    for c in collected:
        state = _applied_text(c.applied, c.currency) if c.applied else f"not collected: {c.problem}"
        print(f"{c.account} {c.period} ({c.service}): {format_money(c.amount, c.currency)}; {state}")
    print(f"collected {sum(c.applied is not None for c in collected)} scheduled debit(s)")
    return 1 if any(c.applied is None for c in collected) else 0


def cmd_status(args) -> int:
    # Kept light on purpose: a gateway asks this often. No rules, no templates: one indexed query.
    with _open_ledger(args, readonly=True) as ledger:
        status = ledger.status(args.account, args.service or _default_service())
    if args.format == "json":
        print(json.dumps(status.to_dict(), ensure_ascii=False))
    else:
        since = f" since {status.since.isoformat()}" if status.since else ""
        print(f"{status.account} {status.service}: {status.state}{since} — {status.reason}")
    return 0


def cmd_statement(args) -> int:
    from .render import render

    if args.time_zone:
        zone = args.time_zone
    else:
        zone = load_rules(args.rules or resources.default_rule_set()).latest[2].time_zone
    if args.period:
        from .periods import parse_period

        parse_period(args.period)
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(zone)
    except Exception:
        raise RatecardError(f"unknown time zone {zone!r}: expected an IANA name such as Europe/Berlin or UTC") from None
    with _open_ledger(args, readonly=True) as ledger:
        statement = ledger.statement(args.account, period=args.period, time_zone=zone)
    if args.format == "json":
        print(json.dumps({"account": statement.account.to_dict(), "period": statement.period,
                          "time_zone": statement.time_zone,
                          "opening_balance": str(statement.opening_balance),
                          "closing_balance": str(statement.closing_balance),
                          "opening_frozen": str(statement.opening_frozen),
                          "closing_frozen": str(statement.closing_frozen),
                          "entries": [e.to_dict() for e in statement.entries],
                          "bills": [b.to_dict() for b in statement.bills],
                          "charges": [c.to_dict() for c in statement.charges],
                          "charges_total": str(statement.charges_total) if statement.period else None,
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
    with _open_ledger(args, readonly=True) as ledger:
        problems = ledger.verify()
        accounts, entries = len(ledger.accounts()), len(ledger.entries())
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} problem(s) in {ledger.path}", file=sys.stderr)
        return 1
    print(f"{ledger.path}: sound — {accounts} account(s), {entries} entries; every balance and deposit equals "
          "the sum of its entries, one bill and at most one debit per account, service and period")
    return 0


def cmd_ledger_migrate(args) -> int:
    with _open_ledger(args) as ledger:
        version = ledger.version
    print(f"{ledger.path}: ledger schema version {version}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ratecard", description="Data-driven billing for pay-as-you-go APIs.")
    parser.add_argument("--version", action="version", version=f"ratecard {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("validate", help="check rule sets and report every problem")
    p.add_argument("rules", nargs="*", metavar="RULES_DIR", help="rule set folders (default: those under ./rules, else the shipped ones)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("lint", help="warn about what is valid but suspicious, e.g. volume price cliffs")
    p.add_argument("rules", nargs="*", metavar="RULES_DIR", help="rule set folders (default: those under ./rules, else the shipped ones)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--strict", action="store_true", help="exit 1 when there are warnings, too")
    p.set_defaults(func=cmd_lint)

    p = sub.add_parser("quote", help="price one month of usage for one account")
    p.add_argument("usage", nargs="*", metavar="API=CALLS",
                   help="calls per API, e.g. RenderWidget=1000000; API:OUTCOME=CALLS for an outcome or error code")
    p.add_argument("--rules", metavar="DIR", help="rule set folder (default: the shipped one)")
    p.add_argument("--period", metavar="YYYY-MM", help="billing period (default: the current month in the "
                   "policy's time zone)")
    p.add_argument("--pack", action="append", default=[], metavar="CATEGORY=UNITS",
                   help="what-if resource pack units available (repeatable)")
    p.add_argument("--suspended", action="store_true", help="price as for an account suspended for arrears")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--explain", action="store_true", help="say why each tier applied and what the next bound would change")
    p.set_defaults(func=cmd_quote)

    p = sub.add_parser("bill", help="bill a period of usage: one invoice per account, then a reconciliation")
    p.add_argument("--usage", action="append", required=True, metavar="FILE",
                   help="usage file: aggregated usage or call records, CSV or JSON Lines, plain or gzip; "
                        "- reads standard input (repeatable)")
    p.add_argument("--period", metavar="YYYY-MM", help="bill only this period; rows of others are counted "
                   "as out of period")
    p.add_argument("--rules", metavar="DIR", help="rule set folder (default: the shipped one)")
    p.add_argument("--format", choices=("text", "markdown", "html", "json", "jsonl"), default="text")
    p.add_argument("--out", metavar="DIR", help="write one file per invoice here (jsonl: one bills.jsonl)")
    p.add_argument("--rejects", metavar="FILE", help="write bad rows here with their reasons and bill the rest "
                   "(default: list them and bill nothing)")
    p.add_argument("--input-format", choices=("csv", "jsonl"), help="usage file format (default: detected)")
    p.add_argument("--kind", choices=("aggregated", "calls"), help="usage kind (default: detected)")
    p.add_argument("--jobs", type=_jobs, metavar="N", help="worker processes, 1 to 64 (default: all cores for "
                   "large runs)")
    p.add_argument("--quiet", action="store_true", help="no progress on standard error")
    p.set_defaults(func=cmd_bill)

    p = sub.add_parser("ratecard", help="render the public rate card from the rules")
    p.add_argument("--rules", metavar="DIR", help="rule set folder (default: the shipped one)")
    p.add_argument("--period", metavar="YYYY-MM", help="the rules in force in this period (default: the latest)")
    p.add_argument("--format", choices=("markdown", "html"), default="markdown")
    p.set_defaults(func=cmd_ratecard)

    p = sub.add_parser("diff", help="what a rules change does to the bills of some usage, per category and account")
    p.add_argument("--base", required=True, metavar="OLD",
                   help="the rules to compare against: a rule set folder, or git:REV for the rules folder as "
                        "committed at git revision REV (e.g. git:main)")
    p.add_argument("--rules", metavar="NEW", help="the new rules: a folder or git:REV (default: the shipped one)")
    p.add_argument("--usage", action="append", required=True, metavar="FILE",
                   help="usage file, as for `ratecard bill`; - reads standard input (repeatable)")
    p.add_argument("--period", metavar="YYYY-MM", help="compare only this period's bills")
    p.add_argument("--alert-pct", type=_pct_arg, metavar="N",
                   help="list the bills whose total rises by more than N percent")
    p.add_argument("--rejects", metavar="FILE", help="write bad rows here and compare the rest "
                   "(default: list them and compare nothing)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_diff)

    # -- the ledger (engine/ledger.py) --
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument("--db", metavar="PATH", help="the ledger file (default: $RATECARD_DB, else ./ratecard.db)")
    at = argparse.ArgumentParser(add_help=False)
    at.add_argument("--at", metavar="DATETIME", help="when it happens: ISO 8601 with a UTC offset (default: now)")

    p = sub.add_parser("account", help="create, activate, show and list accounts in the ledger")
    actions = p.add_subparsers(dest="account_command", metavar="ACTION")
    actions.required = True
    a = actions.add_parser("create", parents=[db, at], help="create an account (and the ledger, if new)")
    a.add_argument("account", metavar="ACCOUNT", help="the account id, as usage files name it")
    a.add_argument("--name", help="the account holder's name (default: the id)")
    a.add_argument("--currency", required=True, help="ISO 4217 currency of the balance, e.g. EUR")
    a.set_defaults(func=cmd_account_create)
    a = actions.add_parser("activate", parents=[db, at], help="activate a service: accept its terms of service")
    a.add_argument("account", metavar="ACCOUNT")
    a.add_argument("--service", metavar="NAME", help="the service: a rule set's folder name (default: the "
                   "shipped one's)")
    a.add_argument("--terms", required=True, metavar="VERSION", help="the version of the terms of service accepted")
    a.set_defaults(func=cmd_account_activate)
    a = actions.add_parser("show", parents=[db], help="an account's balance, deposits, services and bills")
    a.add_argument("account", metavar="ACCOUNT")
    a.add_argument("--format", choices=("text", "json"), default="text")
    a.set_defaults(func=cmd_account_show)
    a = actions.add_parser("list", parents=[db], help="every account with its balance and services")
    a.add_argument("--format", choices=("text", "json"), default="text")
    a.set_defaults(func=cmd_account_list)

    p = sub.add_parser("settle", parents=[db, at], help="settle a period: record each account's bill, debit it, "
                       "hold deposits and suspend in arrears, as the settlement policy says")
    p.add_argument("--period", required=True, metavar="YYYY-MM", help="the period to settle; it must have ended")
    p.add_argument("--usage", action="append", required=True, metavar="FILE",
                   help="usage file, as for `ratecard bill`; - reads standard input (repeatable)")
    p.add_argument("--rules", metavar="DIR", help="rule set folder (default: the shipped one); its folder name "
                   "is the service settled")
    p.add_argument("--rejects", metavar="FILE", help="write bad rows here and settle every account that has "
                   "none (default: list them and settle nothing)")
    p.add_argument("--input-format", choices=("csv", "jsonl"), help="usage file format (default: detected)")
    p.add_argument("--kind", choices=("aggregated", "calls"), help="usage kind (default: detected)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_settle)

    p = sub.add_parser("collect", parents=[db, at], help="apply the scheduled debits whose deduction window "
                       "has opened")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("topup", parents=[db, at], help="credit an account; resumes its service when the "
                       "policy's resume condition then holds")
    p.add_argument("account", metavar="ACCOUNT")
    p.add_argument("amount", metavar="AMOUNT", help="a positive amount in the account's currency, e.g. 100.00")
    p.add_argument("--reference", metavar="REF", help="the payment's id: recording it twice credits once")
    p.set_defaults(func=cmd_topup)

    p = sub.add_parser("pack", help="buy resource packs and list them with their units left")
    actions = p.add_subparsers(dest="pack_command", metavar="ACTION")
    actions.required = True
    a = actions.add_parser("buy", parents=[db, at], help="buy a pack on sale in the price book in force; its "
                           "price is taken from the balance at once")
    a.add_argument("account", metavar="ACCOUNT")
    a.add_argument("category", metavar="CATEGORY", help="the category the pack serves, e.g. as `ratecard ratecard` "
                   "lists it")
    a.add_argument("size", metavar="SIZE", help="units in the pack: one of the sizes on sale, e.g. 1000000, "
                   "1,000,000 or 1M")
    a.add_argument("--rules", metavar="DIR", help="rule set folder (default: the shipped one); its folder name is "
                   "the service the pack serves")
    a.add_argument("--reference", metavar="REF", help="the purchase's id: recording it twice buys once")
    a.add_argument("--format", choices=("text", "json"), default="text")
    a.set_defaults(func=cmd_pack_buy)
    a = actions.add_parser("list", parents=[db, at], help="an account's packs: units used, lost and left, and "
                           "when each expires (expired ones marked)")
    a.add_argument("account", metavar="ACCOUNT")
    a.add_argument("--service", metavar="NAME", help="only the packs of this service")
    a.add_argument("--format", choices=("text", "json"), default="text")
    a.set_defaults(func=cmd_pack_list)

    p = sub.add_parser("status", parents=[db], help="may this account use the service now? active, "
                       "suspended or not activated, with the reason")
    p.add_argument("account", metavar="ACCOUNT")
    p.add_argument("--service", metavar="NAME", help="the service (default: the shipped rule set's name)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("statement", parents=[db], help="an account's ledger entries, rendered by a template")
    p.add_argument("account", metavar="ACCOUNT")
    p.add_argument("--period", metavar="YYYY-MM", help="only the entries dated in this month (default: all)")
    p.add_argument("--rules", metavar="DIR", help="months are in this rule set's time zone (default: the "
                   "shipped one)")
    p.add_argument("--time-zone", metavar="ZONE", help="months in this IANA time zone instead")
    p.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    p.set_defaults(func=cmd_statement)

    p = sub.add_parser("ledger", help="check or migrate the ledger file")
    actions = p.add_subparsers(dest="ledger_command", metavar="ACTION")
    actions.required = True
    a = actions.add_parser("check", parents=[db], help="prove that every balance is the sum of its entries")
    a.set_defaults(func=cmd_ledger_check)
    a = actions.add_parser("migrate", parents=[db], help="bring an older ledger file to this release's schema")
    a.set_defaults(func=cmd_ledger_migrate)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except RatecardError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return exc.exit_status
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        # A file or folder the command was told to use cannot be read or written (missing folder,
        # no permission, disk full): the user's to fix, so said plainly, without a traceback.
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"{where}{exc.strerror or exc}", file=sys.stderr)
        return 1
