"""Documents and their numbering: the bills recorded by settlement, and the numbered documents
(invoices, supplementary invoices, credit notes) in their gap-free series. A recorded document is
never altered: `bills` and `documents` are append-only. A settled invoice's bill JSON and text are
stored once, in its document (schema version 5); a bill recorded before keeps its own."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from ..exact import EXACT
from ..formatting import money_text
from .records import BillRecord
from .values import LedgerError, as_text, moment


def bills(store, account: str | None = None, period: str | None = None) -> list[BillRecord]:
    sql = ("SELECT b.account, b.service, b.period, b.invoice_number, b.currency, b.total, b.list_cost, "
           "b.rules_name, b.rules_fingerprint, b.issued_at, d.status, d.due_at FROM bills AS b "
           "JOIN debits AS d USING (account, service, period) WHERE (?1 IS NULL OR b.account = ?1) "
           "AND (?2 IS NULL OR b.period = ?2) ORDER BY b.account, b.period, b.service")
    return [BillRecord(r[0], r[1], r[2], r[3], r[4], Decimal(r[5]), Decimal(r[6]), r[7], r[8], moment(r[9]),
                       r[10], moment(r[11])) for r in store.read(sql, (account, period))]


# A bill's JSON and invoice text: its own when it has them (recorded before schema version 5, or
# before numbered documents), else its invoice document's, the one copy kept since.
_TEXTS = "LEFT JOIN documents AS t ON t.number = b.invoice_number AND t.kind = 'invoice'"
_BILL_JSON = "coalesce(b.bill_json, t.bill_json)"
_INVOICE_TEXT = "coalesce(b.invoice_text, t.document_text)"


def invoice(store, account: str, service: str, period: str) -> tuple[str, dict] | None:
    """The recorded invoice text and bill (as its JSON dict) of one account, service and period."""
    rows = store.read(f"SELECT {_INVOICE_TEXT}, {_BILL_JSON} FROM bills AS b {_TEXTS} WHERE b.account = ? AND "
                      "b.service = ? AND b.period = ?", (account, service, period))
    return (rows[0][0], json.loads(rows[0][1])) if rows else None


# -- numbered documents ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    """A numbered document the ledger issued: an invoice, a supplementary invoice or a credit note."""

    number: str
    kind: str  # "invoice" | "supplementary-invoice" | "credit-note"
    account: str
    service: str
    period: str
    refers_to: str | None  # the invoice a supplementary invoice or credit note corrects
    cause: str  # "settlement" | "correction" | "manual" | "void"
    reason: str
    currency: str
    amount: Decimal
    fingerprint: str
    issued_at: datetime
    series: str
    seq: int

    def to_dict(self) -> dict:
        return {"number": self.number, "kind": self.kind, "account": self.account, "service": self.service,
                "period": self.period, "refers_to": self.refers_to, "cause": self.cause, "reason": self.reason,
                "currency": self.currency, "amount": money_text(self.amount, self.currency), "fingerprint": self.fingerprint,
                "issued_at": self.issued_at.isoformat(), "series": self.series, "seq": self.seq}


_DOCUMENT_COLUMNS = ("number, kind, account, service, period, refers_to, cause, reason, currency, amount, "
                     "fingerprint, issued_at, series, seq")


def _document(r) -> Document:
    return Document(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], Decimal(r[9]), r[10], moment(r[11]),
                    r[12], r[13])


def assign_number(db, numbering, kind: str, issued: date) -> tuple[str, str, int]:
    """The next number of the series a document of `kind` issued on `issued` belongs to. Called
    inside the transaction that records the document: SQLite's write lock serializes concurrent
    settlements, and a transaction that dies takes its number with it, so numbers never skip or
    repeat."""
    series = numbering.series(kind, issued)
    seq = db.execute("SELECT coalesce(max(seq), 0) + 1 FROM documents WHERE series = ?", (series,)).fetchone()[0]
    return numbering.number(series, seq), series, seq


def bill_json(bill_dict: dict) -> str:
    """A bill as `documents.bill_json` records it (and `bills.bill_json` did before schema version 5)."""
    return json.dumps(bill_dict, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def invoice_json(meta, bill_dict: dict, locale: str, paper: str, seller, buyer) -> str:
    """A settled invoice as `documents.document_json` records it: its number and dates, its bill,
    and the parties and page it was printed with."""
    return json.dumps({"invoice": meta.to_dict(), "bill": bill_dict, "locale": locale, "paper": paper,
                       "seller": seller.to_dict() if seller else None, "buyer": buyer.to_dict() if buyer else None},
                      ensure_ascii=False, sort_keys=True)


def insert_document(db, *, number, series, seq, kind, account, service, period, refers_to, cause, reason,
                    currency, amount: Decimal, fingerprint, bill_json, document_json, document_text, issued_at,
                    entry) -> None:
    db.execute(f"INSERT INTO documents ({_DOCUMENT_COLUMNS}, bill_json, document_json, document_text, entry) "
               f"VALUES ({', '.join('?' * 18)})",
               (number, kind, account, service, period, refers_to, cause, reason, currency, as_text(amount),
                fingerprint, issued_at, series, seq, bill_json, document_json, document_text, entry))


def documents(store, account: str | None = None, period: str | None = None) -> list[Document]:
    """The numbered documents, in the order they were issued."""
    return [_document(r) for r in store.read(
        f"SELECT {_DOCUMENT_COLUMNS} FROM documents WHERE (?1 IS NULL OR account = ?1) AND (?2 IS NULL OR "
        "period = ?2) ORDER BY entry, number", (account, period))]


def find(store, account: str, ref: str) -> tuple[str, Document | None, dict, str]:
    """A stored invoice or credit note of `account` by its number, or the invoice of a period
    (YYYY-MM): (number, its document row if numbered, its bill or document JSON, its text)."""
    rows = store.read(f"SELECT {_DOCUMENT_COLUMNS}, document_json, document_text FROM documents "
                      "WHERE account = ? AND (number = ?2 OR (kind = 'invoice' AND period = ?2))", (account, ref))
    if len(rows) > 1:
        services = ", ".join(sorted(r[3] for r in rows))
        raise LedgerError(f"{account} has several invoices for {ref} (services {services}); name one by its number")
    if rows:
        return rows[0][0], _document(rows[0][:14]), json.loads(rows[0][14]), rows[0][15]
    bills = store.read(f"SELECT b.invoice_number, {_BILL_JSON}, {_INVOICE_TEXT} FROM bills AS b {_TEXTS} "
                       "WHERE b.account = ?1 AND (b.invoice_number = ?2 OR b.period = ?2)", (account, ref))
    if len(bills) == 1:  # recorded before numbered documents
        return bills[0][0], None, {"bill": json.loads(bills[0][1])}, bills[0][2]
    if len(bills) > 1:
        raise LedgerError(f"{account} has several invoices for {ref}; name one by its number")
    raise LedgerError(f"{account} has no invoice or credit note {ref!r}; `ratecard account show {account}` lists "
                      "its invoices")


def standing(db, account: str, service: str, period: str) -> tuple[str, str, Decimal, bool]:
    """Where a settled period stands: (its invoice number, the bill JSON it is now billed at — the
    invoice's, or its latest correction's —, what its documents charge net, whether it was voided)."""
    number, bill_json, total = db.execute(
        f"SELECT b.invoice_number, {_BILL_JSON}, b.total FROM bills AS b {_TEXTS} WHERE b.account = ? AND "
        "b.service = ? AND b.period = ?", (account, service, period)).fetchone()
    charged = Decimal(total)
    voided = False
    for kind, cause, amount, json_ in db.execute(
            "SELECT kind, cause, amount, bill_json FROM documents WHERE account = ? AND service = ? AND period = ? "
            "AND kind != 'invoice' ORDER BY entry", (account, service, period)):
        charged = (EXACT.add if kind == "supplementary-invoice" else EXACT.subtract)(charged, Decimal(amount))
        if cause == "correction":
            bill_json = json_
        voided = voided or cause == "void"
    return number, bill_json, charged, voided


def verify_documents(store) -> list[str]:
    """Every series is gap-free (1, 2, 3, … in the order issued); every document has its own entry of
    its kind, and every supplementary invoice's and credit note's entry its document; every bill
    recorded since numbered documents is one of them; every bill's JSON and
    invoice text are stored (in the bill, or in its invoice document)."""
    problems = []
    series: dict[str, list[int]] = {}
    for name, seq in store.read("SELECT series, seq FROM documents ORDER BY entry"):
        series.setdefault(name, []).append(seq)
    for name, seqs in sorted(series.items()):
        if seqs != list(range(1, len(seqs) + 1)):
            problems.append(f"series {name} is not gap-free in the order issued: {seqs[:20]}")
    for number, kind, entry, entry_kind, ref in store.read(
            "SELECT d.number, d.kind, d.entry, e.kind, e.ref FROM documents AS d LEFT JOIN entries AS e "
            "ON e.seq = d.entry ORDER BY d.entry"):
        expected = "bill-issued" if kind == "invoice" else kind
        if (entry_kind, ref) != (expected, number):
            problems.append(f"document {number} ({kind}) has entry {entry} of kind {entry_kind} for {ref}")
    for (missing,) in store.read(
            "SELECT b.invoice_number FROM bills AS b JOIN entries AS e ON e.kind = 'bill-issued' AND e.account = "
            "b.account AND e.service = b.service AND e.period = b.period WHERE e.seq > coalesce((SELECT min(entry) "
            "FROM documents WHERE kind = 'invoice'), (SELECT max(seq) + 1 FROM entries)) AND NOT EXISTS "
            "(SELECT 1 FROM documents AS d WHERE d.number = b.invoice_number)"):
        problems.append(f"invoice {missing} was recorded without its numbered document")
    # The entry kinds came with numbered documents (schema 3): every one of them carries its document.
    for seq, kind, account, ref in store.read(
            "SELECT e.seq, e.kind, e.account, e.ref FROM entries AS e WHERE e.kind IN ('supplementary-invoice', "
            "'credit-note') AND NOT EXISTS (SELECT 1 FROM documents AS d WHERE d.entry = e.seq) ORDER BY e.seq"):
        problems.append(f"{account}: entry {seq} ({kind} for {ref}) was recorded without its numbered document")
    for (bare,) in store.read(
            f"SELECT b.invoice_number FROM bills AS b {_TEXTS} WHERE {_BILL_JSON} IS NULL "
            f"OR {_INVOICE_TEXT} IS NULL ORDER BY b.invoice_number"):
        problems.append(f"invoice {bare} has no bill JSON or invoice text: neither its bill nor an invoice "
                        "document of its number carries them")
    return problems
