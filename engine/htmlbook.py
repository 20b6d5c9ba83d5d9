"""Several HTML invoices as one document: what `ratecard bill --format html` writes to standard output.

Concatenated documents (`<!DOCTYPE html>` after `</html>`) are not HTML: a browser shows the first
and a converter refuses the lot. The book keeps the head of the first invoice (its styles; every
invoice of a run comes from the same template), puts each invoice's body in a `<section>`, and starts
each section on a new printed page. A single invoice is written as it was rendered.
"""

from __future__ import annotations

import re
from typing import TextIO

from .errors import RatecardError

_BODY = re.compile(r"<body[^>]*>(?P<body>.*)</body>", re.S)
_TITLE = re.compile(r"<title>.*?</title>", re.S)
PAGE_BREAKS = ("<style>\n  section.invoice { break-after: page; }\n"
               "  section.invoice:last-of-type { break-after: auto; }\n"
               "  @media screen { section.invoice + section.invoice { border-top: 2px dashed #999; "
               "margin-top: 2rem; padding-top: 1rem; } }\n</style>\n")


class HtmlBook:
    """Writes invoices, as they come, into one HTML document on `out`; `close()` ends it."""

    def __init__(self, out: TextIO, title: str):
        self.out, self.title = out, title
        self.count = 0

    def add(self, html: str) -> None:
        match = _BODY.search(html)
        head_end = html.find("</head>")
        if match is None or head_end < 0:
            raise RatecardError("the invoice template does not write one <head> and one <body>, so its invoices "
                                "cannot be joined into one HTML document: write them with --out DIR instead")
        if self.count == 0:
            head = _TITLE.sub(lambda _: f"<title>{_escape(self.title)}</title>", html[:head_end], count=1)
            self.out.write(head + PAGE_BREAKS + "</head>\n<body>\n")
        self.out.write(f'<section class="invoice">{match.group("body")}</section>\n')
        self.count += 1

    def close(self) -> None:
        if self.count:
            self.out.write("</body>\n</html>\n")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
