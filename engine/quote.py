"""A quote: one account's month priced, as a JSON document. One function for every surface.

`ratecard quote --format json` and ``POST /v1/quote`` of `ratecard serve` both print
`dumps(quote_document(...))`, so the two answers are the same bytes for the same question.
"""

from __future__ import annotations

import json
from typing import Iterable

from .errors import RatecardError
from .model import RuleSet


def quote_document(rules: RuleSet, usage, period: str, *, packs: Iterable = (), suspended: bool = False,
                   explain: bool = False) -> dict:
    """The bill of `usage` for `period` as its JSON dict (schemas/bill.schema.json), with the
    explanation's sentences under ``explanation`` when `explain`. `packs` are what-if
    `PackBalance`s; one naming a category the price book does not have is refused."""
    from .explain import explain as explain_bill
    from .rating import rate, tariff

    packs = tuple(packs)
    t = tariff(rules, period)
    known = [c.id for c in t.categories]
    unknown = sorted({p.category for p in packs} - set(known))
    if unknown:
        raise RatecardError(f"a pack names unknown category {', '.join(unknown)}; expected one of: {', '.join(known)}")
    bill = rate(rules, usage, period, packs=packs, suspended=suspended)
    out = bill.to_dict()
    if explain:
        out["explanation"] = explain_bill(t, bill)
    return out


def dumps(document) -> str:
    """A JSON document as ratecard prints it: indented, UTF-8 text as is, one final newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
