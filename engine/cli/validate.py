"""`ratecard validate` and `ratecard lint`: every problem of every rule set named."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .. import resources
from .common import check_rules


def _rule_sets(args_dirs) -> list[Path]:
    return [Path(d) for d in args_dirs] if args_dirs else resources.local_or_shipped_rule_sets()


def _check_rule_sets(args, *, with_lint: bool) -> int:
    """validate and lint: every problem of every rule set named, as text or JSON."""
    lint = None
    if with_lint:
        from ..lint import lint
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
    versions = len(rule_set.pricing) + len(rule_set.mappings) + len(rule_set.policies) + len(rule_set.account_terms)
    models = sorted({c.model for c in book.categories.values()} - {"tiered"})
    return (f"{rule_set.path}: valid — {len(book.categories)} categories, {billable} billable and "
            f"{len(mapping.apis) - billable} free APIs, {book.currency}, {book.tier_mode} tiers"
            f"{''.join(f', {m}' for m in models)}, "
            f"{versions} rule file version(s), {rule_set.fingerprint[:19]}")
