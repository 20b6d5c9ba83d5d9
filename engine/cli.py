"""The `ratecard` command: parse arguments, call the library, format the result. Nothing else."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import resources
from .errors import RatecardError
from .formatting import format_amount, format_count, format_money, format_price
from .rules import check_rules, load_rules


def _rule_sets(args_dirs) -> list[Path]:
    return [Path(d) for d in args_dirs] if args_dirs else [resources.default_rule_set()]


def cmd_validate(args) -> int:
    results = [(path, *check_rules(path)) for path in _rule_sets(args.rules)]
    problems = [p for _, _, found in results for p in found]
    if args.format == "json":
        out = {"valid": not any(p.severity == "error" for p in problems),
               "rule_sets": [{"path": str(path), "valid": rs is not None,
                              "fingerprint": rs.fingerprint if rs else None} for path, rs, _ in results],
               "problems": [p.to_dict() for p in problems]}
        print(json.dumps(out, indent=2))
    else:
        for p in problems:
            print(p)
        for path, rule_set, _ in results:
            if rule_set is not None:
                print(summary(rule_set))
        errors = sum(p.severity == "error" for p in problems)
        if errors:
            print(f"{errors} error(s) found", file=sys.stderr)
    return 1 if any(p.severity == "error" for p in problems) else 0


def cmd_lint(args) -> int:
    from .lint import lint

    # Lint only what validates: its warnings assume a consistent rule set, and errors come first.
    results = []
    for path in _rule_sets(args.rules):
        rule_set, problems = check_rules(path)
        results.append((path, rule_set, problems + (lint(rule_set) if rule_set is not None else [])))
    problems = [p for _, _, found in results for p in found]
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    if args.format == "json":
        out = {"valid": not errors, "warnings": warnings,
               "rule_sets": [{"path": str(path), "valid": rs is not None,
                              "fingerprint": rs.fingerprint if rs else None} for path, rs, _ in results],
               "problems": [p.to_dict() for p in problems]}
        print(json.dumps(out, indent=2))
    else:
        for p in problems:
            print(p)
        for path, rule_set, found in results:
            if rule_set is not None:
                print(f"{rule_set.path}: valid, {sum(p.severity == 'warning' for p in found)} warning(s)")
        if errors:
            print(f"{errors} error(s) found; fix them before linting", file=sys.stderr)
    return 1 if errors or (args.strict and warnings) else 0


def summary(rule_set) -> str:
    book, mapping, policy = rule_set.latest
    billable = sum(r.billable for r in mapping.apis.values())
    versions = len(rule_set.pricing) + len(rule_set.mappings) + len(rule_set.policies)
    return (f"{rule_set.path}: valid — {len(book.categories)} categories, {billable} billable and "
            f"{len(mapping.apis) - billable} free APIs, {book.currency}, {book.tier_mode} tiers, "
            f"{versions} rule file version(s), {rule_set.fingerprint[:19]}")


def _usage_args(pairs) -> list:
    """`API=CALLS` or `API:OUTCOME=CALLS` words → usage items."""
    from .rating import UsageItem

    items = []
    for word in pairs:
        name, sep, calls = word.rpartition("=")
        api, _, outcome = name.partition(":")
        digits = calls.replace("_", "").replace(",", "")
        if not sep or not api or not digits.isdigit():
            raise RatecardError(f"bad usage {word!r}: expected API=CALLS or API:OUTCOME=CALLS with a whole "
                                "number of calls, e.g. SearchFaces=3000000")
        items.append(UsageItem(api, int(digits), outcome or None))
    return items


def _pack_args(pairs) -> list:
    from .rating import PackBalance

    packs = []
    for i, word in enumerate(pairs, 1):
        category, sep, units = word.partition("=")
        digits = units.replace("_", "").replace(",", "")
        if not sep or not category or not digits.isdigit():
            raise RatecardError(f"bad pack {word!r}: expected CATEGORY=UNITS, e.g. face-search=50000000")
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
    rows = [("Category", "Billable", "Free", "Tier", "Unit price", "Amount")]
    for line in bill.lines:
        rows.append((line.name, format_count(line.calls), format_count(line.free_calls), str(line.tier),
                     format_price(line.unit_price), format_amount(line.amount, cur)))
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
            f"{'Total'.rjust(label)}  {format_money(bill.total, cur, exact=False)}"]
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
    from .billrun import RunTotals, bill_accounts, invoice_filename
    from .usage import RejectsWriter, UsageReader

    rules = load_rules(args.rules or resources.default_rule_set())
    rejects = RejectsWriter(args.rejects) if args.rejects else None
    try:
        reader = UsageReader(rules, period=args.period, on_reject=rejects)
        for source in args.usage:
            reader.read(source, stdin=sys.stdin.buffer, format=args.input_format, kind=args.kind)
    finally:
        if rejects is not None:
            rejects.close()
    reconciliation = reader.reconciliation.check()
    if rejects is None:
        reader.raise_for_rejects()  # strict: list every bad row, bill nothing

    accounts = list(reader.accounts())
    out_dir = Path(args.out) if args.out else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    machine = args.format in ("json", "jsonl")
    report = sys.stdout if out_dir is not None or not machine else sys.stderr
    totals = RunTotals()
    progress = _Progress(len(accounts), not args.quiet)
    stream = None
    if out_dir is not None and args.format == "jsonl":
        stream = open(out_dir / "bills.jsonl", "w", encoding="utf-8", newline="\n")
    try:
        if out_dir is None and args.format == "json":
            print("[")
        for i, item in enumerate(bill_accounts(rules, accounts, args.format, jobs=args.jobs, count=len(accounts))):
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
    money = ", ".join(format_money(v, c, exact=False) for c, v in sorted(totals.by_currency.items())) or "nothing"
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ratecard", description="Data-driven billing for pay-as-you-go APIs.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("validate", help="check rule sets and report every problem")
    p.add_argument("rules", nargs="*", metavar="RULES_DIR", help="rule set folders (default: the shipped one)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("lint", help="warn about what is valid but suspicious, e.g. volume price cliffs")
    p.add_argument("rules", nargs="*", metavar="RULES_DIR", help="rule set folders (default: the shipped one)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--strict", action="store_true", help="exit 1 when there are warnings, too")
    p.set_defaults(func=cmd_lint)

    p = sub.add_parser("quote", help="price one month of usage for one account")
    p.add_argument("usage", nargs="*", metavar="API=CALLS",
                   help="calls per API, e.g. SearchFaces=3000000; API:OUTCOME=CALLS for an outcome or error code")
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
    p.add_argument("--jobs", type=int, metavar="N", help="worker processes (default: all cores for large runs)")
    p.add_argument("--quiet", action="store_true", help="no progress on standard error")
    p.set_defaults(func=cmd_bill)

    p = sub.add_parser("ratecard", help="render the public rate card from the rules")
    p.add_argument("--rules", metavar="DIR", help="rule set folder (default: the shipped one)")
    p.add_argument("--period", metavar="YYYY-MM", help="the rules in force in this period (default: the latest)")
    p.add_argument("--format", choices=("markdown", "html"), default="markdown")
    p.set_defaults(func=cmd_ratecard)
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
