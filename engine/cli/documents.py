"""`ratecard credit-note`, `void` and `invoice show`: documents after settlement, and reprinting any
stored invoice or credit note in any format."""

from __future__ import annotations

import json
import sys

from .. import resources
from ..errors import RatecardError
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


def rendered(number: str, document, data: dict, fmt: str, paper: str | None = None) -> str | bytes:
    """A stored document (`Ledger.document`) in `fmt`: its recorded text as it was issued, or the
    other formats rendered from what it recorded."""
    from ..bill import Bill
    from ..documents import DocumentView
    from ..invoice import InvoiceMeta
    from ..render import FORMATS as TEMPLATES
    from ..model import Party
    from ..render import document_context, render, render_document

    if document is not None and document.kind != "invoice":
        view = DocumentView.from_dict(data)
        if paper:
            from dataclasses import replace

            view = replace(view, paper=paper)
        if fmt == "json":
            return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
        if fmt == "pdf":
            from ..pdf import html_to_pdf

            return html_to_pdf(render("correction.html.j2", document_context(view)))
        return render_document(view, fmt)
    if "invoice" not in data:
        raise RatecardError(f"invoice {number} was recorded before numbered documents: only its recorded text "
                            "can be shown (--format text)")
    bill, meta = Bill.from_dict(data["bill"]), InvoiceMeta.from_dict(data["invoice"])
    if fmt == "json":
        return json.dumps({"invoice": data["invoice"], "seller": data.get("seller"), "buyer": data.get("buyer"),
                           "bill": data["bill"]}, ensure_ascii=False, indent=2) + "\n"
    context = {"bill": bill, "invoice": meta, "seller": Party.from_dict(data.get("seller")),
               "buyer": Party.from_dict(data.get("buyer")), "paper": paper or data.get("paper", "A4")}
    locale = data.get("locale", "en")
    if fmt == "pdf":
        from ..pdf import html_to_pdf

        return html_to_pdf(render("invoice.html.j2", context, locale=locale))
    return render(f"invoice.{TEMPLATES[fmt]}.j2", context, locale=locale)


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
