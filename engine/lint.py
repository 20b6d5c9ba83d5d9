"""`ratecard lint`: what a valid rule set allows but an analyst should look at twice.

Every finding is a warning, never an error: each may be intended (a product can mean its volume
price cliffs), so lint states the consequence, in money where it is about money, and leaves the
decision to the analyst. It runs on a rule set that has passed validation.

Checks (the code of each warning in brackets):

* [price-cliff] In volume ("all units") mode, a tier bound where one more unit makes the whole
  period cheaper: the bound's cost, the next count's cost, and every count that costs less than
  the bound does. Flat amounts of tiers count: a tier's flat fee can make or hide a cliff.
* [max-below-min] A category's maximum spend below its minimum spend (in the price book, or for
  an account in its terms): the maximum is applied first, then the minimum raises it, so the
  minimum wins and the maximum never applies.
* [dearer-higher-tier] A tier priced above a lower tier: more volume pays more per unit.
* [same-price-tier] A tier priced as the one before it: its bound changes nothing.
* Reachability. Validation already rejects a priced category that no billable API reaches. What
  it cannot reject, because it is legal, lint reports:
  - [free-category] a category whose every tier is priced 0 in some price book version: its
    billable APIs reach it but never cost anything, so they are free in all but name;
  - [nothing-billed] an API mapping that bills neither successful calls nor any error code: no
    call, by any API, reaches any category's prices;
  - [dropped-api] an API listed in one API mapping version and missing from the next: from that
    date its calls no longer reach any category and are handled as unknown-API usage.

Acknowledging a finding. An intended finding is acknowledged in the rule file itself, with a comment
on the line the warning points at, naming its code and saying why:

    - { up_to: 5000, unit_price: 0.02 }  # lint: allow price-cliff -- the product's volume discount

An acknowledged finding is not reported (`lint --strict` passes), but counted. The comment is checked
like the rules: [unknown-lint-code] for a code lint does not have, [acknowledgement-without-reason]
when nothing says why, [unused-acknowledgement] when no finding of that code is on that line any
more (the rule it excused has changed: remove the comment, or look again).
"""

from __future__ import annotations

import decimal
import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

from .exact import EXACT
from .errors import Location, Problem
from .formatting import counted
from .formatting import format_count as n
from .formatting import format_money, format_price
from .model import RuleSet

CODES = ("price-cliff", "dearer-higher-tier", "same-price-tier", "free-category", "nothing-billed", "dropped-api")

# Counts × prices must be exact: a cliff stated with rounded money would be a wrong statement.
_EXACT = EXACT


@dataclass(frozen=True)
class LintReport:
    warnings: list[Problem]  # to report: findings not acknowledged, and problems of the acknowledgements
    acknowledged: list[Problem]  # findings excused by a `# lint: allow CODE` comment on their line


def lint(rule_set: RuleSet) -> list[Problem]:
    """Every warning about a validated rule set that its files do not acknowledge, sorted by position."""
    return lint_report(rule_set).warnings


def lint_report(rule_set: RuleSet) -> LintReport:
    findings = _findings(rule_set)
    acks = [ack for file, source in rule_set.sources.items() for ack in _acknowledgements(file, source)]
    by_line = {(a.where.file, a.where.line): a for a in acks}
    warnings, acknowledged, used = [], [], set()
    for finding in findings:
        ack = by_line.get((finding.location.file, finding.location.line))
        if ack is not None and finding.code in ack.codes:
            acknowledged.append(finding)
            used.add((id(ack), finding.code))
        else:
            warnings.append(finding)
    for ack in acks:
        warnings += ack.problems(used)
    return LintReport(sorted(warnings), sorted(acknowledged))


_ACK = re.compile(r"(?:^|\s)(#\s*lint:\s*allow\b)(?P<rest>.*)$")
_ACK_CODES = re.compile(r"\s*(?P<codes>[A-Za-z0-9_-]+(?:\s*,\s*[A-Za-z0-9_-]+)*)\s*(?:(?:--|—|–|:)\s*)?(?P<reason>.*)$")


@dataclass(frozen=True)
class _Ack:
    where: Location
    codes: tuple[str, ...]
    reason: str

    def problems(self, used: set) -> list[Problem]:
        out = []
        unknown = [c for c in self.codes if c not in CODES]
        if unknown or not self.codes:
            out.append(Problem(self.where, f"`# lint: allow` names {', '.join(unknown) or 'no code'}, which lint "
                               f"does not report; expected one or more of: {', '.join(CODES)}", "warning",
                               "unknown-lint-code"))
        if not self.reason:
            out.append(Problem(self.where, f"`# lint: allow {', '.join(self.codes)}` does not say why the finding "
                               f"is intended; add the reason after the code, e.g. `# lint: allow "
                               f"{self.codes[0] if self.codes else 'price-cliff'} -- intended by the product`",
                               "warning", "acknowledgement-without-reason"))
        for code in self.codes:
            if code in CODES and (id(self), code) not in used:
                out.append(Problem(self.where, f"`# lint: allow {code}` acknowledges no finding: lint reports no "
                                   f"{code} on this line; remove the comment, or check the rule it was "
                                   "written for", "warning", "unused-acknowledgement"))
        return out


def _acknowledgements(file: str, source) -> list[_Ack]:
    out = []
    for number, line in enumerate(getattr(source, "text", "").splitlines(), 1):
        found = _ACK.search(line)
        if found is None:
            continue
        parts = _ACK_CODES.match(found.group("rest"))
        codes = tuple(c.strip() for c in parts.group("codes").split(",")) if parts else ()
        reason = parts.group("reason").strip() if parts else found.group("rest").strip()
        out.append(_Ack(Location(file, number, found.start(1) + 1, ""), codes, reason))
    return out


def _findings(rule_set: RuleSet) -> list[Problem]:
    out = _Findings(rule_set)
    for book in rule_set.pricing:
        for category in book.categories.values():
            if category.model == "tiered":
                _tiers(out, book, category)
            _free_category(out, book, category)
            _spend_limits(out, book.source, ("categories", category.id), category.name,
                          category.minimum_spend, category.maximum_spend, book.currency)
    for version in rule_set.account_terms:
        book = rule_set.pricing[-1]
        for account, terms in version.accounts.items():
            for cid in sorted(set(terms.minimum_spend) | set(terms.maximum_spend)):
                listed = book.categories.get(cid)
                low = terms.minimum_spend.get(cid, listed.minimum_spend if listed else None)
                high = terms.maximum_spend.get(cid, listed.maximum_spend if listed else None)
                _spend_limits(out, version.source, ("accounts", account, "maximum_spend" if cid in
                              terms.maximum_spend else "minimum_spend", cid), f"{account}: {cid}", low, high,
                              book.currency)
    for mapping in rule_set.mappings:
        _nothing_billed(out, mapping)
    for before, after in zip(rule_set.mappings, rule_set.mappings[1:]):
        _dropped_apis(out, before, after)
    return sorted(out.problems)


class _Findings:
    def __init__(self, rule_set: RuleSet):
        self.sources = rule_set.sources
        self.problems: list[Problem] = []

    def warn(self, file: str, path: tuple, message: str, code: str, *, key: bool = False):
        source = self.sources.get(file)
        # A rule set built without sources (e.g. by hand in a test) still gets its warnings, at the file.
        where = source.locate(path, key=key) if source is not None else Location(file)
        self.problems.append(Problem(where, message, "warning", code))


def _units(count: int, unit: str) -> str:
    return counted(count, unit)


def _tiers(out: _Findings, book, category):
    tiers = category.tiers
    money = lambda v: format_money(v, book.currency)  # noqa: E731
    for i in range(1, len(tiers)):
        lower, tier = tiers[i - 1], tiers[i]
        path = ("categories", category.id, "tiers")
        # A free tier below is an allowance (the first N units cost nothing), not a price to undercut:
        # compare with the cheapest paid tier below, if any.
        paid = [j for j in range(i) if tiers[j].unit_price > 0]
        cheapest = min(paid, key=lambda j: tiers[j].unit_price) if paid else None
        flat = any(t.flat_amount is not None for t in tiers[:i + 1])  # per-unit prices alone do not compare
        if flat:
            pass
        elif cheapest is not None and tier.unit_price > tiers[cheapest].unit_price:
            out.warn(book.source, path + (i, "unit_price"),
                     f"{category.name}: tier {i + 1} ({_range(tiers, i, book.unit)}) costs "
                     f"{format_price(tier.unit_price)} {book.currency} per {book.unit}, more than tier "
                     f"{cheapest + 1} ({format_price(tiers[cheapest].unit_price)} {book.currency}); a larger volume "
                     f"pays more per {book.unit}: check that the prices are not swapped",
                     "dearer-higher-tier")
        elif tier.unit_price == lower.unit_price and tier.flat_amount == lower.flat_amount:
            out.warn(book.source, path + (i, "unit_price"),
                     f"{category.name}: tier {i + 1} has the same price as tier {i} "
                     f"({format_price(tier.unit_price)} {book.currency}), so the bound {n(lower.up_to)} changes "
                     "nothing: merge the two tiers or correct the price", "same-price-tier")
        if category.tier_mode == "volume":
            cliff = volume_cliff(lower.up_to, lower.unit_price, tier.unit_price, tier.up_to,
                                 lower.flat_amount or 0, tier.flat_amount or 0)
            if cliff is not None:
                sentence = _cliff_sentence(lower.up_to, *cliff, book.unit, money, i + 1, tier.up_to)
                out.warn(book.source, path + (i - 1, "up_to"),
                         f"{category.name}: price cliff at the tier {i} bound: {sentence}", "price-cliff")


def _range(tiers, i: int, unit: str) -> str:
    lower = tiers[i - 1].up_to
    bound = tiers[i].up_to
    if bound is None:
        return f"above {_units(lower, unit)}"
    return f"{n(lower + 1)} to {_units(bound, unit)}"


def volume_cliff(bound: int, price: Decimal, next_price: Decimal, next_bound: int | None,
                 flat: Decimal | int = 0, next_flat: Decimal | int = 0) -> tuple[Decimal, Decimal, int | None] | None:
    """In volume mode, the cliff at `bound` or None: (cost of `bound` units, cost of one more, the
    last count that costs less than `bound` units, None when every larger count does). `flat` and
    `next_flat` are the two tiers' flat amounts.

    The cliff ends at the smallest count m with m × next_price + next_flat ≥ bound × price + flat;
    it cannot run past the next tier, where another price applies (the next bound gets its own check)."""
    with decimal.localcontext(_EXACT):
        at_bound = bound * price + flat
        above = (bound + 1) * next_price + next_flat
    if above >= at_bound:
        return None
    if next_price == 0:
        last = next_bound
    else:
        ratio = (Fraction(at_bound) - Fraction(next_flat)) / Fraction(next_price)
        smallest = -(-ratio.numerator // ratio.denominator)  # exact ceiling: no float, no rounding
        last = smallest - 1 if next_bound is None else min(smallest - 1, next_bound)
    return at_bound, above, last


def _cliff_sentence(bound, at_bound, above, last, unit, money, next_tier, next_bound) -> str:
    text = f"{_units(bound, unit)} cost {money(at_bound)} but {n(bound + 1)} cost {money(above)}"
    if last is None:
        return text + f", so every larger count is cheaper than {_units(bound, unit)}"
    if last == bound + 1:
        return text
    whole = f" (all of tier {next_tier})" if last == next_bound else ""
    return text + f", so every count from {n(bound + 1)} to {n(last)}{whole} is cheaper than {_units(bound, unit)}"


def _spend_limits(out: _Findings, file, path, name, low, high, currency):
    if low is not None and high is not None and high < low:
        out.warn(file, path, f"{name}: the maximum spend {format_money(high, currency)} is below the minimum "
                 f"spend {format_money(low, currency)}; the maximum is applied first and the minimum then raises "
                 f"the category to {format_money(low, currency)}, so the maximum never applies: correct one of them",
                 "max-below-min", key=True)


def _free_category(out: _Findings, book, category):
    terms = category.percentage
    if terms is not None and (terms.fixed_fee or (terms.per_transaction_min or 0)):
        return
    if all(not t.unit_price and not t.flat_amount and not t.rate for t in category.tiers):
        out.warn(book.source, ("categories", category.id),
                 f"{category.name}: every tier is priced 0, so the billable APIs that count here never cost "
                 f"anything (from {book.effective_from.isoformat()}); list them as free in the API mapping, "
                 "or set the prices", "free-category", key=True)


def _nothing_billed(out: _Findings, mapping):
    if not mapping.success_billable and not mapping.billable_error_codes:
        out.warn(mapping.source, ("billable_outcomes", "success"),
                 "no call outcome is billed: successful calls are free and no error code is listed, so no "
                 "call reaches any category's prices (only usage without an outcome can)"
                 if mapping.unknown_outcome == "billable" else
                 "no call outcome is billed: successful calls are free, no error code is listed and calls "
                 "without an outcome are free, so nothing is ever billed", "nothing-billed")


def _dropped_apis(out: _Findings, before, after):
    start = after.effective_from
    for api, rule in before.apis.items():
        if api in after.apis:
            continue
        kept = rule.category in {r.category for r in after.apis.values()}
        out.warn(after.source, ("categories", rule.category) if kept else ("categories",),
                 f"API {api} is listed ({'billable' if rule.billable else 'free'} in {rule.category}) until "
                 f"{(start - timedelta(days=1)).isoformat()} by {before.source} but not from "
                 f"{start.isoformat()}; from then on its calls reach no category and are unknown-API usage "
                 f"(unknown_api: {after.unknown_api})", "dropped-api", key=True)
