"""The rating core: rules + one account's usage for one period → Bill. Pure: no I/O, no clock.

Everything that can be worked out from the rules alone (which category an API counts in, the
tier bounds and prices, the rounding) is compiled once per rule version and cached on the RuleSet,
so rating many account-months pays only for the arithmetic.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Iterable, Mapping

from .bill import ApiUsage, Bill, BillLine, PackUse, TierCharge, UnratedUsage
from .errors import RatingError, UnknownApi
from .model import ROUNDING_MODES, RuleSet
from .periods import parse_period

SUCCESS = "success"  # the outcome of a successful call; any other outcome is an error code

# Exact arithmetic: a result that would need rounding raises instead of silently losing digits.
_EXACT = decimal.Context(prec=200, traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow])
_ROUNDING = decimal.Context(prec=200, traps=[decimal.InvalidOperation, decimal.Overflow])
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class UsageItem:
    """Calls of one API with one outcome (None when the usage does not say)."""

    api: str
    calls: int
    outcome: str | None = None


@dataclass(frozen=True, slots=True)
class PackBalance:
    """A prepaid resource pack an account holds: units left and when it expires (exclusive)."""

    pack_id: str
    category: str
    units_left: int
    expires: date | None = None


class _Category:
    __slots__ = ("id", "name", "mode", "tiers", "free_quota")

    def __init__(self, category):
        self.id = category.id
        self.name = category.name
        self.mode = category.tier_mode
        self.tiers = tuple((t.up_to, t.unit_price) for t in category.tiers)
        self.free_quota = category.free_quota


class Tariff:
    """The rules in force for one period, compiled for rating."""

    __slots__ = ("book", "mapping", "policy", "categories", "index", "success_billable", "error_codes",
                 "unknown_billable", "unknown_api", "quantum", "rounding_mode", "per_line", "rounding",
                 "versions", "rules_name", "fingerprint")

    def __init__(self, rules: RuleSet, book, mapping, policy):
        self.book, self.mapping, self.policy = book, mapping, policy
        self.categories = [_Category(c) for c in book.categories.values()]
        position = {c.id: i for i, c in enumerate(self.categories)}
        self.index = {rule.api: (position[rule.category], rule.billable) for rule in mapping.apis.values()}
        self.success_billable = mapping.success_billable
        self.error_codes = mapping.billable_error_codes
        self.unknown_billable = mapping.unknown_outcome == "billable"
        self.unknown_api = mapping.unknown_api
        r = policy.rounding
        self.quantum, self.rounding_mode = r.quantum, ROUNDING_MODES[r.mode]
        self.per_line = r.apply == "per-line"
        self.rounding = {"quantum": format(r.quantum, "f"), "mode": r.mode, "apply": r.apply}
        self.versions = {"pricing": book.effective_from.isoformat(),
                         "api-mapping": mapping.effective_from.isoformat(),
                         "settlement": policy.effective_from.isoformat()}
        self.rules_name, self.fingerprint = rules.name, rules.fingerprint

    def round(self, amount: Decimal) -> Decimal:
        return amount.quantize(self.quantum, rounding=self.rounding_mode, context=_ROUNDING)

    def billable(self, outcome: str | None) -> bool:
        if outcome is None or outcome == "":
            return self.unknown_billable
        if outcome == SUCCESS:
            return self.success_billable
        return outcome in self.error_codes


def tariff(rules: RuleSet, period: str) -> Tariff:
    """The compiled rules for `period`, cached on the rule set."""
    cache = rules._compiled
    found = cache.get(period)
    if found is None:
        parse_period(period)
        book, mapping, policy = rules.in_force(period)
        key = (id(book), id(mapping), id(policy))
        found = cache.get(key)
        if found is None:
            found = cache[key] = Tariff(rules, book, mapping, policy)
        cache[period] = found
    return found


def _items(usage) -> Iterable[tuple[str, str | None, int]]:
    if isinstance(usage, Mapping):
        return ((api, None, calls) for api, calls in usage.items())
    return ((u.api, u.outcome, u.calls) if isinstance(u, UsageItem) else (u[0], u[2] if len(u) > 2 else None, u[1])
            for u in usage)


def rate(rules: RuleSet, usage, period: str, *, account: str = "", packs: Iterable[PackBalance] = (),
         suspended: bool = False) -> Bill:
    """Price one account's usage for one period.

    `usage` is a mapping of API name → calls (outcome unknown), or an iterable of `UsageItem`
    (or ``(api, calls[, outcome])`` tuples). `packs` are the account's resource packs valid in the
    period; they are used soonest-expiring first. A `suspended` account gets no free quota unless the
    price book grants it while suspended.
    """
    t = tariff(rules, period)
    index = t.index
    per_category: dict[int, dict[str, list]] = {}
    unknown: dict[str, int] = {}
    for api, outcome, calls in _items(usage):
        if type(calls) is not int or calls < 0:
            raise RatingError(f"calls of {api} must be a whole number of at least 0, got {calls!r}")
        entry = index.get(api)
        if entry is None:
            unknown[api] = unknown.get(api, 0) + calls
            continue
        position, billable_api = entry
        apis = per_category.get(position)
        if apis is None:
            apis = per_category[position] = {}
        counts = apis.get(api)
        if counts is None:
            counts = apis[api] = [0, 0]
        counts[0] += calls
        if billable_api and (outcome is None and t.unknown_billable or outcome is not None and t.billable(outcome)):
            counts[1] += calls

    warnings = ()
    if unknown and t.unknown_api == "error":
        raise UnknownApi(unknown)
    if unknown and t.unknown_api == "report":
        warnings = tuple(f"{calls:,} call(s) of unknown API {api} were not billed"
                         for api, calls in sorted(unknown.items()))

    by_category: dict[str, list[PackBalance]] = {}
    for pack in sorted(packs, key=lambda p: (p.expires is None, p.expires or date.max, p.pack_id)):
        by_category.setdefault(pack.category, []).append(pack)
    grant_free = not suspended or t.book.free_quota_while_suspended

    with decimal.localcontext(_EXACT):
        lines = []
        subtotal = _ZERO
        charged = _ZERO
        for position in sorted(per_category):
            line = _line(t, t.categories[position], per_category[position], grant_free,
                         by_category.get(t.categories[position].id, ()))
            lines.append(line)
            subtotal += line.amount
            charged += line.charge
    total = charged if t.per_line else t.round(charged)
    return Bill(
        account=account, period=period, currency=t.book.currency, unit=t.book.unit, lines=tuple(lines),
        subtotal=subtotal, total=total, rounding=t.rounding, rules_name=t.rules_name,
        rules_fingerprint=t.fingerprint, rule_versions=t.versions,
        unrated=tuple(UnratedUsage(api, calls) for api, calls in sorted(unknown.items())), warnings=warnings,
    )


def _line(t: Tariff, cat: _Category, apis: dict, grant_free: bool, packs) -> BillLine:
    api_usage = tuple(ApiUsage(api, index_billable, calls, billable)
                      for api, (calls, billable), index_billable in
                      ((api, counts, t.index[api][1]) for api, counts in sorted(apis.items())))
    billable = sum(a.billable_calls for a in api_usage)
    seen = sum(a.calls for a in api_usage)

    remaining = billable
    free_used = min(remaining, cat.free_quota) if grant_free else 0
    remaining -= free_used
    packs_used = []
    for pack in packs:
        if remaining == 0:
            break
        used = min(remaining, pack.units_left)
        if used:
            packs_used.append(PackUse(pack.pack_id, used, pack.units_left - used))
            remaining -= used
    payg = remaining

    if cat.mode == "volume":
        for number, (bound, price) in enumerate(cat.tiers, 1):
            if bound is None or payg <= bound:
                break
        amount = price * payg
        charges = (TierCharge(number, payg, price, amount),)
    else:
        charges = []
        lower = 0
        left = payg
        for number, (bound, price) in enumerate(cat.tiers, 1):
            span = left if bound is None else min(left, bound - lower)
            charges.append(TierCharge(number, span, price, price * span))
            left -= span
            if left == 0:
                break
            lower = bound
        charges = tuple(charges)
        amount = sum((c.amount for c in charges), _ZERO)
        number, price = charges[-1].tier, charges[-1].unit_price

    return BillLine(
        category=cat.id, name=cat.name, tier_mode=cat.mode, apis=api_usage, calls=billable,
        free_calls=seen - billable, free_quota_used=free_used, packs_used=tuple(packs_used), payg_calls=payg,
        tier=number, unit_price=price, charges=charges, amount=amount,
        charge=t.round(amount) if t.per_line else amount,
    )
