"""Safe YAML loading that keeps source locations and reads scalars as YAML 1.2 (core schema) does.

YAML 1.2 is what editors read (yaml-language-server, behind VS Code's YAML support): a value the
editor checks against the schema is the value ratecard checks, so the two agree. What a rule file's
scalars become (documented for analysts in docs/rules.md):

* ``true``/``false`` are booleans. ``yes``/``no``/``on``/``off`` stay text, so a schema that
  wants a boolean reports them instead of silently reading ``no`` as false.
* ``1000000`` is an integer, and so is ``0250`` (two hundred and fifty: YAML 1.2 has no octal
  without ``0o``); ``0o17`` and ``0x1F`` are octal and hexadecimal integers.
* ``1_000_000`` and ``3,000,000`` are text (in YAML 1.2 as in the editor), reported where a number
  is expected with the hint to write ``1000000``.
* ``0.0025``, ``1.5e-4`` and ``1e6`` are exact ``Decimal`` numbers built from their source text
  (never a binary float). ``.inf``/``.nan`` are numbers in YAML 1.2 but not amounts: reported.
* Dates such as ``2020-09-15`` stay text; the schema checks their form.
* A duplicate key in a mapping is an error pointing at the second occurrence.
* Quoted scalars are always text: a price written ``"0.0025"`` is reported, not guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from .errors import Location, Problem

Path = tuple  # of str | int


class _RuleLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core schema implicit typing (see module docstring)."""


_RuleLoader.yaml_implicit_resolvers = {}
_RuleLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_RuleLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
_RuleLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."),
)
_RuleLoader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)

MAX_DIGITS = 30  # far beyond any price, count or bound; keeps arithmetic and int() sane
MAX_NODES = 100_000  # values in one document, aliases expanded: stops "billion laughs"


class _TooLarge(Exception):
    pass


_STR, _INT, _FLOAT, _BOOL, _NULL, _SEQ, _MAP = (
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:map",
)


@dataclass
class SourceMap:
    """Where each data path of a document was written: its value node and, for mapping
    entries, its key node. Used to point schema and semantic problems at the source."""

    file: str
    values: dict = field(default_factory=dict)
    keys: dict = field(default_factory=dict)
    nodes: int = 0  # values built so far, aliases counted each time they are expanded
    text: str = ""  # the document as written, for what YAML drops: comments (`ratecard.lint` reads them)

    def locate(self, path: Path, *, key: bool = False) -> Location:
        path = tuple(path)
        probe = path
        while True:
            table = self.keys if key and probe in self.keys else self.values
            if probe in table:
                line, col = table[probe]
                return Location(self.file, line, col, format_path(path))
            if not probe:
                return Location(self.file, 1, 1, format_path(path))
            probe = probe[:-1]
            key = True  # a missing child is best shown at its parent's key


def format_path(path: Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


@dataclass
class Document:
    file: str
    # What the YAML holds: mappings, lists, str, int, Decimal, bool, None in any shape. The schema
    # check establishes the shape; the semantic checks also read documents that failed it (guarded,
    # see rules._UNREADABLE), so no narrower static type is true of it.
    data: Any
    source: SourceMap
    text: str


def _mark(node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _scalar(node: ScalarNode, file: str, problems: list[Problem], path: Path):
    tag, value = node.tag, node.value
    try:
        if tag == _STR:
            return value
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return value.lower() == "true"
        if tag == _INT:
            base = {"0o": 8, "0x": 16}.get(value[:2], 10)
            digits = value[2:] if base != 10 else value
            if len(digits.lstrip("+-")) > MAX_DIGITS:
                raise _TooLarge
            return int(digits, base)
        if tag == _FLOAT:
            if "n" in value.lower():  # .inf, .nan: numbers in YAML 1.2, never an amount or a count
                problems.append(Problem(Location(file, *_mark(node), format_path(path)),
                                        f"{value!r} is not a finite number; expected a plain number such as "
                                        "0.0025", code="number-range"))
                return value
            number = Decimal(value)
            if number and (abs(number.adjusted()) > MAX_DIGITS or len(number.as_tuple().digits) > MAX_DIGITS):
                raise _TooLarge
            return number
    except _TooLarge:
        problems.append(Problem(Location(file, *_mark(node), format_path(path)),
                                f"{value!r} is out of range: a rule number may have at most {MAX_DIGITS} digits "
                                f"and an exponent of at most {MAX_DIGITS}", code="number-range"))
        return value
    except (ValueError, InvalidOperation):
        problems.append(Problem(Location(file, *_mark(node), format_path(path)),
                                f"{value!r} is not a valid {tag.rsplit(':', 1)[-1]}"))
        return value
    problems.append(Problem(Location(file, *_mark(node), format_path(path)),
                            f"unsupported YAML tag {tag}; write a plain value"))
    return value


def _build(node, file: str, path: Path, source: SourceMap, problems: list[Problem], depth=0):
    source.nodes += 1
    if source.nodes > MAX_NODES:
        if source.nodes == MAX_NODES + 1:
            problems.append(Problem(Location(file, *_mark(node), format_path(path)),
                                    f"the document expands to more than {MAX_NODES:,} values (through aliases?); "
                                    "expected a rule file of ordinary size", code="too-large"))
        return None
    source.values[path] = _mark(node)
    if depth > 64:
        problems.append(Problem(Location(file, *_mark(node), format_path(path)), "nesting is too deep"))
        return None
    if isinstance(node, ScalarNode):
        return _scalar(node, file, problems, path)
    if node.tag not in (_SEQ, _MAP):
        # `!foo [..]`, `!!set {..}`, `!!omap [..]`: a tag that would change what the list or
        # mapping means is refused, as it is on a plain value; `!!seq`/`!!map` change nothing.
        problems.append(Problem(Location(file, *_mark(node), format_path(path)),
                                f"unsupported YAML tag {node.tag}; write a plain list or mapping",
                                code="yaml-tag"))
    if isinstance(node, SequenceNode):
        return [_build(item, file, path + (i,), source, problems, depth + 1)
                for i, item in enumerate(node.value)]
    if isinstance(node, MappingNode):
        out: dict = {}
        first_seen: dict = {}
        for knode, vnode in node.value:
            if not isinstance(knode, ScalarNode) or knode.tag == "tag:yaml.org,2002:merge":
                problems.append(Problem(Location(file, *_mark(knode), format_path(path)),
                                        "keys must be plain names (no merge keys `<<`, lists or mappings as keys)"))
                continue
            key = knode.value
            kpath = path + (key,)
            if key in out:
                line, _ = first_seen[key]
                problems.append(Problem(
                    Location(file, *_mark(knode), format_path(kpath)),
                    f"duplicate key {key!r} (first written at line {line}); "
                    "each key may appear once: merge the two entries or rename one",
                    code="duplicate-key"))
                continue
            first_seen[key] = _mark(knode)
            source.keys[kpath] = _mark(knode)
            out[key] = _build(vnode, file, kpath, source, problems, depth + 1)
        return out
    problems.append(Problem(Location(file, *_mark(node), format_path(path)), "unsupported YAML node"))
    return None


def _code(character) -> int:
    return ord(character) if isinstance(character, str) else int(character)


def parse(text: str, file: str) -> tuple[Document | None, list[Problem]]:
    """Parse one YAML document. Returns the document (None if unusable) and its problems."""
    problems: list[Problem] = []
    try:
        nodes = list(yaml.compose_all(text, Loader=_RuleLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = " ".join(x for x in (exc.context, exc.problem) if x)
        return None, [Problem(Location(file, line, col), f"YAML syntax error: {what}", code="yaml-syntax")]
    except yaml.reader.ReaderError as exc:
        # A character YAML refuses (a NUL, another control character): located by its position.
        before = text[: exc.position]
        line, col = before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
        return None, [Problem(Location(file, line, col),
                              f"the character U+{_code(exc.character):04X} is not allowed in a YAML file; remove it",
                              code="yaml-syntax")]
    except yaml.YAMLError as exc:
        return None, [Problem(Location(file), f"YAML error: {exc}", code="yaml-syntax")]
    except RecursionError:
        return None, [Problem(Location(file), "nesting is too deep; expected a rule file of a few levels",
                              code="too-deep")]
    nodes = [n for n in nodes if n is not None]
    if not nodes:
        return None, [Problem(Location(file), "the file is empty; expected a rule document", code="empty")]
    if len(nodes) > 1:
        problems.append(Problem(Location(file, *_mark(nodes[1])),
                                "more than one YAML document (`---`); expected one per file"))
    source = SourceMap(file, text=text)
    data = _build(nodes[0], file, (), source, problems)
    return Document(file, data, source, text), problems
