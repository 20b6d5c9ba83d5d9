"""`ratecard diff`: what a rules change does to revenue, per category and account."""

from __future__ import annotations

import json
import sys

from ..formatting import format_amount, format_count
from ..formatting import counted
from .common import check_rejects_path, chosen_rules


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
           f"{counted(result.bills, 'bill')} in {periods}, {cur}", ""]
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
    check_rejects_path(args)
    from ..diff import diff_rules
    from .usage import read_checked
    from ..discovery import choose, resolve
    from ..versions import is_git_spec, load_rule_spec

    new_spec = args.rules if args.rules and is_git_spec(args.rules) else str(chosen_rules(args).path)
    if args.base and not is_git_spec(args.base):
        args.base = str(resolve(args.base, "--base").path)
    # git:REV is a revision of the folder the other side names, or of the default rule set.
    folder = next((s for s in (new_spec, args.base) if not is_git_spec(s)), None) or str(choose(None).path)
    rules = load_rule_spec(new_spec, folder=folder)
    base = load_rule_spec(args.base, folder=folder)
    # Usage is read as a bill run with the new rules would read it; what the base rules do not know
    # is listed as not billed by them.
    reader, _, rejects = read_checked(args, rules)
    result = diff_rules(base, rules, reader.accounts(), alert_pct=args.alert_pct)
    if args.format == "json":
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    elif args.format == "html":
        from ..impact import impact_report, render_impact

        # One self-contained page (charts as inline SVG), the same `ratecard serve` gives at /v1/diff.
        sys.stdout.write(render_impact(impact_report(result, base, rules, period=args.period)))
        if rejects is not None:
            print(f"{counted(rejects.count, 'bad row')} written to {args.rejects}", file=sys.stderr)
    else:
        print("\n".join(diff_text(result)))
        if rejects is not None:
            print(f"{counted(rejects.count, 'bad row')} written to {args.rejects}")
    return 0
