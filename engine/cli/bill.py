"""`ratecard bill` and `ratecard ratecard`: a period of usage to invoices; the public rate card."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import cast

from ..errors import RatecardError
from ..formatting import counted, format_money
from .common import Progress, check_rejects_path, ledger_buyers, ledger_currency_check, rules_note, rules_of
from .usage import read_checked


def cmd_bill(args) -> int:
    check_rejects_path(args)
    from ..billrun import InvoiceFolder, RunTotals, bill_accounts

    if args.format == "pdf" and not args.out and sys.stdout.isatty():
        raise RatecardError("a PDF is not printed on a terminal: give --out DIR (one PDF per invoice), or redirect "
                            "standard output to a file")
    rules = rules_of(args, say=False)
    # The engine holds the rows within its memory limit (spilling past it); accounts come out of it
    # one at a time, in order, as they are billed.
    reader, reconciliation, rejects = read_checked(args, rules)
    ledger_currency_check(rules, reader.account_ids, args.db)
    buyers = ledger_buyers(rules, args.db)

    count = reader.account_periods
    accounts = reader.accounts()  # made one at a time, as they are billed: not all held at once
    out_dir = Path(args.out) if args.out else None
    folder = InvoiceFolder(out_dir, args.format) if out_dir is not None else None
    # Standard output holds one document (the invoices, or one HTML book of them, or one JSON array),
    # so the run's summary goes to standard error then; with --out it is all standard output shows.
    report = sys.stdout if out_dir is not None else sys.stderr
    totals = RunTotals()
    progress = Progress(count, not args.quiet)
    complete = False
    book = None
    # Several invoices to standard output as one PDF: rendered as HTML, then printed as one document
    # with a page break before each invoice, as `invoice show --format pdf` prints each.
    run_format = "html" if out_dir is None and args.format == "pdf" else args.format
    pages: list[str] = []
    if out_dir is None and args.format == "html" and count > 1:
        from ..htmlbook import HtmlBook
        from ..i18n import translations

        # Translators: the title of several invoices printed as one HTML document.
        title = translations(rules.latest[2].locale).gettext("Invoices — %(name)s") % {"name": rules.name}
        book = HtmlBook(sys.stdout, title)
    try:
        if out_dir is None and args.format == "json":
            print("[")
        for i, item in enumerate(bill_accounts(rules, accounts, run_format, jobs=args.jobs, count=count,
                                                   buyers=buyers)):
            totals.add(item)
            if folder is not None:
                folder.write(item)
                progress.update(i + 1)
                continue
            text = cast(str, item.text)  # only a PDF written to a folder is bytes
            if args.format == "pdf":
                pages.append(text)
            elif args.format == "json":
                sys.stdout.write(("," if i else "") + text.rstrip("\n") + "\n")
            elif book is not None:
                book.add(text)
            else:
                sys.stdout.write(("\n" if i and args.format != "jsonl" else "") + text)
            progress.update(i + 1)
        if out_dir is None and args.format == "json":
            print("]")
        if book is not None:
            book.close()
        if pages:
            from ..pdf import htmls_to_pdf

            sys.stdout.flush()
            sys.stdout.buffer.write(htmls_to_pdf(pages))
        complete = True
    finally:
        progress.close()
        if folder is not None:
            folder.close(complete)
    sys.stdout.flush()
    money = ", ".join(format_money(v, c) for c, v in sorted(totals.by_currency.items())) or "nothing"
    print(f"billed {counted(totals.invoices, 'invoice')}: {money}"
          + (f", written to {out_dir}" if out_dir else ""), file=report)
    note = rules_note(args)
    if note:
        print(note, file=report)
    for line in reconciliation.lines():
        print(line, file=report)
    if rejects is not None:
        print(f"{counted(rejects.count, 'bad row')} written to {args.rejects}", file=report)
    return 0


def cmd_ratecard(args) -> int:
    from ..render import render_rate_card

    rules = rules_of(args)
    sys.stdout.write(render_rate_card(rules, args.format, args.period))
    return 0
