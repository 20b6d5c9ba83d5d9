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
    out = [f"Quote for {bill.period} — rules {bill.rules_name} ({bill.rules_fingerprint[:19]})", ""]
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
