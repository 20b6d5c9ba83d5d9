"""`ratecard init`: scaffold an analysts' rules repository (engine/scaffold.py)."""

from __future__ import annotations


def cmd_init(args) -> int:
    from ..scaffold import init, update_schemas

    if args.schemas:
        changed = update_schemas(args.folder)
        print(f"updated {', '.join(changed)}" if changed else "the schema copy is up to date")
        return 0
    done = init(args.folder, start_from=args.start_from, hook_repo=args.hook_repo, hook_rev=args.hook_rev)
    for relative in done.written:
        print(f"wrote {relative}")
    for relative in done.kept:
        print(f"kept {relative} (it exists)")
    print(f"rule set rules/{done.rule_set} is ready in {done.folder}; next: `git init`, `pre-commit install`, "
          "then edit, `ratecard validate`, commit")
    return 0
