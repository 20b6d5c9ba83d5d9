"""A rule set's fingerprint: a hash of what its documents say, not how they are written."""

from __future__ import annotations

import json
from decimal import Decimal

from .model import digest
from .yamlsource import Document


def fingerprint(documents) -> str:
    """A hash of what the rules say: comments, layout, key order and quoting style do not change it.
    A number's digits do (0.50 vs 0.5): bills show prices as written, so two rule sets with one
    fingerprint always give byte-identical bills."""
    return digest(canonical(d) for d in documents)


def canonical(document: Document) -> str:
    """One document's meaning as text: what `fingerprint` hashes."""

    def canon(value):
        if isinstance(value, Decimal):
            return {"$decimal": str(value)}  # as written, trailing zeros included
        if isinstance(value, dict):
            return {k: canon(v) for k, v in value.items()}
        if isinstance(value, list):
            return [canon(v) for v in value]
        return value

    return json.dumps(canon(document.data), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
