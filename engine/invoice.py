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


def invoice_number(rules_name: str, account: str, period: str) -> str:
    """Deterministic: the same rule set, account and period always give the same number, so a
    re-run or a re-render never issues a second invoice number for the same bill."""
    digest = hashlib.sha256(f"{rules_name}\x1f{account}\x1f{period}".encode("utf-8")).hexdigest()
    return f"{period.replace('-', '')}-{digest[:10].upper()}"


def invoice_meta(bill: Bill, policy: SettlementPolicy) -> InvoiceMeta:
    start = parse_period(bill.period)
    after = next_month(start)
    return InvoiceMeta(
        number=invoice_number(bill.rules_name, bill.account, bill.period),
        period_start=start,
        period_end=date.fromordinal(after.toordinal() - 1),
        issue_date=after.replace(day=policy.bill_issue_day),
        deduction_from=after.replace(day=policy.deduction_first_day),
        deduction_to=after.replace(day=policy.deduction_last_day),
        time_zone=policy.time_zone,
    )
