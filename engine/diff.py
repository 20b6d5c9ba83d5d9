"""Impact analysis: the same usage billed by two rule sets (a base and a proposed one), compared.

Every account-period of the usage is rated twice, with the versions each rule set has in force
for that period, and the two bills are compared:

- per category: billed calls and the line amounts (what each line adds to its bill, before the
  bill's own rounding when the policy rounds per bill);
- per account: billed calls and bill totals (rounded as each rule set's policy says), over every
  period of the usage;
- tier changes: a category of a bill whose tier reached differs between the two bills;
- alerts: a bill whose total rises by more than a given percentage (or rises from nothing).

Amounts and changes are exact decimals. A percentage is the one figure that is not: it is rounded
half up to two decimals (`percent`), for display and nothing else; alerts compare exactly. A change
from a total of zero has no percentage (None, shown as "new").

Usage an API mapping does not list is not billed by that side (as a bill run would refuse the row,
or leave it unrated under ``unknown_api: report``) and is listed in `RulesDiff.not_billed`, so a
diff that adds or drops an API shows the calls it starts or stops billing.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Iterable

from .exact import EXACT, decimal_text
from .bill import Bill, money, quantity
from .errors import NoRulesInForce, RatecardError, UnknownApi
from .model import RuleSet
from .rating import rate

BASE, NEW = "base", "rules"

# Sums and differences of exact amounts are exact too, whatever the caller's decimal context.
_EXACT = EXACT
_ZERO = Decimal(0)


def percent(base: Decimal, new: Decimal) -> Decimal | None:
    """(new − base) / base in percent, rounded half up (away from zero) to 2 decimals.

    None when base is 0 and new is not: a bill from nothing has no percentage. 0.00 when both are 0.
    """
    if base == 0:
        return None if new != 0 else Decimal("0.00")
    exact = (Fraction(new) - Fraction(base)) * 100 / abs(Fraction(base))
    hundredths = int(abs(exact) * 100 + Fraction(1, 2))  # floor(x + ½) of a magnitude: half up
    return Decimal(f"{'-' if exact < 0 else ''}{hundredths}E-2")


def rises_above(base: Decimal, new: Decimal, pct: Decimal) -> bool:
    """Whether `new` is more than `pct` percent above `base`, exactly; any rise from zero counts."""
    if new <= base:
        return False
    if base <= 0:
        return True
    return _EXACT.multiply(_EXACT.subtract(new, base), 100) > _EXACT.multiply(pct, base)


class _Change:
    """The change from `base_total` to `new_total`, in money and in percent."""

    base_total: Decimal
    new_total: Decimal

    @property
    def change(self) -> Decimal:
        return _EXACT.subtract(self.new_total, self.base_total)

    @property
    def percent(self) -> Decimal | None:
        return percent(self.base_total, self.new_total)


@dataclass(frozen=True)
class Impact(_Change):
    """One row of the comparison: a category, an account, or the total."""

    key: str  # category id, account, or "total"
    name: str  # what to show: the category's name, the account
    base_calls: int  # billed (billable) calls under the base rules
    new_calls: int
    base_total: Decimal
    new_total: Decimal

    def to_dict(self) -> dict:
        return {"key": self.key, "name": self.name, "base_calls": quantity(self.base_calls),
                "new_calls": quantity(self.new_calls),
                "base_total": money(self.base_total), "new_total": money(self.new_total),
                "change": money(self.change), "percent": _percent_text(self.percent)}


@dataclass(frozen=True)
class TierChange:
    """A category of one bill whose tier reached differs between the base and the new bill."""

    account: str
    period: str
    category: str
    name: str
    base_tier: int
    new_tier: int
    base_calls: int  # the calls that decided the tier (pay-as-you-go calls)
    new_calls: int

    def to_dict(self) -> dict:
        return {"account": self.account, "period": self.period, "category": self.category, "name": self.name,
                "base_tier": self.base_tier, "new_tier": self.new_tier, "base_calls": quantity(self.base_calls),
                "new_calls": quantity(self.new_calls)}


@dataclass(frozen=True)
class Alert(_Change):
    """A bill whose total rises by more than the alert percentage."""

    account: str
    period: str
    base_total: Decimal
    new_total: Decimal

    def to_dict(self) -> dict:
        return {"account": self.account, "period": self.period, "base_total": money(self.base_total),
                "new_total": money(self.new_total), "change": money(self.change),
                "percent": _percent_text(self.percent)}


@dataclass(frozen=True)
class NotBilled:
    """Calls of an API that one side's API mapping does not list, so that side does not bill them."""

    side: str  # BASE or NEW
    account: str
    period: str
    api: str
    calls: int

    def to_dict(self) -> dict:
        return {"side": self.side, "account": self.account, "period": self.period, "api": self.api,
                "calls": quantity(self.calls)}


@dataclass(frozen=True)
class RulesSide:
    """Which rule set one side is: as named by the caller, and its fingerprint (of every version)."""

    name: str
    path: str
    fingerprint: str

    def to_dict(self) -> dict:
        return {"name": self.name, "path": self.path, "fingerprint": self.fingerprint}


@dataclass(frozen=True)
class PeriodVersions:
    """The versions each side has in force for one period of the usage: kind → effective_from."""

    period: str
    base: tuple[tuple[str, str], ...]
    new: tuple[tuple[str, str], ...]

    def to_dict(self) -> dict:
        return {"period": self.period, "base": dict(self.base), "new": dict(self.new)}


@dataclass(frozen=True)
class RulesDiff:
    base: RulesSide
    rules: RulesSide
    currency: str
    bills: int  # account-periods compared
    periods: tuple[str, ...]
    versions: tuple[PeriodVersions, ...]
    total: Impact
    categories: tuple[Impact, ...]  # by impact: largest absolute change first, then name
    accounts: tuple[Impact, ...]  # likewise
    tier_changes: tuple[TierChange, ...]  # by account and period, then in the new bill's line order
    alert_pct: Decimal | None
    alerts: tuple[Alert, ...]  # largest change first, then account and period
    not_billed: tuple[NotBilled, ...]

    def to_dict(self) -> dict:
        return {
            "base": self.base.to_dict(), "rules": self.rules.to_dict(), "currency": self.currency,
            "bills": self.bills, "periods": list(self.periods),
            "versions": [v.to_dict() for v in self.versions],
            "total": self.total.to_dict(),
            "categories": [c.to_dict() for c in self.categories],
            "accounts": [a.to_dict() for a in self.accounts],
            "tier_changes": [t.to_dict() for t in self.tier_changes],
            "alert_pct": None if self.alert_pct is None else decimal_text(self.alert_pct),
            "alerts": [a.to_dict() for a in self.alerts],
            "not_billed": [n.to_dict() for n in self.not_billed],
        }


BILL_ADJUSTMENTS = "(bill adjustments)"  # the category-rows key of discounts, commitments and credits on a whole bill


def _percent_text(value: Decimal | None) -> str:
    return "new" if value is None else decimal_text(value)


def diff_rules(base: RuleSet, rules: RuleSet, usage: Iterable, *, alert_pct: Decimal | None = None) -> RulesDiff:
    """Bill `usage` with `base` and with `rules` and compare the bills.

    `usage` is an iterable of `ratecard.usage.AccountUsage` (``account``, ``period``, ``items``), e.g.
    ``UsageReader(...).accounts()``. Raises RatecardError when a side has no rules in force for a
    period of the usage, or when the bills to compare are in different currencies.
    """
    if alert_pct is not None:
        alert_pct = Decimal(alert_pct)
        if not alert_pct.is_finite() or alert_pct < 0:
            raise RatecardError(f"alert percentage must be a number of at least 0, got {alert_pct}")
    not_billed: list[NotBilled] = []
    categories: dict[str, list] = {}  # id → [name, base calls, new calls, base total, new total]
    accounts: dict[str, list] = {}  # account → [base calls, new calls, base, new]
    tier_changes: list[TierChange] = []
    alerts: list[Alert] = []
    versions: dict[str, PeriodVersions] = {}
    currencies: dict[str, set[str]] = {BASE: set(), NEW: set()}
    bills = 0

    for use in usage:
        old = _rate(base, use, BASE, not_billed)
        new = _rate(rules, use, NEW, not_billed)
        bills += 1
        currencies[BASE].add(old.currency)
        currencies[NEW].add(new.currency)
        versions.setdefault(use.period, PeriodVersions(use.period, tuple(old.rule_versions.items()),
                                                       tuple(new.rule_versions.items())))
        old_lines = {line.category: line for line in old.lines}
        for side, lines in ((0, old.lines), (1, new.lines)):
            for line in lines:
                row = categories.get(line.category)
                if row is None:
                    row = categories[line.category] = [line.name, 0, 0, _ZERO, _ZERO]
                if side:
                    row[0] = line.name  # as the new rules name it
                row[1 + side] += line.calls
                row[3 + side] = _EXACT.add(row[3 + side], line.charge)
        for side, bill in ((0, old), (1, new)):
            # A category's discounts and spend limits belong to it; bill-level adjustments get a row of their own.
            for a in bill.adjustments:
                key = a.category if a.category is not None else BILL_ADJUSTMENTS
                row = categories.get(key)
                if row is None:
                    row = categories[key] = ["Adjustments on the whole bill", 0, 0, _ZERO, _ZERO]
                row[3 + side] = _EXACT.add(row[3 + side], a.charge)
        row = accounts.setdefault(use.account, [0, 0, _ZERO, _ZERO])
        row[0] += sum(line.calls for line in old.lines)
        row[1] += sum(line.calls for line in new.lines)
        row[2] = _EXACT.add(row[2], old.total)
        row[3] = _EXACT.add(row[3], new.total)
        for line in new.lines:  # in bill order
            before = old_lines.get(line.category)
            if before is not None and before.tier != line.tier:
                tier_changes.append(TierChange(use.account, use.period, line.category, line.name, before.tier,
                                               line.tier, before.payg_calls, line.payg_calls))
        if alert_pct is not None and rises_above(old.total, new.total, alert_pct):
            alerts.append(Alert(use.account, use.period, old.total, new.total))

    currency = _one_currency(currencies, base, rules)
    category_rows = [Impact(cid, *row) for cid, row in categories.items()]
    account_rows = [Impact(account, account, *row) for account, row in accounts.items()]
    total = Impact("total", "Total", sum(r.base_calls for r in account_rows), sum(r.new_calls for r in account_rows),
                   _sum(r.base_total for r in account_rows), _sum(r.new_total for r in account_rows))
    return RulesDiff(
        base=RulesSide(base.name, base.path, base.fingerprint),
        rules=RulesSide(rules.name, rules.path, rules.fingerprint),
        currency=currency, bills=bills, periods=tuple(sorted(versions)),
        versions=tuple(versions[p] for p in sorted(versions)),
        total=total,
        categories=tuple(sorted(category_rows, key=lambda r: (-abs(r.change), r.name, r.key))),
        accounts=tuple(sorted(account_rows, key=lambda r: (-abs(r.change), r.key))),
        tier_changes=tuple(sorted(tier_changes, key=lambda t: (t.account, t.period))),  # stable: bill order
        alert_pct=alert_pct,
        alerts=tuple(sorted(alerts, key=lambda a: (-a.change, a.account, a.period))),
        not_billed=tuple(sorted(not_billed, key=lambda n: (n.side != BASE, n.account, n.period, n.api))),
    )


def _rate(rules: RuleSet, use, side: str, not_billed: list) -> Bill:
    """Rate one account-period; calls of APIs these rules do not list are left out and recorded."""
    items = tuple(use.items)
    try:
        try:
            bill = rate(rules, items, use.period, account=use.account)
        except UnknownApi as exc:
            unknown = set(exc.apis)
            for api in sorted(unknown):
                not_billed.append(NotBilled(side, use.account, use.period, api,
                                            sum(i.calls for i in items if i.api == api)))
            bill = rate(rules, tuple(i for i in items if i.api not in unknown), use.period, account=use.account)
    except NoRulesInForce as exc:
        raise NoRulesInForce(f"{'base' if side == BASE else 'new'} rules {rules.path}: {exc}") from None
    for u in bill.unrated:  # `unknown_api: report` or `ignore`: rated, but these calls were not billed
        not_billed.append(NotBilled(side, use.account, use.period, u.api, u.calls))
    return bill


def _one_currency(currencies: dict, base: RuleSet, rules: RuleSet) -> str:
    found = currencies[BASE] | currencies[NEW]
    if len(found) > 1:
        raise RatecardError(f"cannot compare bills in different currencies: base rules {base.path} bill in "
                            f"{', '.join(sorted(currencies[BASE]))}, new rules {rules.path} in "
                            f"{', '.join(sorted(currencies[NEW]))}")
    return found.pop() if found else rules.latest[0].currency


def _sum(values) -> Decimal:
    total = _ZERO
    for value in values:
        total = _EXACT.add(total, value)
    return total
