"""Rule sets for the price model and adjustment tests: one category (or a few) written inline,
each reached by one billable API named after it (`tiered-thing` → `TieredThing`)."""

from __future__ import annotations

import textwrap
from decimal import Decimal as D
from pathlib import Path

import ratecard
from conftest import write_rule_set
from ratecard.rating import UsageItem

PERIOD = "2024-01"

SETTLEMENT = """\
kind: settlement
effective_from: 2024-01-01
billing_cycle: calendar-month
time_zone: UTC
bill_issue_day: 1
deduction_window: { first_day: 1, last_day: 3 }
rounding: { quantum: 0.01, mode: half-up, apply: %s }
arrears: { action: suspend-service, resume_when: balance-not-negative }
"""


def api_of(category: str) -> str:
    return "".join(word.capitalize() for word in category.split("-"))


def pricing(categories: str, top: str = "", mode: str = "volume") -> str:
    return (f"kind: pricing\neffective_from: 2024-01-01\ncurrency: USD\nunit: call\ntier_mode: {mode}\n"
            + textwrap.dedent(top) + "categories:\n" + textwrap.indent(textwrap.dedent(categories), "  "))


def mapping(ids) -> str:
    lines = "".join(f"  {cid}: {{ billable: [{api_of(cid)}] }}\n" for cid in ids)
    return ("kind: api-mapping\neffective_from: 2024-01-01\napi_version: v1\n"
            "billable_outcomes: { success: true, error_codes: [] }\nunknown_outcome: billable\n"
            "unknown_api: error\ncategories:\n" + lines)


def category_ids(categories: str):
    return [line.strip().rstrip(":") for line in textwrap.dedent(categories).splitlines()
            if line and not line.startswith(" ") and line.strip().endswith(":")]


def rules(tmp_path: Path, categories: str, top: str = "", *, mode: str = "volume", apply: str = "per-bill",
          **extra) -> ratecard.RuleSet:
    folder = write_rule_set(tmp_path / "rs", pricing=pricing(categories, top, mode),
                            apis=mapping(category_ids(categories)), settlement=SETTLEMENT % apply, **extra)
    return ratecard.load_rules(folder)


def bill(rule_set, usage, *, account: str = "", period: str = PERIOD):
    """Rate `usage`: category → quantity, or category → (transactions, amount), or a list of such pairs."""
    items = []
    for cid, value in (usage.items() if isinstance(usage, dict) else usage):
        if isinstance(value, tuple):
            items.append(UsageItem(api_of(cid), value[0], None, D(value[1])))
        else:
            items.append(UsageItem(api_of(cid), value))
    return ratecard.rate(rule_set, items, period, account=account)


def amount_of(rule_set, cid: str, quantity) -> D:
    (line,) = bill(rule_set, {cid: quantity}).lines
    return line.amount
