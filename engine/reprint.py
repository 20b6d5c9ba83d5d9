"""A stored document in any format: what `ratecard invoice show` prints and `ratecard serve` gives at
``GET /v1/accounts/{account}/invoices/{ref}``. Rendered from what the ledger recorded with the
document (its bill, number, dates, seller and buyer), never from today's rules."""

from __future__ import annotations

import json

from .errors import RatecardError

FORMATS = ("text", "markdown", "html", "json", "pdf")


def rendered(number: str, document, data: dict, fmt: str, paper: str | None = None) -> str | bytes:
    """A stored document (`Ledger.document`) in `fmt`: its recorded text as it was issued, or the
    other formats rendered from what it recorded."""
    from .bill import Bill
    from .documents import DocumentView
    from .invoice import InvoiceMeta
    from .render import FORMATS as TEMPLATES
    from .model import Party
    from .render import document_context, render, render_document

    if document is not None and document.kind != "invoice":
        view = DocumentView.from_dict(data)
        if paper:
            from dataclasses import replace

            view = replace(view, paper=paper)
        if fmt == "json":
            return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
        if fmt == "pdf":
            from .pdf import html_to_pdf

            return html_to_pdf(render("correction.html.j2", document_context(view), locale=view.locale))
        return render_document(view, fmt, locale=view.locale)
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
        from .pdf import html_to_pdf

        return html_to_pdf(render("invoice.html.j2", context, locale=locale))
    return render(f"invoice.{TEMPLATES[fmt]}.j2", context, locale=locale)
