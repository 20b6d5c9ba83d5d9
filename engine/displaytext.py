"""Which characters a name shown on a document may hold: one rule for rule files, accounts and output.

A name, unit or reason is printed into text invoices and statements, Markdown and HTML. A control
character there is never meant: a line break or carriage return starts a forged row ("top-up
1,000,000.00"), an ANSI escape (ESC) recolours or moves a terminal's cursor, and the bidirectional
controls (U+202A–U+202E, U+2066–U+2069) and invisible marks make a text read differently from its
bytes. Such text is refused where it enters (rule files, `account create`), and made visible
(U+FFFD) where it is printed, for what was recorded before this rule existed.
"""

from __future__ import annotations

import re
import unicodedata

# C0 and C1 controls (tab and line feed included), zero-width and direction marks, line and paragraph
# separators, bidi embeddings, overrides and isolates, the Arabic letter mark, the byte-order mark.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
# What output may still hold: the line breaks and tabs a template's own layout puts there.
_UNSAFE_IN_OUTPUT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")


def unsafe_character(text: str, *, multiline: bool = False) -> str:
    """A description of the first character `text` may not hold ("" if none), e.g.
    "U+000A (LINE FEED)". `multiline` allows line feeds and tabs (a description written over lines)."""
    for match in (_UNSAFE.finditer(text) if isinstance(text, str) else ()):
        char = match.group()
        if multiline and char in "\n\t":
            continue
        return f"U+{ord(char):04X} ({unicodedata.name(char, _control_name(char))})"
    return ""


def _control_name(char: str) -> str:
    return {"\n": "LINE FEED", "\r": "CARRIAGE RETURN", "\t": "TAB", "\x00": "NUL",
            "\x1b": "ESCAPE, which starts terminal escape sequences"}.get(char, "a control character")


def visible(text: str, *, keep_lines: bool = False) -> str:
    """`text` with every character `unsafe_character` refuses shown as U+FFFD; `keep_lines` keeps
    line feeds and tabs (a template's rendered layout)."""
    pattern = _UNSAFE_IN_OUTPUT if keep_lines else _UNSAFE
    return pattern.sub("\ufffd", text) if pattern.search(text) else text
