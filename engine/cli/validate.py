"""`ratecard validate` and `ratecard lint`: every problem of every rule set found."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Callable

from ..formatting import counted
from .common import check_rules

if TYPE_CHECKING:
    from ..lint import LintReport
    from ..model import RuleSet


def _targets(args):
    """(folder to check, the name to show it by or None, discovery problems, how they were found, cleanup)."""
    specs = list(args.rules or ()) + list(args.rule_dirs or ())
    if args.staged:
        from ..gitindex import staged_rules

        staged = staged_rules(specs)
        return ([(folder, shown) for folder, shown in staged.sets], staged.problems,
                "staged in the git index", staged.__exit__)
    from ..discovery import select

    selection = select(specs)
    return [(path, None) for path in selection.sets], list(selection.problems), selection.source, None


def _check_rule_sets(args, *, with_lint: bool) -> int:
    """validate and lint: every problem of every rule set, as text or JSON."""
    from ..scaffold import schema_drift

    lint_report: Callable[[RuleSet], LintReport] | None = None
    if with_lint:
        from ..lint import lint_report
    targets, problems, source, cleanup = _targets(args)
    results = []
    acknowledged: dict[str, int] = {}
    try:
        for path, shown in targets:
            rule_set, found = check_rules(path, shown_as=shown)
            # Lint only what validates: its warnings assume a consistent rule set, and errors come first.
            if lint_report is not None and rule_set is not None:
                report = lint_report(rule_set)
                found = found + report.warnings
                acknowledged[shown or str(path)] = len(report.acknowledged)
            found = found + schema_drift(path, shown)
            results.append((shown or str(path), rule_set, found))
    finally:
        if cleanup is not None:
            cleanup()
    problems = sorted(problems) + [p for _, _, found in results for p in found]
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    if args.format == "json":
        out: dict = {"valid": not errors}
        if with_lint:
            out["warnings"] = warnings
            out["acknowledged"] = sum(acknowledged.values())
        out["checked"] = source
        out["rule_sets"] = [{"path": path, "valid": rs is not None, "fingerprint": rs.fingerprint if rs else None}
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
        if source != "named":
            print(f"checked {counted(len(results), 'rule set')}: {source}", file=sys.stderr)
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
    versions = len(rule_set.pricing) + len(rule_set.mappings) + len(rule_set.policies) + len(rule_set.account_terms)
    models = sorted({c.model for c in book.categories.values()} - {"tiered"})
    return (f"{rule_set.path}: valid — {counted(len(book.categories), 'category', 'categories')}, "
            f"{billable:,} billable and {counted(len(mapping.apis) - billable, 'free API')}, {book.currency}, "
            f"{book.tier_mode} tiers{''.join(f', {m}' for m in models)}, "
            f"{counted(versions, 'rule file version')}, {rule_set.fingerprint[:19]}")
