"""Documents: the bills (invoices) recorded by settlement, read back. A recorded document is never
altered: the `bills` table is append-only."""

from __future__ import annotations

import json
from decimal import Decimal

from .records import BillRecord
from .values import moment


def bills(store, account: str | None = None, period: str | None = None) -> list[BillRecord]:
    sql = ("SELECT b.account, b.service, b.period, b.invoice_number, b.currency, b.total, b.list_cost, "
           "b.rules_name, b.rules_fingerprint, b.issued_at, d.status, d.due_at FROM bills AS b "
           "JOIN debits AS d USING (account, service, period) WHERE (?1 IS NULL OR b.account = ?1) "
           "AND (?2 IS NULL OR b.period = ?2) ORDER BY b.account, b.period, b.service")
    return [BillRecord(r[0], r[1], r[2], r[3], r[4], Decimal(r[5]), Decimal(r[6]), r[7], r[8], moment(r[9]),
                       r[10], moment(r[11])) for r in store.read(sql, (account, period))]


def invoice(store, account: str, service: str, period: str) -> tuple[str, dict] | None:
    """The recorded invoice text and bill (as its JSON dict) of one account, service and period."""
    rows = store.read("SELECT invoice_text, bill_json FROM bills WHERE account = ? AND service = ? AND period = ?",
                      (account, service, period))
    return (rows[0][0], json.loads(rows[0][1])) if rows else None
