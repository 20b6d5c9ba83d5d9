"""The bill model: what rating produces and every renderer and store consumes."""

from __future__ import annotations

import decimal
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, fields
from typing import TYPE_CHECKING
from decimal import Decimal

from .exact import EXACT, decimal_text

if TYPE_CHECKING:
    from .tax import BillTax

BILL_SCHEMA_VERSION = 3
READABLE_SCHEMA_VERSIONS = (1, 2, 3)  # version 1: no price models, no adjustments; version 2: no tax

# Differences of exact amounts are exact too, whatever the caller's decimal context.
_EXACT = EXACT


def money(value: Decimal) -> str:
    """A bill's amount for JSON: exact decimal text with the digits of its computation (an
    unrounded line keeps its unit price's places, a rounded total the quantum's), never a float or
    an exponent (`exact.decimal_text`, the one spelling rule)."""
    return decimal_text(value)


def quantity(value):
    """A count for JSON: whole numbers as JSON integers (as in version 1), decimal quantities
    (GB, seconds) as exact decimal text."""
    return value if type(value) is int else decimal_text(value)


def read_quantity(value):
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"a quantity must be a whole number or decimal text, got {value!r}")
    return value if isinstance(value, int) else Decimal(value)


@dataclass(frozen=True, slots=True)
class ApiUsage:
    """One API's calls within a category line."""

    api: str
    billable_api: bool
    calls: int  # every call seen
    billable_calls: int  # the calls that count toward the category's tier and charge


@dataclass(frozen=True, slots=True)
class TierCharge:
    """One priced part of a line: a tier of units (tiered, package) or of transaction value
    (percentage), or a per-transaction fee or bound. The optional fields say which."""

    tier: int  # 1-based; 0 for a part that belongs to no tier (free units, a per-transaction fee)
    calls: int | Decimal  # units in the part (transactions for a percentage fee)
    unit_price: Decimal  # per unit, per block (package) or per transaction (fixed fee); 0 for a rate
    amount: Decimal  # exact, flat amount included
    flat_amount: Decimal | None = None  # added once for the tier
    blocks: int | None = None  # package: blocks billed
    package_size: int | Decimal | None = None  # package: units per block
    basis: Decimal | None = None  # percentage: the transaction amount the rate applies to
    rate: Decimal | None = None  # percentage: percent of `basis`
    note: str = ""  # what the part is, in words, for parts that are not a plain unit price

    @property
    def plain(self) -> bool:
        return self.note == ""

    def to_dict(self) -> dict:
        out = {"tier": self.tier, "calls": quantity(self.calls), "unit_price": money(self.unit_price),
               "amount": money(self.amount)}
        for key in ("flat_amount", "basis", "rate"):
            value = getattr(self, key)
            if value is not None:
                out[key] = money(value)
        if self.blocks is not None:
            out["blocks"] = self.blocks
            out["package_size"] = quantity(self.package_size)
        if self.note:
            out["note"] = self.note
        return out

    @classmethod
    def from_dict(cls, c: dict) -> TierCharge:
        dec = lambda key: None if c.get(key) is None else Decimal(c[key])  # noqa: E731
        return cls(c["tier"], read_quantity(c["calls"]), Decimal(c["unit_price"]), Decimal(c["amount"]),
                   dec("flat_amount"), c.get("blocks"), None if c.get("package_size") is None
                   else read_quantity(c["package_size"]), dec("basis"), dec("rate"), c.get("note", ""))


@dataclass(frozen=True, slots=True)
class PackUse:
    pack_id: str
    units_used: int
    units_left: int


@dataclass(frozen=True, slots=True)
class BillLine:
    category: str
    name: str
    tier_mode: str
    apis: tuple[ApiUsage, ...]
    calls: int  # billable calls
    free_calls: int  # calls never charged: free APIs and non-billable outcomes
    free_quota_used: int
    packs_used: tuple[PackUse, ...]
    payg_calls: int  # billable calls left after free quota and packs: they decide the tier
    tier: int  # tier reached by payg_calls (1-based)
    unit_price: Decimal  # unit price of the tier reached
    charges: tuple[TierCharge, ...]  # one per tier priced (one in volume mode)
    amount: Decimal  # exact
    charge: Decimal  # what the line adds to the total: rounded in per-line mode, else exact
    model: str = "tiered"  # the category's price model
    unit: str = ""  # the category's unit when it has its own (GB, second), else ""

    @property
    def needs_version_2(self) -> bool:
        """Whether the line says what bill schema version 1 cannot: another price model, its own
        unit (decimal quantities), or priced parts beyond a plain unit price."""
        return self.model != "tiered" or bool(self.unit) or any(c.flat_amount is not None or c.note
                                                               for c in self.charges)

    def to_dict(self, version: int = 2) -> dict:
        head = {"category": self.category, "name": self.name}
        if version >= 2:
            head |= {"model": self.model, "unit": self.unit}
        return head | {
            "tier_mode": self.tier_mode,
            "calls": quantity(self.calls),
            "free_calls": quantity(self.free_calls),
            "free_quota_used": quantity(self.free_quota_used),
            "packs_used": [{"pack_id": p.pack_id, "units_used": p.units_used, "units_left": p.units_left}
                           for p in self.packs_used],
            "payg_calls": quantity(self.payg_calls),
            "tier": self.tier,
            "unit_price": money(self.unit_price),
            "amount": money(self.amount),
            "charge": money(self.charge),
            "tiers": [c.to_dict() for c in self.charges],
            "apis": [{"api": a.api, "billable_api": a.billable_api, "calls": quantity(a.calls),
                      "billable_calls": quantity(a.billable_calls)} for a in self.apis],
        }


ADJUSTMENT_KINDS = ("discount", "maximum-spend", "minimum-spend", "commitment", "credit")


@dataclass(frozen=True, slots=True)
class Adjustment:
    """A line added after pricing (see `ratecard.adjust` for the order): a discount, a category's
    spend limit, a minimum commitment's shortfall or a credit. `amount` is signed: negative takes
    money off."""

    kind: str  # one of ADJUSTMENT_KINDS
    name: str  # as the rule names it
    category: str | None  # the category it applies to; None for the whole bill
    basis: Decimal  # the amount it was worked out from
    amount: Decimal  # exact, signed
    charge: Decimal  # what it adds to the total: rounded in per-line mode, else exact
    note: str  # how it was worked out, in words
    scope: str  # "list" (the price book's terms) or "account" (the account's negotiated terms)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "category": self.category, "basis": money(self.basis),
                "amount": money(self.amount), "charge": money(self.charge), "note": self.note, "scope": self.scope}

    @classmethod
    def from_dict(cls, d: dict) -> Adjustment:
        return cls(d["kind"], d["name"], d["category"], Decimal(d["basis"]), Decimal(d["amount"]),
                   Decimal(d["charge"]), d["note"], d["scope"])


@dataclass(frozen=True, slots=True)
class UnratedUsage:
    """Usage the rules could not price (an API they do not list), kept so nothing is lost."""

    api: str
    calls: int


class FrozenDict(dict):
    """A read-only dict, so that one instance can be shared by every bill a tariff prices."""

    __slots__ = ()

    def _readonly(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} is read-only")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _readonly

    def __reduce__(self):
        return type(self), (dict(self),)

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


class Lines(Sequence):
    """A bill's lines, built on first use.

    Rating works out every amount at once; the per-API breakdown and the line records that
    invoices show are built from the rated figures only when something reads them, so a caller
    that needs only totals (a gateway, a bulk what-if) does not pay for them. Immutable; equal to
    the tuple of its lines; pickles and copies as that tuple.
    """

    __slots__ = ("_build", "_args", "_lines")

    def __init__(self, build, args: tuple):
        self._build, self._args = build, args
        self._lines = None

    def _get(self) -> tuple:
        lines = self._lines
        if lines is None:
            # The inputs are kept: two threads reading a new bill at once both build (equal) lines.
            lines = self._lines = self._build(*self._args)
        return lines

    def __getitem__(self, index):
        return self._get()[index]

    def __len__(self) -> int:
        return len(self._get())

    def __iter__(self):
        return iter(self._get())

    def __eq__(self, other) -> bool:
        if isinstance(other, Lines):
            other = other._get()
        return self._get() == other

    def __hash__(self) -> int:
        return hash(self._get())

    def __repr__(self) -> str:
        return repr(self._get())

    def __reduce__(self):
        return tuple, (self._get(),)

    def __deepcopy__(self, memo):
        return self._get()


@dataclass(frozen=True, slots=True)
class Bill:
    account: str
    period: str
    currency: str
    unit: str
    lines: Sequence[BillLine]  # a tuple, or Lines built on first use
    subtotal: Decimal  # exact sum of line amounts
    total: Decimal  # after the policy's rounding
    rounding: Mapping[str, str]  # {"quantum", "mode", "apply"} as text (read-only)
    rules_name: str
    rules_fingerprint: str
    rule_versions: Mapping[str, str]  # kind -> effective_from (YYYY-MM-DD) (read-only)
    unrated: tuple[UnratedUsage, ...] = ()
    warnings: tuple[str, ...] = ()
    adjustments: tuple[Adjustment, ...] = ()  # after the lines, in the order they were applied
    tax: BillTax | None = None  # when tax rules are in force; `total` is then its gross

    @property
    def pre_tax_total(self) -> Decimal:
        """The total the policy's rounding gave, before tax is added (exclusive prices) or worked
        out of it (inclusive prices, where it is the gross)."""
        tax = self.tax
        if tax is None or tax.prices == "inclusive":
            return self.total
        return tax.net

    @property
    def rounding_adjustment(self) -> Decimal:
        return _EXACT.subtract(self.pre_tax_total, self.subtotal)

    @property
    def calls(self) -> int:
        return sum(a.calls for line in self.lines for a in line.apis) + sum(u.calls for u in self.unrated)

    @property
    def schema_version(self) -> int:
        """The oldest bill schema version that says all this bill says: 1 for a bill of plain
        per-unit tiered lines and no adjustments (as every bill was before price models, so those
        bills are byte-for-byte what they were), 3 for a bill with tax, else 2."""
        if self.tax is not None:
            return 3
        return 2 if (self.adjustments or "account-terms" in self.rule_versions
                     or any(line.needs_version_2 for line in self.lines)) else 1

    def to_dict(self) -> dict:
        version = self.schema_version
        out = {
            "schema_version": version,
            "account": self.account,
            "period": self.period,
            "currency": self.currency,
            "unit": self.unit,
            "lines": [line.to_dict(version) for line in self.lines],
        }
        if version >= 2:
            out["adjustments"] = [a.to_dict() for a in self.adjustments]
        return out | {
            "subtotal": money(self.subtotal),
            "rounding": dict(self.rounding),
            "rounding_adjustment": money(self.rounding_adjustment),
            "total": money(self.total),
            **({"tax": self.tax.to_dict()} if self.tax is not None else {}),
            "rules": {"name": self.rules_name, "versions": dict(self.rule_versions)},
            "rules_fingerprint": self.rules_fingerprint,
            "unrated": [{"api": u.api, "calls": u.calls} for u in self.unrated],
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Bill:
        """The bill that `to_dict` gave, e.g. read back from stored JSON, so it can be re-rendered as it was."""
        from .errors import RatecardError

        version = data.get("schema_version") if isinstance(data, dict) else None
        if type(version) is not int or version not in READABLE_SCHEMA_VERSIONS:
            raise RatecardError(f"not a stored bill of schema version "
                                f"{' or '.join(map(str, READABLE_SCHEMA_VERSIONS))}")
        try:
            # Version 1 had whole-number counts only, tiered lines and no adjustments: the defaults.
            q = read_quantity
            lines = tuple(BillLine(
                category=d["category"], name=d["name"], tier_mode=d["tier_mode"],
                apis=tuple(ApiUsage(a["api"], a["billable_api"], q(a["calls"]), q(a["billable_calls"]))
                           for a in d["apis"]),
                calls=q(d["calls"]), free_calls=q(d["free_calls"]), free_quota_used=q(d["free_quota_used"]),
                packs_used=tuple(PackUse(p["pack_id"], p["units_used"], p["units_left"]) for p in d["packs_used"]),
                payg_calls=q(d["payg_calls"]), tier=d["tier"], unit_price=Decimal(d["unit_price"]),
                charges=tuple(TierCharge.from_dict(c) for c in d["tiers"]),
                amount=Decimal(d["amount"]), charge=Decimal(d["charge"]),
                model=d.get("model", "tiered") if version > 1 else "tiered",
                unit=d.get("unit", "") if version > 1 else "") for d in data["lines"])
            adjustments = tuple(Adjustment.from_dict(a) for a in data["adjustments"]) if version > 1 else ()
            return cls(account=data["account"], period=data["period"], currency=data["currency"], unit=data["unit"],
                       lines=lines, subtotal=Decimal(data["subtotal"]), total=Decimal(data["total"]),
                       rounding=dict(data["rounding"]), rules_name=data["rules"]["name"],
                       rules_fingerprint=data["rules_fingerprint"], rule_versions=dict(data["rules"]["versions"]),
                       unrated=tuple(UnratedUsage(u["api"], u["calls"]) for u in data["unrated"]),
                       warnings=tuple(data["warnings"]), adjustments=adjustments,
                       tax=_read_tax(data["tax"]) if version > 2 else None)
        except (KeyError, TypeError, decimal.InvalidOperation) as exc:
            raise RatecardError(f"not a stored bill: missing or bad field ({type(exc).__name__}: {exc})") from None


def _read_tax(data: dict):
    from .tax import BillTax

    return BillTax.from_dict(data)


def builder(cls):
    """A fast positional constructor for one of the frozen, slotted records above.

    A frozen dataclass's `__init__` stores each field with `object.__setattr__`, which dominates
    the cost of building a bill. The builder fills a plain slotted twin of the class (same slots,
    same layout) with ordinary attribute stores and then gives the object its real class: the
    result is an ordinary, frozen instance of `cls`, equal to `cls(*args)`. For the rating hot path
    only; everything else should call the class.
    """
    return builder_with(cls)


def builder_with(cls, **constants):
    """`builder(cls)` for records that share some fields: those named in `constants` are stored
    from the builder's own namespace (values, never text), and the builder takes the others, in
    field order. A tariff builds every bill with its currency, unit, rounding and fingerprint this
    way, without passing them on every call."""
    names = tuple(f.name for f in fields(cls))
    if getattr(cls, "__slots__", None) != names or hasattr(cls, "__post_init__"):
        raise TypeError(f"builder() needs a slotted dataclass without __post_init__, not {cls.__name__}")
    unknown = set(constants) - set(names)
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {sorted(unknown)[0]!r}")
    twin = type(f"_{cls.__name__}Draft", (), {"__slots__": names})
    defaults = {f"D_{f.name}": f.default for f in fields(cls) if f.default is not MISSING and f.name not in constants}
    params = ", ".join(f"{n}=D_{n}" if f"D_{n}" in defaults else n for n in names if n not in constants)
    stores = "".join(f"    o.{n} = {'K_' + n if n in constants else n}\n" for n in names)
    source = (f"def build_{cls.__name__}({params}):\n    o = new(twin)\n{stores}"
              f"    o.__class__ = cls\n    return o\n")
    namespace = {"new": object.__new__, "twin": twin, "cls": cls, **defaults,
                 **{f"K_{n}": v for n, v in constants.items()}}
    exec(source, namespace)  # noqa: S102 - generated from the dataclass's own field names
    return namespace[f"build_{cls.__name__}"]
