"""The immutable rule model. Built only by `ratecard.rules`, after validation."""

from __future__ import annotations

import decimal
import hashlib
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Mapping

from .exact import ROUNDING

if TYPE_CHECKING:
    from .yamlsource import SourceMap

_ROUNDING_CONTEXT = ROUNDING

ROUNDING_MODES = {
    "half-up": decimal.ROUND_HALF_UP,
    "half-even": decimal.ROUND_HALF_EVEN,
    "half-down": decimal.ROUND_HALF_DOWN,
    "up": decimal.ROUND_UP,
    "down": decimal.ROUND_DOWN,
    "ceiling": decimal.ROUND_CEILING,
    "floor": decimal.ROUND_FLOOR,
}


@dataclass(frozen=True)
class Tier:
    up_to: int | Decimal | None  # inclusive; None for the unbounded last tier
    unit_price: Decimal  # per unit (tiered), per block (package); 0 when the tier is a flat amount only
    flat_amount: Decimal | None = None  # added once for the tier (tiered, package and graduated percentage)
    package_size: int | Decimal | None = None  # package model: units per block in this tier
    rate: Decimal | None = None  # graduated percentage: percent of the transaction amount in this tier


@dataclass(frozen=True)
class PackageTerms:
    """How a package category turns units into blocks (the sizes and prices are in its tiers)."""

    rounding: str = "up"  # "up" | "down" | "nearest": a part block counts as a whole one, none, or the nearer
    free_units: int | Decimal = 0  # units given before any block is counted


@dataclass(frozen=True)
class PercentageTerms:
    """A rate on the transaction amount the usage carries, per category (flat form; the graduated
    form has its rates in the category's tiers)."""

    rate: Decimal | None = None  # percent, e.g. 2.5; None in the graduated form
    fixed_fee: Decimal = Decimal(0)  # per transaction
    per_transaction_min: Decimal | None = None
    per_transaction_max: Decimal | None = None


@dataclass(frozen=True)
class PackOffer:
    units: int
    price: Decimal


@dataclass(frozen=True)
class Category:
    id: str
    name: str
    tier_mode: str  # "volume" | "graduated"
    tiers: tuple[Tier, ...]
    description: str = ""
    free_quota: int = 0
    packs: tuple[PackOffer, ...] = ()
    model: str = "tiered"  # one of ratecard.price.MODELS
    package: PackageTerms | None = None
    percentage: PercentageTerms | None = None
    unit: str = ""  # the category's own unit (GB, second, token); "" for the book's
    precision: int = 0  # decimal places a quantity may have; 0: whole numbers only
    minimum_spend: Decimal | None = None
    maximum_spend: Decimal | None = None

    @property
    def plain(self) -> bool:
        """Per-unit tiered prices in whole units, nothing else: what the rating core's fast path prices."""
        return (self.model == "tiered" and self.precision == 0
                and all(t.flat_amount is None for t in self.tiers))


@dataclass(frozen=True)
class Window:
    """The billing periods (YYYY-MM, both inclusive) an adjustment applies in; None: unbounded."""

    first: str | None = None
    last: str | None = None

    def covers(self, period: str) -> bool:
        return (self.first is None or self.first <= period) and (self.last is None or period <= self.last)

    def overlaps(self, other: Window) -> bool:
        return ((self.first is None or other.last is None or self.first <= other.last)
                and (other.first is None or self.last is None or other.first <= self.last))


@dataclass(frozen=True)
class Discount:
    name: str
    percent: Decimal | None  # exactly one of percent and amount
    amount: Decimal | None
    category: str | None  # None: on the whole bill
    window: Window = Window()


@dataclass(frozen=True)
class Commitment:
    """A minimum the bill must reach; the shortfall is billed as its own line."""

    amount: Decimal
    name: str = "Minimum commitment"
    window: Window = Window()


@dataclass(frozen=True)
class Credit:
    name: str
    amount: Decimal  # positive: what is taken off
    below_zero: bool = False  # may the credit take the bill below zero?
    window: Window = Window()


@dataclass(frozen=True)
class Terms:
    """Adjustments applied after pricing, for one scope: the price book's list terms, or one
    account's negotiated terms (which replace the list terms they name, see `ratecard.adjust`)."""

    discounts: tuple[Discount, ...] = ()
    commitments: tuple[Commitment, ...] = ()
    credits: tuple[Credit, ...] = ()
    minimum_spend: Mapping[str, Decimal] = field(default_factory=dict)  # category → amount
    maximum_spend: Mapping[str, Decimal] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.discounts or self.commitments or self.credits or self.minimum_spend or self.maximum_spend)


@dataclass(frozen=True)
class AccountTerms:
    """One version of an `account-terms` file: each account's negotiated terms."""

    effective_from: date
    accounts: Mapping[str, Terms]
    source: str = ""


NO_TERMS = Terms()


@dataclass(frozen=True)
class PriceBook:
    effective_from: date
    currency: str
    unit: str
    tier_mode: str
    categories: Mapping[str, Category]  # in the order the analyst wrote them
    free_quota_while_suspended: bool = False
    pack_validity_months: int | None = None
    source: str = ""
    terms: Terms = NO_TERMS  # list terms for every account: discounts, commitment, credits, spend limits


@dataclass(frozen=True)
class ApiRule:
    api: str
    category: str
    billable: bool


@dataclass(frozen=True)
class ApiMapping:
    effective_from: date
    api_version: str
    success_billable: bool
    billable_error_codes: frozenset[str]
    unknown_outcome: str  # "billable" | "free"
    unknown_api: str  # "error" | "report" | "ignore"
    apis: Mapping[str, ApiRule]
    source: str = ""

    def apis_of(self, category: str, *, billable: bool) -> tuple[str, ...]:
        return tuple(a.api for a in self.apis.values() if a.category == category and a.billable == billable)


@dataclass(frozen=True)
class Rounding:
    quantum: Decimal
    mode: str  # one of ROUNDING_MODES
    apply: str  # "per-bill" | "per-line"

    def __call__(self, amount: Decimal) -> Decimal:
        # A private context: the result must not depend on the caller's decimal settings.
        return amount.quantize(self.quantum, rounding=ROUNDING_MODES[self.mode], context=_ROUNDING_CONTEXT)


@dataclass(frozen=True)
class InvoiceNumbering:
    """The series the ledger numbers its documents in (a settlement policy's `invoice_numbering`)."""

    invoice_prefix: str = "INV-"
    credit_note_prefix: str = "CN-"
    sequence: str = "continuous"  # "yearly" | "continuous"
    digits: int = 6

    def series(self, kind: str, issued: date) -> str:
        """The series a document of `kind` issued on `issued` (a local date) is numbered in: its
        number is this text followed by its place in the series."""
        prefix = self.credit_note_prefix if kind == "credit-note" else self.invoice_prefix
        return f"{prefix}{issued.year:04d}-" if self.sequence == "yearly" else prefix

    def number(self, series: str, seq: int) -> str:
        return f"{series}{seq:0{self.digits}d}"


@dataclass(frozen=True)
class SettlementPolicy:
    effective_from: date
    billing_cycle: str
    time_zone: str
    bill_issue_day: int
    deduction_first_day: int
    deduction_last_day: int
    rounding: Rounding
    arrears_action: str
    resume_when: str
    deposit_freeze_percent: Decimal | None = None
    source: str = ""
    locale: str = "en"  # CLDR identifier of the language and region documents are written in
    numbering: InvoiceNumbering = InvoiceNumbering()


@dataclass(frozen=True)
class Party:
    """A seller or a buyer as a document prints it."""

    legal_name: str
    address: tuple[str, ...] = ()
    country: str = ""
    tax_id: str = ""
    payment_instructions: str = ""

    def to_dict(self) -> dict:
        return {"legal_name": self.legal_name, "address": list(self.address), "country": self.country,
                "tax_id": self.tax_id, "payment_instructions": self.payment_instructions}

    @classmethod
    def from_dict(cls, d: dict | None) -> Party | None:
        if not d:
            return None
        return cls(d["legal_name"], tuple(d.get("address", ())), d.get("country", ""), d.get("tax_id", ""),
                   d.get("payment_instructions", ""))


@dataclass(frozen=True)
class Seller:
    """A version of the rule set's seller file: who issues its documents, and on what paper."""

    effective_from: date
    party: Party
    paper: str = "A4"  # "A4" | "Letter"
    source: str = ""


@dataclass(frozen=True)
class RuleSet:
    """A validated rule set: every version of each rule file kind, oldest first."""

    name: str
    path: str
    pricing: tuple[PriceBook, ...]
    mappings: tuple[ApiMapping, ...]
    policies: tuple[SettlementPolicy, ...]
    fingerprint: str
    _compiled: dict = field(default_factory=dict, compare=False, repr=False)
    # file (as shown in problems) → its yamlsource.SourceMap, so that checks run after loading
    # (`ratecard.lint`) can point at the key or value they are about.
    sources: Mapping[str, SourceMap] = field(default_factory=dict, compare=False, repr=False)
    # file → the canonical text of its meaning (see `ratecard.rules.canonical`), so that the
    # versions that priced a period have a fingerprint of their own (`fingerprint_of`).
    payloads: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    sellers: tuple[Seller, ...] = ()  # optional: the versions of the seller file, oldest first
    account_terms: tuple[AccountTerms, ...] = ()  # optional kind; oldest first
    taxes: tuple = ()  # optional: the versions of the tax rules (`ratecard.tax.TaxRules`), oldest first

    def seller_at(self, period: str) -> Seller | None:
        """The seller details in force for `period`, or None (the rule set names no seller then)."""
        from .periods import parse_period

        return version_at(self.sellers, parse_period(period)) if self.sellers else None

    def tax_at(self, period: str):
        """The tax rules in force for `period`, or None (its invoices carry no tax)."""
        from .periods import parse_period

        return version_at(self.taxes, parse_period(period)) if self.taxes else None

    def terms_in_force(self, period: str) -> AccountTerms | None:
        """The account-terms version that applies to `period`, or None (no negotiated terms)."""
        from .periods import parse_period

        return version_at(self.account_terms, parse_period(period)) if self.account_terms else None

    def in_force(self, period: str):
        """The price book, API mapping and settlement policy that rate `period` (YYYY-MM)."""
        from .periods import parse_period

        start = parse_period(period)
        return tuple(_version_at(versions, start, period, kind)
                     for versions, kind in ((self.pricing, "price book"),
                                            (self.mappings, "API mapping"),
                                            (self.policies, "settlement policy")))

    def fingerprint_of(self, *versions) -> str:
        """The fingerprint of some versions only: of those in force, it is what a bill records.

        It depends on nothing but those versions, so adding a later version (next year's prices)
        leaves the fingerprint of every period before it, and so its bills, unchanged. For a rule
        set with one version of each kind it equals `fingerprint`.
        """
        try:
            return digest(self.payloads[v.source] for v in versions)
        except KeyError:
            return self.fingerprint  # a rule set built without payloads: the whole set is all we know

    @property
    def latest(self):
        return self.pricing[-1], self.mappings[-1], self.policies[-1]


def books_while_in_force(pricing, versions):
    """(version, its document, period start, price book) for each price book in force while each
    version of another dated kind is (tax rules, account terms): what a check of the categories a
    version names must look in. `pricing` and `versions` are (version, document) pairs, oldest first."""
    for i, (version, doc) in enumerate(versions):
        end = versions[i + 1][0].effective_from if i + 1 < len(versions) else date.max
        starts = {version.effective_from.replace(day=1)} | {
            p.effective_from.replace(day=1) for p, _ in pricing if version.effective_from <= p.effective_from < end}
        for start in sorted(starts):
            chosen = version_at(pricing, start, lambda pair: pair[0].effective_from)
            if chosen is not None:
                yield version, doc, start, chosen[0]


def version_at(versions, start: date, effective=lambda version: version.effective_from):
    """The version in force for the period starting on `start` (a 1st of a month), or None.

    That is the last version starting on or before `start`; the first version of a kind may start
    mid-month, and then prices its whole first period. `versions` are oldest first; `effective`
    reads a version's start date (for the loader, which pairs versions with their documents).
    """
    chosen = None
    for version in versions:
        if effective(version) <= start:
            chosen = version
    if chosen is None and versions:
        first = effective(versions[0])
        if (first.year, first.month) == (start.year, start.month):
            chosen = versions[0]
    return chosen


def digest(payloads) -> str:
    """sha256 over canonical document texts, in a fixed order: the order of files does not matter."""
    text = "\n".join(sorted(payloads))
    return f"sha256:{hashlib.sha256(text.encode('utf-8')).hexdigest()}"


def _version_at(versions, start: date, period: str, kind: str):
    from .errors import NoRulesInForce

    chosen = version_at(versions, start)
    if chosen is not None:
        return chosen
    first = versions[0]
    raise NoRulesInForce(
        f"no {kind} is in force for period {period}: the earliest starts on "
        f"{first.effective_from.isoformat()} ({first.source})"
    )


def frozen_mapping(items) -> Mapping:
    return MappingProxyType(dict(items))
