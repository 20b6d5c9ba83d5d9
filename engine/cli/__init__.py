"""The `ratecard` command: parse arguments, call the library, format the result. Nothing else.

One module per command or group of commands (`validate`, `quote`, `bill`, `diff`, `account`,
`settle`, `statement`); `parser` builds the argument parser and names the function each command
runs. Every module imports the library lazily, inside the command, so that `ratecard status`
(asked by a gateway many times a second) loads neither YAML, JSON Schema nor the templates.
"""

from __future__ import annotations

import sys

from ..errors import RatecardError
from .exits import INTERRUPTED
from .parser import build_parser

__all__ = ["build_parser", "main"]


def _is_text(word: str) -> bool:
    try:
        word.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    for word in argv:
        if isinstance(word, str) and not _is_text(word):
            # Python gives bytes that are not UTF-8 as lone surrogates, which no output can print.
            shown = word.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            print(f"ratecard: error: the argument '{shown}' is not UTF-8 text; write it in UTF-8", file=sys.stderr)
            return 2
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) or a command-line mistake (2): a status, not an exit
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return args.func(args)
    except RatecardError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return exc.exit_status
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return INTERRUPTED
    except OSError as exc:
        # A file or folder the command was told to use cannot be read or written (missing folder,
        # no permission, disk full): the user's to fix, so said plainly, without a traceback.
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"{where}{exc.strerror or exc}", file=sys.stderr)
        return 1
