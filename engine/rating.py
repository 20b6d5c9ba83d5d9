"""The rating core: rules + one account's usage for one period → Bill. Pure: no I/O, no clock.

Everything that can be worked out from the rules alone (which category an API counts in, which
outcomes are billed, the tier bounds and prices, the rounding) is compiled once per rule version
into a `Tariff` and cached on the RuleSet, so rating many account-months pays only for counting,
the arithmetic and building the Bill.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Iterable, Mapping

from .formatting import counted
from .exact import EXACT, ROUNDING, decimal_text
from .bill import ApiUsage, Bill, BillLine, FrozenDict, Lines, TierCharge, UnratedUsage, builder, builder_with
from .errors import RatingError, UnknownApi
from .model import ROUNDING_MODES, AccountTerms, ApiMapping, PriceBook, RuleSet, SettlementPolicy
from .periods import parse_period
from .price import pricer_for
from .pricing_code import compile_pricing, compile_rating
from .adjust import Adjuster
from .adjust import needed as adjustments_needed

SUCCESS = "success"  # the outcome of a successful call; any other outcome is an error code


def normalize_outcome(outcome) -> str | None:
    """The one rule for reading a call's outcome, whatever the usage came from (a usage file, `quote
    API:OUTCOME=N`, the Python API, HTTP), stated for users under `billable_outcomes` in docs/rules.md:

    * surrounding whitespace is not part of it;
    * nothing, or only whitespace, is an unknown outcome (None): the rules' `unknown_outcome` decides;
    * ``success`` in any letter case is a successful call (logs disagree on ``SUCCESS``/``Success``);
    * anything else is an error code, kept exactly as written: codes are case-sensitive, so a code
      listed as billed in the rules bills only when written with the rules' letter case.
    """
    if outcome is None:
        return None
    if not isinstance(outcome, str):
        raise RatingError(f"bad outcome {outcome!r}: expected text (success or an error code) or nothing")
    text = outcome.strip()
    if not text:
        return None
    return SUCCESS if text.lower() == SUCCESS else text

# Exact arithmetic: a result that would need rounding raises instead of silently losing digits.
# Amounts are computed with this context's methods rather than under `localcontext`, so rating
# neither depends on nor disturbs the caller's decimal context.
_EXACT = EXACT
_mul = _EXACT.multiply
_add = _EXACT.add
_ZERO = Decimal(0)

# Fast constructors of the (frozen) bill records, for the hot path only.
_new_api_usage = builder(ApiUsage)
_new_tier_charge = builder(TierCharge)
_new_line = builder(BillLine)
_new_object = object.__new__


@dataclass(frozen=True, slots=True)
class UsageItem:
    """Calls of one API with one outcome (None when the usage does not say).

    `calls` is a whole number, or a Decimal for an API whose category counts in a decimal unit
    (GB, seconds) with at most the unit's declared decimal places. `amount` is the total
    transaction amount of the calls, for categories priced as a percentage of it; None when the
    usage carries none."""

    api: str
    calls: int | Decimal
    outcome: str | None = None
    amount: Decimal | None = None


@dataclass(frozen=True, slots=True)
class PackBalance:
    """A prepaid resource pack an account holds: units left and when it expires (exclusive)."""

    pack_id: str
    category: str
    units_left: int
    expires: date | None = None


class _Category:
    """One category of the price book, compiled: `tiers` are (inclusive bound or None, unit price).
    A category that is not plain per-unit tiered pricing (`model.Category.plain`) has a `pricer`."""

    __slots__ = ("id", "name", "mode", "volume", "tiers", "free_quota", "pricer", "model", "unit", "precision")

    def __init__(self, category):
        self.id = category.id
        self.name = category.name
        self.mode = category.tier_mode
        self.volume = category.tier_mode == "volume"
        self.tiers = tuple((t.up_to, t.unit_price) for t in category.tiers)
        self.free_quota = category.free_quota
        self.model, self.unit, self.precision = category.model, category.unit, category.precision
        self.pricer = None if category.plain else pricer_for(category)


class Tariff:
    """The rules in force for one period, compiled for rating."""

    __slots__ = ("book", "mapping", "policy", "categories", "index", "slot_position", "slot_api", "slot_billable",
                 "billable_pos", "free_pos", "keyed_billable_pos", "keyed_free_pos", "billed_outcomes",
                 "unknown_billable", "unknown_api", "no_usage", "free_while_suspended", "quantum", "quantize",
                 "per_line", "rounding", "versions", "rules_name", "fingerprint", "price_lines", "rate_keyed",
                 "rate_items", "adjust",
                 "account_terms", "basis_pos", "decimal_pos", "free_outcomes", "new_bill", "tax")

    def __init__(self, rules: RuleSet, book, mapping, policy, account_terms=None, tax=None):
        self.book, self.mapping, self.policy = book, mapping, policy
        self.account_terms = account_terms
        self.tax = tax  # the tax rules in force (`ratecard.tax.TaxRules`), or None
        self.categories = [_Category(c) for c in book.categories.values()]
        position = {c.id: i for i, c in enumerate(self.categories)}
        # Every API gets a slot; slots run in bill order (category as the book lists them, then API
        # name), so sorting the slots seen groups an account's usage into lines with no sort by key.
        rules_in_order = sorted(mapping.apis.values(), key=lambda r: (position[r.category], r.api))
        self.index = {r.api: (slot, r.billable) for slot, r in enumerate(rules_in_order)}
        self.slot_position = tuple(position[r.category] for r in rules_in_order)
        # For the counting loop: billable API → category position; free API → category position.
        self.billable_pos = {r.api: position[r.category] for r in rules_in_order if r.billable}
        self.free_pos = {r.api: position[r.category] for r in rules_in_order if not r.billable}
        self.free_while_suspended = book.free_quota_while_suspended
        self.no_usage = [-1] * len(self.categories)
        self.slot_api = tuple(r.api for r in rules_in_order)
        self.slot_billable = tuple(r.billable for r in rules_in_order)
        self.unknown_billable = mapping.unknown_outcome == "billable"
        # Usage without outcomes (a mapping): its billable APIs bill only when unknown outcomes do,
        # and otherwise count like free ones.
        self.keyed_billable_pos = self.billable_pos if self.unknown_billable else {}
        self.keyed_free_pos = self.free_pos if self.unknown_billable else {**self.free_pos, **self.billable_pos}
        # The outcomes billed for the calls of billable APIs; any other outcome is a free error code.
        outcomes = dict.fromkeys(mapping.billable_error_codes, True)
        outcomes[SUCCESS] = mapping.success_billable
        outcomes[None] = outcomes[""] = self.unknown_billable
        self.billed_outcomes = frozenset(o for o, billed in outcomes.items() if billed)
        # Outcomes seen to be free, as written (a dict kept as an insertion-ordered set, bounded):
        # a memo of `_billed_after_normalizing`, the same for every account.
        self.free_outcomes: dict[str, None] = {}
        self.unknown_api = mapping.unknown_api
        r = policy.rounding
        self.quantum = r.quantum
        # A context per tariff with the policy's rounding preset: `quantize(amount, quantum)`.
        self.quantize = decimal.Context(prec=200, rounding=ROUNDING_MODES[r.mode],
                                        traps=[decimal.InvalidOperation, decimal.Overflow]).quantize
        self.per_line = r.apply == "per-line"
        # Read-only, so every bill of this tariff can share them.
        self.rounding = FrozenDict(quantum=decimal_text(r.quantum), mode=r.mode, apply=r.apply)
        versions = {"pricing": book.effective_from.isoformat(), "api-mapping": mapping.effective_from.isoformat(),
                    "settlement": policy.effective_from.isoformat()}
        in_force: tuple[PriceBook | ApiMapping | SettlementPolicy | AccountTerms, ...] = (book, mapping, policy)
        if account_terms is not None:
            versions["account-terms"] = account_terms.effective_from.isoformat()
            in_force += (account_terms,)
        if tax is not None:
            versions["tax"] = tax.effective_from.isoformat()
            in_force += (tax,)
        self.versions = FrozenDict(versions)
        # The versions that price the period, not the whole set: a later version leaves old bills as they were.
        self.rules_name, self.fingerprint = rules.name, rules.fingerprint_of(*in_force)
        # Categories whose model prices a transaction amount, and those counting in a decimal unit,
        # by position; both empty for a book of plain tiered categories (the fast path).
        self.basis_pos = frozenset(pos for pos, c in enumerate(self.categories)
                                   if c.pricer is not None and c.pricer.needs_basis)
        self.decimal_pos = {pos: c.precision for pos, c in enumerate(self.categories) if c.precision}
        self.adjust = (Adjuster(book, tuple(book.categories.values()), account_terms,
                                (lambda amount: self.quantize(amount, self.quantum)) if self.per_line else None)
                       if adjustments_needed(book, account_terms) else None)

        self.price_lines = compile_pricing(self)
        # Every bill of this tariff shares these fields: built in, not passed on every call.
        self.new_bill = builder_with(Bill, currency=book.currency, unit=book.unit, rounding=self.rounding,
                                     rules_name=self.rules_name, rules_fingerprint=self.fingerprint,
                                     rule_versions=self.versions)
        self.rate_keyed, self.rate_items = compile_rating(self, {
            "finish": _finish, "quantity": _quantity, "unpack": _unpack, "billed_after": _billed_after_normalizing,
            "too_large": _too_large, "build_lines": _build_lines, "Lines": Lines, "new_object": _new_object,
            "UsageItem": UsageItem, "DecimalException": decimal.DecimalException})


def tariff(rules: RuleSet, period: str) -> Tariff:
    """The compiled rules for `period`, cached on the rule set."""
    cache = rules._compiled
    found = cache.get(period)
    if found is None:
        parse_period(period)
        book, mapping, policy = rules.in_force(period)
        terms = rules.terms_in_force(period)
        tax = rules.tax_at(period)
        key = (id(book), id(mapping), id(policy), id(terms), id(tax))
        found = cache.get(key)
        if found is None:
            found = cache[key] = Tariff(rules, book, mapping, policy, terms, tax)
        cache[period] = found
    return found


_FREE_OUTCOMES_KEPT = 1024  # distinct free outcomes a tariff remembers; past it, each is normalised again


def _billed_after_normalizing(t: Tariff, outcome) -> bool:
    """Whether an outcome not written as the rules write it is billed (`normalize_outcome`). Free
    outcomes are remembered, so that the error codes a log repeats on every row cost one set lookup."""
    if normalize_outcome(outcome) in t.billed_outcomes:
        return True
    if len(t.free_outcomes) < _FREE_OUTCOMES_KEPT:
        t.free_outcomes[outcome] = None  # a text outcome: normalize_outcome raised for anything else
    return False


def _bad_calls(api, calls):
    return RatingError(f"calls of {api} must be a whole number of at least 0, got {calls!r}")


def rate(rules: RuleSet, usage, period: str, *, account: str = "", packs: Iterable[PackBalance] = (),
         suspended: bool = False, buyer=None) -> Bill:
    """Price one account's usage for one period.

    `usage` is a mapping of API name → calls (outcome unknown), or an iterable of `UsageItem`
    (or ``(api, calls[, outcome])`` tuples). `packs` are the account's resource packs; those that
    expired before the period are not used, the others are used soonest-expiring first. A
    `suspended` account gets no free quota unless the price book grants it while suspended.
    `buyer` (a `model.Party`) is whom the tax rules in force, if any, tax by (`ratecard.tax`).

    Every amount is computed here; the lines' per-API breakdown is built when first read.
    Raises RatingError for calls that are not a whole number ≥ 0, UnknownApi for an API the rules
    do not list (when the rules say that is an error), NoRulesInForce for a period before the rules.
    """
    t = rules._compiled.get(period) or tariff(rules, period)
    if type(usage) is dict:
        # The snapshot keeps the bill independent of later changes to the caller's mapping (a dict's
        # copy costs a fraction of a tuple of items).
        return t.rate_keyed(usage.copy(), account, period, packs, suspended, buyer)
    if type(usage) is not list and isinstance(usage, Mapping):
        return t.rate_keyed(dict(usage), account, period, packs, suspended, buyer)
    return t.rate_items(usage, account, period, packs, suspended, buyer)


def _finish(t: Tariff, billed: list, snapshot, keyed: bool, unknown: dict[str, Any] | None, account: str,
            period: str, packs, suspended: bool, buyer) -> Bill:
    """The bill of usage counted by category position (`billed`; see `pricing_code.compile_rating`),
    whatever it holds: APIs the rules do not list, resource packs, price models priced on a
    transaction amount, adjustments and tax. `snapshot` is the usage as counted: a dict API → calls
    when `keyed`, else a tuple of usage items."""
    warnings: tuple[str, ...] = ()
    unrated: tuple[UnratedUsage, ...] = ()
    if unknown:
        if t.unknown_api == "error":
            raise UnknownApi(unknown)
        names = sorted(unknown)
        unrated = tuple(UnratedUsage(api, unknown[api]) for api in names)
        if t.unknown_api == "report":
            warnings = tuple(f"{counted(unknown[api], 'call')} of unknown API {api} {'was' if unknown[api] == 1 else 'were'} not billed" for api in names)

    pack_queues = _pack_queues(packs, parse_period(period)) if packs else None
    grant_free = not suspended or t.free_while_suspended
    adjustments: tuple = ()
    try:
        basis = _basis(t, snapshot, keyed) if t.basis_pos else None
        rated, subtotal, charged = t.price_lines(billed, grant_free, pack_queues, basis)
        if t.adjust is not None:
            adjustments, amount, charge = t.adjust(rated, account, period)
            subtotal, charged = _add(subtotal, amount), _add(charged, charge)
        # Per-line: the sum of rounded charges is already on the quantum, so this only gives an
        # empty bill the quantum's exponent too.
        total = t.quantize(charged, t.quantum)
    except decimal.DecimalException as exc:
        raise _too_large(exc) from None

    lines: Lines | tuple[()]
    if rated:
        lines = _new_object(Lines)
        lines._build, lines._args, lines._lines = _build_lines, (t, snapshot, keyed, rated), None
    else:
        lines = ()
    taxed = None
    if t.tax is not None:
        from .tax import tax_of

        parts = [(t.categories[r[0]].id, r[8]) for r in rated] + [(a.category, a.charge) for a in adjustments]
        taxed = tax_of(t.tax, parts, total, t.quantum, buyer, account)
        total = taxed.gross
    return t.new_bill(account, period, lines, subtotal, total, unrated, warnings, adjustments, taxed)


def _too_large(exc: decimal.DecimalException) -> RatingError:
    return RatingError(f"the bill's amounts are too large to compute exactly ({type(exc).__name__}); "
                       "check the usage counts")


def _quantity(t: Tariff, api, calls):
    """A quantity that is not a whole number ≥ 0 (the fast path's check): a Decimal with at most the
    decimal places of the API's category's unit, for a category counting in a decimal unit; else an error."""
    entry = t.index.get(api)
    places = t.decimal_pos.get(t.slot_position[entry[0]]) if entry is not None else None
    if places is None or type(calls) is not Decimal:
        raise _bad_calls(api, calls)
    if not calls.is_finite() or calls.is_signed():
        raise RatingError(f"the quantity of {api} must be a number of at least 0, got {calls}")
    if calls.normalize(context=ROUNDING).as_tuple().exponent < -places:
        raise RatingError(f"the quantity of {api} has more decimal places than its unit allows "
                          f"({places}), got {calls}")
    return calls


def _basis(t: Tariff, snapshot, keyed: bool) -> list:
    """What percentage-priced categories are priced on: per category position, the (calls,
    transaction amount) of each billable usage item; amounts must come with the usage."""
    out: list = [()] * len(t.categories)
    billable_pos = t.billable_pos.get
    for item in (snapshot.items() if keyed else snapshot):
        if keyed:
            api, calls, outcome, amount = item[0], item[1], None, None
        elif type(item) is UsageItem:
            api, calls, outcome, amount = item.api, item.calls, item.outcome, item.amount
        else:
            api, calls, outcome = _unpack(item)
            amount = getattr(item, "amount", None)
        pos = billable_pos(api)
        if pos is None or pos not in t.basis_pos:
            continue
        if not keyed and outcome not in t.billed_outcomes:
            continue
        if keyed and not t.unknown_billable:
            continue
        if amount is None:
            raise RatingError(f"{api} is priced as a percentage of the transaction amount "
                              f"({t.categories[pos].id}), but its usage carries no amount; give usage items "
                              "with an amount")
        if type(amount) is not Decimal or not amount.is_finite() or amount < 0:
            raise RatingError(f"the transaction amount of {api} must be an exact decimal of at least 0, got {amount!r}")
        out[pos] = out[pos] + ((calls, amount),)
    return out


def _build_lines(t: Tariff, snapshot, keyed: bool, rated: list) -> tuple[BillLine, ...]:
    """The bill's line records, from the rated figures and the usage they were rated from
    (`snapshot`: a dict API → calls when `keyed`, else a tuple of usage items)."""
    index = t.index.get  # API → (slot, billable API); slots run in bill order: category, then API name
    calls_of: dict[int, int] = {}
    billed_of: dict[int, int] = {}
    if keyed:
        unknown_billable = t.unknown_billable
        for api, calls in snapshot.items():
            entry = index(api)
            if entry is not None:
                calls_of[entry[0]] = calls
                if entry[1] and unknown_billable:
                    billed_of[entry[0]] = calls
    else:
        billed_outcomes = t.billed_outcomes
        for item in snapshot:
            api, calls, outcome = (item.api, item.calls, item.outcome) if type(item) is UsageItem else _unpack(item)
            entry = index(api)
            if entry is not None:
                slot = entry[0]
                calls_of[slot] = calls_of.get(slot, 0) + calls
                if entry[1] and (outcome in billed_outcomes
                                 or (outcome is not None and normalize_outcome(outcome) in billed_outcomes)):
                    billed_of[slot] = billed_of.get(slot, 0) + calls
    slot_position, slot_api, slot_billable = t.slot_position, t.slot_api, t.slot_billable
    apis_of: dict[int, list] = {}
    seen_of: dict[int, int] = {}
    for slot in sorted(calls_of):
        pos = slot_position[slot]
        n = calls_of[slot]
        usage = _new_api_usage(slot_api[slot], slot_billable[slot], n, billed_of.get(slot, 0))
        group = apis_of.get(pos)
        if group is None:
            apis_of[pos] = [usage]
            seen_of[pos] = n
        else:
            group.append(usage)
            seen_of[pos] += n
    categories = t.categories
    lines = []
    for pos, calls_billed, free_used, packs_used, payg, number, price, amount, charge, charges in rated:
        cat = categories[pos]
        if charges is None:
            charges = (_new_tier_charge(number, payg, price, amount),)
        free = seen_of[pos] - calls_billed
        if type(free) is not int and not free:
            free = 0  # a decimal unit's 0.0: no free units, shown as the whole-number 0
        lines.append(_new_line(cat.id, cat.name, cat.mode, tuple(apis_of[pos]), calls_billed,
                               free, free_used, packs_used, payg, number, price, charges,
                               amount, charge, cat.model, cat.unit))
    return tuple(lines)


def line_figures(bill) -> list[tuple[str, Any, Decimal]]:
    """(category id, billable calls, exact amount) of each of the bill's lines, as `bill.lines` has them,
    taken from the rated figures when its lines are not built yet (a caller that needs only these, a
    settlement's list-price cost, does not pay for the per-API breakdown)."""
    lines = bill.lines
    if type(lines) is Lines and lines._build is _build_lines:
        t, rated = lines._args[0], lines._args[3]
        categories = t.categories
        return [(categories[r[0]].id, r[1], r[7]) for r in rated]
    return [(line.category, line.calls, line.amount) for line in lines]


def _unpack(item) -> tuple:
    """(api, calls, outcome) of a UsageItem-like object or an ``(api, calls[, outcome])`` tuple."""
    if isinstance(item, tuple):
        if len(item) == 2:
            return item[0], item[1], None
        if len(item) == 3:
            return item
        raise RatingError(f"bad usage item {item!r}: expected (api, calls) or (api, calls, outcome)")
    try:
        return item.api, item.calls, item.outcome
    except AttributeError:
        raise RatingError(f"bad usage item {item!r}: expected a UsageItem or an (api, calls[, outcome]) "
                          "tuple") from None


def _pack_queues(packs, start: date) -> dict[str, list[PackBalance]]:
    """The packs usable in the period, per category, soonest-expiring first (never-expiring last)."""
    usable = []
    for pack in packs:
        if type(pack.units_left) is not int or pack.units_left < 0:
            raise RatingError(f"pack {pack.pack_id}: units left must be a whole number of at least 0, "
                              f"got {pack.units_left!r}")
        if pack.expires is not None and pack.expires <= start:
            continue  # expired before the period began
        usable.append(pack)
    usable.sort(key=lambda p: (p.expires is None, p.expires or date.max, p.pack_id))
    queues: dict[str, list[PackBalance]] = {}
    for pack in usable:
        queues.setdefault(pack.category, []).append(pack)
    return queues
