"""`ratecard completion bash|zsh|tcsh`: a shell completion script generated from the argument parser
by shtab, so it never lags behind the commands; rule set names are completed by asking
`ratecard completion --rule-sets`, which lists the names `--rules` accepts here."""

from __future__ import annotations

import argparse

from ..errors import RatecardError

SHELLS = ("bash", "zsh", "tcsh")
RULE_SETS = "ratecard completion --rule-sets 2>/dev/null"

# bash: the rule set names known here and folders, as --rules takes either.
_BASH_RULES = f"""
_ratecard_rules() {{
  compgen -W "$({RULE_SETS})" -- "$1"
  compgen -d -- "$1"
}}
"""


# What an option's value is, told by its metavar: the parser names every value, so completion needs
# no second list of options to keep in step.
_BY_METAVAR = {"FILE": "file", "PATH": "file", "DIR": "dir", "RULES_DIR": "dir", "RULES": "rules", "NEW": "rules",
               "OLD": "rules"}


def _prepare(parser: argparse.ArgumentParser) -> None:
    import shtab

    kinds = {"file": shtab.FILE, "dir": shtab.DIRECTORY,
             "rules": {"bash": "_ratecard_rules", "zsh": shtab.cmd(RULE_SETS)["zsh"],
                       "tcsh": shtab.cmd(RULE_SETS)["tcsh"], "preamble": {"bash": _BASH_RULES}}}
    for action in parser._actions:
        what = _BY_METAVAR.get(action.metavar) if isinstance(action.metavar, str) else None
        if what is not None:
            action.complete = kinds[what]  # type: ignore[attr-defined]  # argcomplete reads this attribute
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _prepare(sub)


def script(shell: str) -> str:
    """The completion script for one shell."""
    try:
        import shtab
    except ImportError:  # pragma: no cover - shtab is a dependency; a broken install says so
        raise RatecardError("shell completion needs shtab: pip install shtab") from None
    from .parser import build_parser

    if shell not in SHELLS:
        raise RatecardError(f"no completion for shell {shell!r}; expected one of {', '.join(SHELLS)}")
    parser = build_parser()
    _prepare(parser)
    return shtab.complete(parser, shell=shell)


def cmd_completion(args) -> int:
    if args.rule_sets:
        from ..discovery import known_names, local_root

        for name in known_names(local_root()):
            print(name)
        return 0
    if args.shell is None:
        raise RatecardError(f"name a shell: ratecard completion {'|'.join(SHELLS)}")
    print(script(args.shell), end="")
    return 0
