"""PDF from the HTML templates, with WeasyPrint (imported only here: nothing else pays for it).

A PDF is refused, never printed with empty boxes, when the document has characters (e.g. Chinese)
that no installed font can show: WeasyPrint would silently draw nothing for them.
"""

from __future__ import annotations

import re

from .errors import RatecardError

_CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")


class PdfError(RatecardError):
    """A PDF that cannot be made as it should look."""


def _cjk_font_installed() -> bool:
    import subprocess

    try:
        out = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return bool(out.strip())


def html_to_pdf(html: str) -> bytes:
    """The PDF of a rendered HTML document (its page size is the document's `@page` rule)."""
    return htmls_to_pdf([html])


def htmls_to_pdf(htmls) -> bytes:
    """One PDF of several rendered HTML documents (the invoices of a bill run), each starting on a
    new page, in the order given."""
    htmls = list(htmls)
    if not htmls:
        raise PdfError("no documents to print: a PDF needs at least one")
    if any(_CJK.search(html) for html in htmls) and not _cjk_font_installed():
        raise PdfError("the document has Chinese characters but no installed font can show them, so its PDF "
                       "would print empty boxes; install a CJK font (Debian/Ubuntu: `apt-get install "
                       "fonts-noto-cjk`, or fonts-wqy-zenhei) and try again")
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:  # OSError: WeasyPrint is installed but Pango is not
        raise PdfError(f"PDF output needs WeasyPrint and its Pango libraries ({exc}); install them with "
                       "`pip install weasyprint` and `apt-get install libpango-1.0-0 libpangoft2-1.0-0`") from None
    if len(htmls) == 1:
        return HTML(string=htmls[0]).write_pdf()
    documents = [HTML(string=html).render() for html in htmls]
    return documents[0].copy([page for d in documents for page in d.pages]).write_pdf()
