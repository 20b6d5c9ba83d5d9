"""`ratecard validate` and `ratecard lint`: every problem of every rule set named."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .. import resources
from ..formatting import counted
from .common import check_rules


def _rule_sets(args_dirs) -> list[Path]:
    return [Path(d) for d in args_dirs] if args_dirs else resources.local_or_shipped_rule_sets()


def _check_rule_sets(args, *, with_lint: bool) -> int:
    """validate and lint: every problem of every rule set named, as text or JSON."""
    lint_report = None
    if with_lint:
        from ..lint import lint_report
    results = []
    acknowledged: dict[Path, int] = {}
    for path in _rule_sets(args.rules):
        rule_set, problems = check_rules(path)
        # Lint only what validates: its warnings assume a consistent rule set, and errors come first.
        if lint_report is not None and rule_set is not None:
            report = lint_report(rule_set)
            problems = problems + report.warnings
            acknowledged[path] = len(report.acknowledged)
        results.append((path, rule_set, problems))
    problems = [p for _, _, found in results for p in found]
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    if args.format == "json":
        out = {"valid": not errors}
        if with_lint:
            out["warnings"] = warnings
            out["acknowledged"] = sum(acknowledged.values())
        out["rule_sets"] = [{"path": str(path), "valid": rs is not None,
                             "fingerprint": rs.fingerprint if rs else None}
                            | ({"acknowledged": acknowledged.get(path, 0)} if with_lint else {})
                            for path, rs, _ in results]
        out["problems"] = [p.to_dict() for p in problems]
        print(json.dumps(out, indent=2))
    else:
        for p in problems:
            print(p)
        for path, rule_set, found in results:
            if rule_set is None:
                continue
            if with_lint:
                excused = acknowledged.get(path, 0)
                print(f"{rule_set.path}: valid, {counted(sum(p.severity == 'warning' for p in found), 'warning')}"
                      + (f" ({excused:,} acknowledged)" if excused else ""))
            else:
                print(summary(rule_set))
        if errors:
            print(f"{counted(errors, 'error')} found" + ("; fix them before linting" if with_lint else ""),
                  file=sys.stderr)
    return 1 if errors or (with_lint and args.strict and warnings) else 0


def cmd_validate(args) -> int:
    return _check_rule_sets(args, with_lint=False)


def cmd_lint(args) -> int:
    return _check_rule_sets(args, with_lint=True)


def summary(rule_set) -> str:
    book, mapping, policy = rule_set.latest
    billable = sum(r.billable for r in mapping.apis.values())
    versions = len(rule_set.pricing) + len(rule_set.mappings) + len(rule_set.policies)
    return (f"{rule_set.path}: valid — {counted(len(book.categories), 'category', 'categories')}, "
            f"{billable:,} billable and {counted(len(mapping.apis) - billable, 'free API')}, {book.currency}, "
            f"{book.tier_mode} tiers, {counted(versions, 'rule file version')}, {rule_set.fingerprint[:19]}")
