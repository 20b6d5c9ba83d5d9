"""`--help` answers the question: every command, option and argument says what it is, and every
option with a fixed set of values (formats, engines, dialects) names each value in its help."""
import argparse
import re

from ratecard.cli import build_parser


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command path, action) for every action of every (sub)command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helped = {choice.dest for choice in action._choices_actions if choice.help}
            for name, sub in action.choices.items():
                yield path + (name,), ("command", name in helped)
                yield from walk(sub, path + (name,))
        else:
            yield path, action


def options():
    return [(path, a) for path, a in walk(build_parser()) if isinstance(a, argparse.Action)
            and not isinstance(a, (argparse._HelpAction, argparse._VersionAction))]


def name(path, action) -> str:
    return " ".join(("ratecard",) + path + (action.option_strings[0] if action.option_strings else action.dest,))


def test_every_command_has_help():
    missing = [" ".join(path) for path, item in walk(build_parser()) if isinstance(item, tuple) and not item[1]]
    assert missing == []


def test_every_option_and_argument_has_help():
    missing = [name(path, a) for path, a in options() if not a.help or a.help == argparse.SUPPRESS]
    assert missing == []


def test_every_choice_is_named_in_its_help():
    unnamed = [f"{name(path, a)}: {choice}" for path, a in options() if a.choices
               for choice in a.choices if not re.search(rf"\b{re.escape(str(choice))}\b", a.help or "")]
    assert unnamed == []


def test_the_walk_sees_nested_commands_and_their_options():
    seen = {name(path, a) for path, a in options()}
    assert {"ratecard bill --format", "ratecard account create --currency", "ratecard invoice show --paper",
            "ratecard ledger check --db"} <= seen
    assert len(seen) > 100
