"""What an invoice says beyond the bill itself: its number and the dates the settlement policy sets."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

from .bill import Bill
from .model import SettlementPolicy
from .periods import next_month, parse_period


@dataclass(frozen=True)
class InvoiceMeta:
    number: str
    period_start: date
    period_end: date  # last day of the period
    issue_date: date
    deduction_from: date
    deduction_to: date
    time_zone: str
    due_date: date | None = None  # the deduction window's last day, or the issue date if later
    fingerprint: str = ""  # the bill's content fingerprint; the number itself, for a bill not yet recorded

    def to_dict(self) -> dict:
        return {"number": self.number, "kind": "invoice", "issue_date": self.issue_date.isoformat(),
                "due_date": self.due_date.isoformat() if self.due_date else None,
                "service_period": [self.period_start.isoformat(), self.period_end.isoformat()],
                "deduction_window": [self.deduction_from.isoformat(), self.deduction_to.isoformat()],
                "time_zone": self.time_zone, "fingerprint": self.fingerprint}

    @classmethod
    def from_dict(cls, d: dict) -> InvoiceMeta:
        day = date.fromisoformat
        return cls(d["number"], day(d["service_period"][0]), day(d["service_period"][1]), day(d["issue_date"]),
                   day(d["deduction_window"][0]), day(d["deduction_window"][1]), d["time_zone"],
                   day(d["due_date"]) if d.get("due_date") else None, d.get("fingerprint", ""))


def invoice_number(rules_name: str, account: str, period: str) -> str:
    """Deterministic: the same rule set, account and period always give the same number, so a
    re-run or a re-render never issues a second invoice number for the same bill."""
    digest = hashlib.sha256(f"{rules_name}\x1f{account}\x1f{period}".encode("utf-8")).hexdigest()
    return f"{period.replace('-', '')}-{digest[:10].upper()}"


def invoice_meta(bill: Bill, policy: SettlementPolicy, *, number: str | None = None,
                 issued: date | None = None) -> InvoiceMeta:
    """The invoice of `bill`. A bill the ledger records gets its `number` in its series and the date
    it was `issued` (in the policy's time zone); one not recorded (a preview) carries its content
    fingerprint as its number and the issue day the policy schedules."""
    start = parse_period(bill.period)
    after = next_month(start)
    fingerprint = invoice_number(bill.rules_name, bill.account, bill.period)
    issue_date = issued or after.replace(day=policy.bill_issue_day)
    deduction_to = after.replace(day=policy.deduction_last_day)
    return InvoiceMeta(
        number=number or fingerprint,
        period_start=start,
        period_end=date.fromordinal(after.toordinal() - 1),
        issue_date=issue_date,
        deduction_from=after.replace(day=policy.deduction_first_day),
        deduction_to=deduction_to,
        time_zone=policy.time_zone,
        due_date=max(issue_date, deduction_to),
        fingerprint=fingerprint,
    )
