"""Documents a finance team files, beyond the invoice itself: supplementary invoices and credit notes.
Pure: bills in (as their JSON dicts), the difference out; the ledger numbers and records them.

A recorded invoice is never altered. When a settled period is rated again with usage that prices
differently, the difference between the bill the period now stands at (its invoice, or its latest
correction) and the new one is a new document: a supplementary invoice when the new bill is higher,
a credit note when it is lower, each referring to the period's invoice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from .exact import EXACT, decimal_text
from .formatting import money_text
from .model import Party

INVOICE = "invoice"
SUPPLEMENTARY = "supplementary-invoice"
CREDIT_NOTE = "credit-note"
TITLES = {INVOICE: "Invoice", SUPPLEMENTARY: "Supplementary invoice", CREDIT_NOTE: "Credit note"}

# Why a document was issued.
SETTLEMENT, CORRECTION, MANUAL, VOID = "settlement", "correction", "manual", "void"

ZERO = Decimal(0)


@dataclass(frozen=True)
class LineChange:
    """One category of a period's bill, before and after a correction."""

    category: str
    name: str
    calls_before: int
    calls_after: int
    amount_before: Decimal  # the line's charge, as billed
    amount_after: Decimal

    @property
    def difference(self) -> Decimal:
        return EXACT.subtract(self.amount_after, self.amount_before)

    def to_dict(self, currency: str) -> dict:
        return {"category": self.category, "name": self.name, "calls_before": self.calls_before,
                "calls_after": self.calls_after, "amount_before": money_text(self.amount_before, currency),
                "amount_after": money_text(self.amount_after, currency),
                "difference": money_text(self.difference, currency)}


@dataclass(frozen=True)
class TaxShare:
    """The tax in a supplementary invoice's or credit note's amount, by tax line of its invoice:
    positive is what the document charges (or credits). amount = net + tax."""

    lines: tuple[tuple[str, Decimal, Decimal], ...]  # (label, rate in percent, tax)
    net: Decimal
    tax: Decimal
    prices: str = "exclusive"

    def to_dict(self, currency: str) -> dict:
        return {"prices": self.prices, "lines": [{"label": label, "rate": decimal_text(rate),
                                                  "tax": money_text(tax, currency)} for label, rate, tax in self.lines],
                "net": money_text(self.net, currency), "tax": money_text(self.tax, currency)}

    @classmethod
    def from_dict(cls, d: dict | None) -> TaxShare | None:
        if not d:
            return None
        return cls(tuple((x["label"], Decimal(x["rate"]), Decimal(x["tax"])) for x in d["lines"]),
                   Decimal(d["net"]), Decimal(d["tax"]), d.get("prices", "exclusive"))


def _tax_lines(bill: dict) -> dict:
    tax = bill.get("tax") or {}
    return {(t["label"], t["rate"]): Decimal(t["tax"]) for t in tax.get("lines", ())}


def tax_difference(before: dict, after: dict, sign: int) -> TaxShare | None:
    """The tax of the document that brings a period from the bill `before` to `after` (`sign` 1 for a
    supplementary invoice, -1 for a credit note), or None when neither bill has tax."""
    if not before.get("tax") and not after.get("tax"):
        return None
    old, new = _tax_lines(before), _tax_lines(after)
    lines = []
    for key in list(old) + [k for k in new if k not in old]:
        change = EXACT.subtract(new.get(key, ZERO), old.get(key, ZERO))
        lines.append((key[0], Decimal(key[1]), change if sign > 0 else -change))
    tax = ZERO
    for _, _, amount in lines:
        tax = EXACT.add(tax, amount)
    gross = abs(EXACT.subtract(Decimal(after["total"]), Decimal(before["total"])))
    prices = (after.get("tax") or before.get("tax") or {}).get("prices", "exclusive")
    return TaxShare(tuple(lines), EXACT.subtract(gross, tax), tax, prices)


def tax_share(bill: dict | None, amount: Decimal) -> TaxShare | None:
    """The tax in `amount`, a part of what the taxed bill `bill` charges (a manual credit note, a
    void): each tax line's share in proportion to the bill's gross, rounded as the bill's tax was,
    the last line taking what rounding leaves so that the shares add up. None for an untaxed bill."""
    tax = (bill or {}).get("tax")
    if not tax:
        return None
    import decimal

    from .model import ROUNDING_MODES

    gross = Decimal(tax["gross"])
    quantum = Decimal(1).scaleb(int(Decimal(tax["tax"]).as_tuple().exponent))
    context = decimal.Context(prec=60)
    lines, taken = [], ZERO
    total_tax = Decimal(tax["tax"]) if amount == gross else (
        ZERO if not gross else context.divide(context.multiply(amount, Decimal(tax["tax"])), gross).quantize(
            quantum, rounding=ROUNDING_MODES[tax["rounding"]["mode"]], context=context))
    bill_tax = Decimal(tax["tax"])
    for i, t in enumerate(tax["lines"]):
        if i == len(tax["lines"]) - 1:
            share = EXACT.subtract(total_tax, taken)
        elif not bill_tax:
            share = ZERO.quantize(quantum)
        else:
            share = context.divide(context.multiply(total_tax, Decimal(t["tax"])), bill_tax).quantize(
                quantum, rounding=ROUNDING_MODES[tax["rounding"]["mode"]], context=context)
        taken = EXACT.add(taken, share)
        lines.append((t["label"], Decimal(t["rate"]), share))
    return TaxShare(tuple(lines), EXACT.subtract(amount, total_tax), total_tax, tax["prices"])


@dataclass(frozen=True)
class Correction:
    """What re-rating a settled period changes: the lines that differ and the totals."""

    kind: str  # SUPPLEMENTARY | CREDIT_NOTE
    currency: str
    total_before: Decimal
    total_after: Decimal
    lines: tuple[LineChange, ...]
    tax: TaxShare | None = None

    @property
    def amount(self) -> Decimal:
        """What the document charges (a supplementary invoice) or credits (a credit note): positive."""
        return abs(EXACT.subtract(self.total_after, self.total_before))


def _lines(bill: dict) -> dict[str, dict]:
    lines = {line["category"]: line for line in bill.get("lines", ())}
    # Adjustments (bill schema version 2: discounts, spend limits, a commitment's shortfall, credits)
    # are lines of the bill too: a change in one of them is a changed line of the correction.
    for a in bill.get("adjustments", ()):
        key = f"{a['kind']}:{a['category'] or ''}:{a['name']}"
        lines[key] = {"name": a["name"], "calls": 0, "charge": a["charge"]}
    return lines


def correction(before: dict, after: dict) -> Correction | None:
    """The document that brings a period from the bill `before` to the bill `after` (both as their
    JSON dicts), or None when the totals are equal (nothing to charge or credit)."""
    if before["currency"] != after["currency"]:
        raise ValueError(f"a {before['currency']} bill cannot be corrected by a {after['currency']} one")
    total_before, total_after = Decimal(before["total"]), Decimal(after["total"])
    if total_before == total_after:
        return None
    old, new = _lines(before), _lines(after)
    changes = []
    for category in list(old) + [c for c in new if c not in old]:
        a, b = old.get(category), new.get(category)
        change = LineChange(category, (b or old[category])["name"], a["calls"] if a else 0, b["calls"] if b else 0,
                            Decimal(a["charge"]) if a else ZERO, Decimal(b["charge"]) if b else ZERO)
        if change.calls_before != change.calls_after or change.difference:
            changes.append(change)
    kind = SUPPLEMENTARY if total_after > total_before else CREDIT_NOTE
    return Correction(kind, after["currency"], total_before, total_after, tuple(changes),
                      tax_difference(before, after, 1 if kind == SUPPLEMENTARY else -1))


def due_date(issued: date, deduction_last_day: date) -> date:
    """When a document's amount is due: the last day of its period's deduction window, or the issue
    date itself for a document issued after the window (it is taken from the balance at once)."""
    return max(issued, deduction_last_day)


@dataclass(frozen=True)
class DocumentView:
    """A supplementary invoice or credit note as it is printed (text, Markdown, HTML, PDF) and as
    `--format json` shows it. Dates are in the policy's time zone."""

    number: str
    kind: str
    account: str
    service: str
    period: str
    period_start: date
    period_end: date
    time_zone: str
    issue_date: date
    due_date: date | None  # a credit note is not due: it is credited when issued
    refers_to: str
    cause: str
    reason: str
    currency: str
    amount: Decimal
    lines: tuple[LineChange, ...] = ()
    total_before: Decimal | None = None  # a correction's invoice total before and after it
    total_after: Decimal | None = None
    rules_name: str = ""
    rules_fingerprint: str = ""
    seller: Party | None = None
    buyer: Party | None = None
    paper: str = "A4"
    tax: TaxShare | None = None  # the tax in `amount`, when the invoice it refers to is taxed
    locale: str = "en"  # the settlement policy's: the language the document is written in

    @property
    def title(self) -> str:
        return TITLES[self.kind]

    def to_dict(self) -> dict:
        def money(v: Decimal | None) -> str | None:
            return None if v is None else money_text(v, self.currency)

        return {"number": self.number, "kind": self.kind, "account": self.account, "service": self.service,
                "period": self.period, "service_period": [self.period_start.isoformat(), self.period_end.isoformat()],
                "time_zone": self.time_zone, "issue_date": self.issue_date.isoformat(),
                "due_date": self.due_date.isoformat() if self.due_date else None, "refers_to": self.refers_to,
                "cause": self.cause, "reason": self.reason, "currency": self.currency, "amount": money(self.amount),
                "total_before": money(self.total_before), "total_after": money(self.total_after),
                "lines": [line.to_dict(self.currency) for line in self.lines], "rules_name": self.rules_name,
                "rules_fingerprint": self.rules_fingerprint,
                "seller": self.seller.to_dict() if self.seller else None,
                "buyer": self.buyer.to_dict() if self.buyer else None, "paper": self.paper,
                **({"tax": self.tax.to_dict(self.currency)} if self.tax is not None else {}),
                **({"locale": self.locale} if self.locale != "en" else {})}

    @classmethod
    def from_dict(cls, d: dict) -> DocumentView:
        day, dec = date.fromisoformat, (lambda v: None if v is None else Decimal(v))
        lines = tuple(LineChange(x["category"], x["name"], x["calls_before"], x["calls_after"],
                                 Decimal(x["amount_before"]), Decimal(x["amount_after"])) for x in d["lines"])
        return cls(d["number"], d["kind"], d["account"], d["service"], d["period"], day(d["service_period"][0]),
                   day(d["service_period"][1]), d["time_zone"], day(d["issue_date"]),
                   day(d["due_date"]) if d["due_date"] else None, d["refers_to"], d["cause"], d["reason"],
                   d["currency"], Decimal(d["amount"]), lines, dec(d["total_before"]), dec(d["total_after"]),
                   d["rules_name"], d["rules_fingerprint"], Party.from_dict(d.get("seller")),
                   Party.from_dict(d.get("buyer")), d.get("paper", "A4"), TaxShare.from_dict(d.get("tax")),
                   d.get("locale", "en"))
