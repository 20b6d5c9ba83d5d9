"""The reading path for usage the aggregation query does not read (issue 12): transaction amounts
(an `amount` column, for categories priced as a percentage) and decimal quantities (for
categories whose unit has decimal places).

It is taken only when the rules need it — some price book version has a percentage category or a
category with a decimal unit — so the shipped rule sets, and any rule set of whole-unit prices,
keep the compiled query. It reads every file of the run row by row with the diagnosing pass's
checks (`checks.RowChecker`, same order and reasons), then the two values of `ratecard.usage_values`,
and counts every row into the same reconciliation. CSV and JSON Lines only.

A row with an amount stays its own usage item (per-transaction bounds need each transaction's
amount, see `ratecard.price.percentage`); rows without one add up per API and outcome as always.
"""

from __future__ import annotations

from ..errors import RatecardError
from ..rating import UsageItem
from .. import usage_values
from .checks import BAD, OK, OUT, RowChecker
from .files import AGGREGATED, CALLS, Bad
from .rows import records
from .records import AccountUsage, Rejected


def needed(rules) -> bool:
    return any(c.model == "percentage" or c.precision for book in rules.pricing for c in book.categories.values())


def run(rules, period, sources):
    """(counts, rejected rows in file and row order, {(account, period): {item key: calls}})."""
    counts = dict.fromkeys(("rows_read", "rows_accepted", "rows_rejected", "rows_duplicate", "rows_out_of_period",
                            "calls_read", "calls_accepted", "calls_rejected", "calls_duplicate",
                            "calls_out_of_period"), 0)
    checker = RowChecker(rules, period)
    seen: set[str] = set()
    groups: dict[tuple, dict[tuple, object]] = {}
    rejected: list[Rejected] = []
    for index, source in enumerate(sources):
        if source.format == "parquet":
            raise RatecardError(f"{source.name}: these rules price transaction amounts or decimal quantities, "
                                "which are read from CSV or JSON Lines usage only; convert the Parquet file")
        for line, raw, values in records(source):
            counts["rows_read"] += 1
            decimal = None
            if source.kind == AGGREGATED and isinstance(values, dict):
                decimal = usage_values.decimal_calls(values.get("calls"))
                if decimal is not None:
                    values = {**values, "calls": "0"}  # checked below, against its category's unit
            status, request_id, account, row_period, api, outcome, calls, bad = checker.check(
                source.kind, values, source.decimal_comma)
            if status == OK and source.kind == CALLS and request_id in seen:
                counts["rows_duplicate"] += 1
                counts["calls_read"] += 1
                counts["calls_duplicate"] += 1
                continue
            amount = None
            if status != BAD:
                try:
                    if decimal is not None:
                        calls = decimal if status == OUT else usage_values.check_quantity(
                            checker._tariff(row_period), api, decimal, Bad)
                    amount = usage_values.amount(values, Bad)
                except Bad as exc:
                    status, bad = BAD, exc
            if status == BAD:
                calls = 1 if source.kind == CALLS else calls
                counts["rows_rejected"] += 1
                counts["calls_read"] += calls
                counts["calls_rejected"] += calls
                rejected.append(Rejected(source.name, int(line), bad.reason, raw or "", bad.code, account or ""))
                continue
            if request_id is not None:
                seen.add(request_id)
            counts["calls_read"] += calls
            if status == OUT:
                counts["rows_out_of_period"] += 1
                counts["calls_out_of_period"] += calls
                continue
            counts["rows_accepted"] += 1
            counts["calls_accepted"] += calls
            key = (api, outcome) + ((index, line, amount) if amount is not None else ())
            items = groups.setdefault((account, row_period), {})
            items[key] = items.get(key, 0) + calls
    return counts, rejected, groups


def accounts(groups):
    for (account, period), items in sorted(groups.items()):
        yield AccountUsage(account, period, tuple(
            UsageItem(key[0], calls, key[1], key[4] if len(key) > 2 else None)
            for key, calls in sorted(items.items(), key=lambda kv: (kv[0][0], kv[0][1] or "", kv[0][2:]))))
