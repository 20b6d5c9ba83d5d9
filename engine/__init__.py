"""ratecard: a data-driven billing engine. Rules + usage in, exact bills out.

    import ratecard
    rules = ratecard.load_rules("rules/<product>")        # validate and compile once ...
    bill = ratecard.rate(rules, {"<Api>": 1200}, period="2020-09")   # ... rate many times
    bill.total          # Decimal, rounded as the rules' settlement policy says
    bill.to_dict()      # JSON-ready; described by schemas/bill.schema.json

Usage is a mapping of API name → calls (outcome unknown) or an iterable of `UsageItem`
(API, calls, outcome). Every error a caller can act on is a `RatecardError`.

Only the errors are imported eagerly: the rest loads on first use, so that `import ratecard` stays
cheap for tools that only rate (the rule loader pulls in YAML and JSON Schema).
"""

from __future__ import annotations

__version__ = "0.2.0"

import importlib
from typing import TYPE_CHECKING

from .errors import (Location, NoRulesInForce, PeriodError, Problem, ProblemsError, RatecardError,
                     RatingError, RuleSetInvalid, UnknownApi, UsageInvalid)

if TYPE_CHECKING:
    from .bill import ApiUsage, Bill, BillLine, PackUse, TierCharge, UnratedUsage
    from .model import RuleSet
    from .rating import SUCCESS, PackBalance, Tariff, UsageItem, rate, tariff
    from .diff import diff_rules
    from .ledger import Ledger
    from .render import render_invoice, render_rate_card
    from .rules import check_rules, load_rules
    from .usage import AccountUsage, UsageReader, read_usage

_LAZY = {
    "load_rules": "rules", "check_rules": "rules",
    "rate": "rating", "tariff": "rating", "Tariff": "rating", "UsageItem": "rating",
    "PackBalance": "rating", "SUCCESS": "rating",
    "Bill": "bill", "BillLine": "bill", "ApiUsage": "bill", "TierCharge": "bill", "PackUse": "bill",
    "UnratedUsage": "bill",
    "RuleSet": "model",
    "UsageReader": "usage", "AccountUsage": "usage", "read_usage": "usage",
    "render_invoice": "render", "render_rate_card": "render",
    "diff_rules": "diff",
    "Ledger": "ledger",
}
# Submodules `import ratecard` used to load eagerly, still reachable as attributes.
_SUBMODULES = frozenset({"model", "rules", "rating", "bill"})

__all__ = [
    "ApiUsage", "Bill", "BillLine", "Location", "NoRulesInForce", "PackBalance", "PackUse", "PeriodError",
    "Problem", "ProblemsError", "RatecardError", "RatingError", "RuleSet", "RuleSetInvalid", "SUCCESS",
    "Tariff", "TierCharge", "UnknownApi", "UnratedUsage", "UsageInvalid", "UsageItem", "check_rules",
    "load_rules", "rate", "tariff", "UsageReader", "AccountUsage", "read_usage", "render_invoice",
    "render_rate_card", "diff_rules", "Ledger",
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f".{module}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
