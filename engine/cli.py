"""The `ratecard` command: parse arguments, call the library, format the result. Nothing else."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import resources
from .errors import RatecardError
from .rules import check_rules


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


def summary(rule_set) -> str:
    book, mapping, policy = rule_set.latest
    billable = sum(r.billable for r in mapping.apis.values())
    versions = len(rule_set.pricing) + len(rule_set.mappings) + len(rule_set.policies)
    return (f"{rule_set.path}: valid — {len(book.categories)} categories, {billable} billable and "
            f"{len(mapping.apis) - billable} free APIs, {book.currency}, {book.tier_mode} tiers, "
            f"{versions} rule file version(s), {rule_set.fingerprint[:19]}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ratecard", description="Data-driven billing for pay-as-you-go APIs.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("validate", help="check rule sets and report every problem")
    p.add_argument("rules", nargs="*", metavar="RULES_DIR", help="rule set folders (default: the shipped one)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_validate)
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
