"""`ratecard credit-note`, `void` and `invoice show`: documents after settlement, and reprinting any
stored invoice or credit note in any format."""

from __future__ import annotations

import sys

from .. import resources
from ..errors import RatecardError
from ..reprint import rendered
from .common import applied_text, at_arg, load_rules, open_ledger

FORMATS = ("text", "markdown", "html", "json", "pdf")


def cmd_credit_note(args) -> int:
    rules = load_rules(args.rules or resources.default_rule_set())
    with open_ledger(args) as ledger:
        number, applied = ledger.credit_note(rules, args.account, args.invoice, args.amount, args.reason,
                                             at_arg(args.at))
        currency = ledger.account(args.account).currency
    if applied.note:
        print(f"{applied.note}; nothing was changed")
    else:
        print(f"credit note {number} to invoice {args.invoice} issued; {applied_text(applied, currency)}")
    return 0


def cmd_void(args) -> int:
    rules = load_rules(args.rules or resources.default_rule_set())
    with open_ledger(args) as ledger:
        number, applied = ledger.void(rules, args.invoice, at_arg(args.at), args.reason or "")
        currency = ledger.account(applied.account).currency
    if applied.note:
        print(f"{applied.note}; nothing was changed")
    else:
        print(f"invoice {args.invoice} voided by credit note {number}; its scheduled debit will not be taken; "
              f"{applied_text(applied, currency)}")
    return 0


def cmd_invoice_show(args) -> int:
    with open_ledger(args, readonly=True) as ledger:
        number, document, data, text = ledger.document(args.account, args.ref)
    if args.format == "text":
        out = text  # exactly as issued
    else:
        out = rendered(number, document, data, args.format, args.paper)
    write(out, args.output)
    return 0


def write(out, path) -> None:
    if isinstance(out, bytes):
        if path in (None, "-"):
            if sys.stdout.isatty():
                raise RatecardError("a PDF is not printed on a terminal: give --output FILE, or redirect")
            sys.stdout.flush()
            sys.stdout.buffer.write(out)
            sys.stdout.buffer.flush()
            return
        with open(path, "wb") as f:
            f.write(out)
        return
    if path in (None, "-"):
        sys.stdout.write(out)
    else:
        with open(path, "w", encoding="utf-8") as f:
            f.write(out)
