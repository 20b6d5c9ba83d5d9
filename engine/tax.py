"""Taxes as rules: a `tax` rule file's model, and the tax of one bill (pure: no I/O, no clock).

Tax applies after pricing and adjustments (docs/rules.md, "Tax rules", says the same), to what each
line and adjustment adds to the bill (its `charge`). Each part of the bill gets one treatment, in
this order:

1. an exemption naming its category (or every category) and the buyer's country (or every country);
2. reverse charge, when the buyer has a tax id and its country is one the rule lists;
3. the rate of the buyer's region (`US-CA`), else of its country;
4. the rule's `other_countries` (no tax, with its wording); without it the bill is refused.

Parts with one treatment form one tax line. An adjustment on the whole bill (a bill discount, a
commitment, a credit) is taxed with the lines when they all have one treatment; when they do not,
there is no single right split and the bill is refused rather than taxed on a guess.

`exclusive` prices are net: tax = net × rate / 100 and gross = net + tax. `inclusive` prices
include the tax: tax = gross × rate / (100 + rate) and net = gross − tax. Tax is rounded to the
settlement policy's quantum, per line or once per tax line, with the mode the rule names. The bill's
total is the gross: what the ledger debits.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from .errors import RatingError
from .model import ROUNDING_MODES

STANDARD, EXEMPT, REVERSE_CHARGE, OUTSIDE_SCOPE = "standard", "exempt", "reverse-charge", "outside-scope"
TREATMENTS = (STANDARD, EXEMPT, REVERSE_CHARGE, OUTSIDE_SCOPE)

_ZERO = Decimal(0)
_HUNDRED = Decimal(100)
# Exact for sums and products of rule and bill amounts; the division of inclusive prices is rounded
# to the quantum right after, far below the 60th digit.
_CONTEXT = decimal.Context(prec=60, traps=[decimal.InvalidOperation, decimal.Overflow, decimal.DivisionByZero])


class TaxError(RatingError):
    """A bill the tax rules cannot tax (the buyer's country is unknown or has no rate)."""


@dataclass(frozen=True)
class TaxRate:
    country: str
    region: str | None
    rate: Decimal  # percent
    label: str


@dataclass(frozen=True)
class Exemption:
    categories: frozenset | None  # None: every category
    countries: frozenset | None  # None: every country
    label: str
    wording: str

    def covers(self, category: str | None, country: str) -> bool:
        return ((self.countries is None or country in self.countries)
                and (self.categories is None or (category is not None and category in self.categories)))


@dataclass(frozen=True)
class ReverseCharge:
    countries: frozenset
    label: str
    wording: str


@dataclass(frozen=True)
class NoTax:
    """What a bill of a buyer in a country without a rate says (`other_countries`)."""

    label: str
    wording: str


@dataclass(frozen=True)
class TaxRules:
    """A version of the rule set's tax file."""

    effective_from: date
    prices: str  # "exclusive" | "inclusive"
    mode: str  # rounding mode, one of model.ROUNDING_MODES
    apply: str  # "per-line" | "per-invoice"
    rates: tuple[TaxRate, ...]
    exemptions: tuple[Exemption, ...] = ()
    reverse_charge: ReverseCharge | None = None
    other_countries: NoTax | None = None
    source: str = ""

    def rate_of(self, country: str, region: str | None) -> TaxRate | None:
        general = None
        for rate in self.rates:
            if rate.country != country:
                continue
            if rate.region is None:
                general = general or rate
            elif rate.region == region:
                return rate
        return general


@dataclass(frozen=True, slots=True)
class TaxLine:
    """The tax of the bill's parts that share one treatment: `basis` is what they add up to (net
    for exclusive prices, gross for inclusive ones), `tax` the rounded tax."""

    label: str
    treatment: str  # one of TREATMENTS
    rate: Decimal  # percent; 0 unless standard
    basis: Decimal
    tax: Decimal
    wording: str = ""

    def to_dict(self) -> dict:
        return {"label": self.label, "treatment": self.treatment, "rate": format(self.rate, "f"),
                "basis": format(self.basis, "f"), "tax": format(self.tax, "f"), "wording": self.wording}

    @classmethod
    def from_dict(cls, d: dict) -> TaxLine:
        return cls(d["label"], d["treatment"], Decimal(d["rate"]), Decimal(d["basis"]), Decimal(d["tax"]),
                   d.get("wording", ""))


@dataclass(frozen=True, slots=True)
class BillTax:
    """A taxed bill's totals: net + tax = gross, and the gross is the bill's total."""

    prices: str
    rounding: tuple[str, str]  # (mode, apply)
    lines: tuple[TaxLine, ...]
    net: Decimal
    tax: Decimal
    gross: Decimal
    country: str = ""  # the buyer's country the rules were applied for ("" when unknown)

    def to_dict(self) -> dict:
        return {"prices": self.prices, "rounding": {"mode": self.rounding[0], "apply": self.rounding[1]},
                "country": self.country, "lines": [t.to_dict() for t in self.lines],
                "net": format(self.net, "f"), "tax": format(self.tax, "f"), "gross": format(self.gross, "f")}

    @classmethod
    def from_dict(cls, d: dict) -> BillTax:
        return cls(d["prices"], (d["rounding"]["mode"], d["rounding"]["apply"]),
                   tuple(TaxLine.from_dict(t) for t in d["lines"]), Decimal(d["net"]), Decimal(d["tax"]),
                   Decimal(d["gross"]), d.get("country", ""))


def _treatment(rules: TaxRules, category, country: str, region, business: bool, account: str):
    for exemption in rules.exemptions:
        if exemption.covers(category, country):
            return (exemption.label, EXEMPT, _ZERO, exemption.wording)
    rc = rules.reverse_charge
    if rc is not None and business and country in rc.countries:
        return (rc.label, REVERSE_CHARGE, _ZERO, rc.wording)
    rate = rules.rate_of(country, region) if country else None
    if rate is not None:
        return (rate.label, STANDARD, rate.rate, "")
    if rules.other_countries is not None:
        return (rules.other_countries.label, OUTSIDE_SCOPE, _ZERO, rules.other_countries.wording)
    if not country:
        raise TaxError(f"the tax rules ({rules.source}) tax by the buyer's country, and account {account or '?'} "
                       f"has none; set it (`ratecard account update {account or 'ACCOUNT'} --country CC`) or give "
                       "the tax rules `other_countries`")
    raise TaxError(f"the tax rules ({rules.source}) have no rate for buyers in {country} (account "
                   f"{account or '?'}); add a rate for {country} or `other_countries`")


def split_country(country: str) -> tuple[str, str | None]:
    """`US-CA` → (`US`, `CA`); `DE` → (`DE`, None)."""
    head, _, region = (country or "").partition("-")
    return head, region or None


def tax_of(rules: TaxRules, parts, pre_tax_total: Decimal, quantum: Decimal, buyer, account: str = "") -> BillTax:
    """The tax of a bill whose parts are `(category or None, charge)` (lines, then adjustments) and
    whose total before tax (rounded by the policy) is `pre_tax_total`. `buyer` is a `model.Party` or None."""
    country, region = split_country(buyer.country if buyer is not None else "")
    business = bool(buyer is not None and buyer.tax_id)
    rounding = ROUNDING_MODES[rules.mode]
    inclusive = rules.prices == "inclusive"

    def rounded(amount: Decimal, rate: Decimal) -> Decimal:
        if not rate:
            return _ZERO.quantize(quantum)
        share = (_CONTEXT.divide(_CONTEXT.multiply(amount, rate), _CONTEXT.add(_HUNDRED, rate)) if inclusive
                 else _CONTEXT.divide(_CONTEXT.multiply(amount, rate), _HUNDRED))
        return share.quantize(quantum, rounding=rounding, context=_CONTEXT)

    groups: dict[tuple, list] = {}  # treatment → [basis, tax], in the order first met
    whole_bill = []
    for category, charge in parts:
        if category is None:
            whole_bill.append(charge)
            continue
        key = _treatment(rules, category, country, region, business, account)
        _add_part(groups, key, charge, rounded if rules.apply == "per-line" else None)
    if whole_bill:
        if len(groups) > 1:
            raise TaxError(f"a bill-wide adjustment of account {account or '?'} applies to lines taxed in "
                           f"different ways ({', '.join(k[0] for k in groups)}), and the tax rules "
                           f"({rules.source}) do not say how to split it; bill-wide adjustments cannot be taxed "
                           "here: make them category adjustments")
        key = next(iter(groups)) if groups else _treatment(rules, None, country, region, business, account)
        for charge in whole_bill:
            _add_part(groups, key, charge, rounded if rules.apply == "per-line" else None)
    lines = []
    for (label, treatment, rate, wording), (basis, tax) in groups.items():
        if rules.apply != "per-line":
            tax = rounded(basis, rate)
        lines.append(TaxLine(label, treatment, rate, basis, tax if tax else _ZERO.quantize(quantum), wording))
    total_tax = _ZERO.quantize(quantum)
    for line in lines:
        total_tax = _CONTEXT.add(total_tax, line.tax)
    if inclusive:
        gross, net = pre_tax_total, _CONTEXT.subtract(pre_tax_total, total_tax)
    else:
        net, gross = pre_tax_total, _CONTEXT.add(pre_tax_total, total_tax)
    return BillTax(rules.prices, (rules.mode, rules.apply), tuple(lines), net, total_tax, gross,
                   buyer.country if buyer is not None else "")


def _add_part(groups, key, charge, per_line) -> None:
    entry = groups.setdefault(key, [_ZERO, _ZERO])
    entry[0] = _CONTEXT.add(entry[0], charge)
    if per_line is not None:
        entry[1] = _CONTEXT.add(entry[1], per_line(charge, key[2]))
