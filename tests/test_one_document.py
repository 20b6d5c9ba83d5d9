"""What `ratecard bill` writes to standard output is one document; the run's summary goes to stderr.

Several HTML invoices become one HTML document (the first invoice's head, one `<section>` per
invoice, each printed on a page of its own); JSON is one array; text and Markdown are the invoices
alone. The summary (invoices billed, the reconciliation) is on standard error then, so a pipe gets
only the document."""

from __future__ import annotations

import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ratecard.cli import main
from ratecard.errors import RatecardError
from ratecard.htmlbook import HtmlBook

from conftest import ROOT

EXAMPLE = ROOT / "examples" / "usage-2020-09.csv"
CN = ROOT / "rules" / "face-recognition-cn"
CN_USAGE = ROOT / "examples" / "usage-cn-2020-09.csv"


def bill(capsys, *args):
    code = main(["bill", *map(str, args), "--quiet"])
    out, err = capsys.readouterr()
    return code, out, err


class _Structure(HTMLParser):
    """Counts the document-level elements and checks that every element opened is closed in order."""

    VOID = {"meta", "br", "hr", "img", "link", "input", "col"}

    def __init__(self):
        super().__init__()
        self.stack, self.counts, self.errors = [], {}, []

    def handle_starttag(self, tag, attrs):
        self.counts[tag] = self.counts.get(tag, 0) + 1
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_decl(self, decl):
        self.counts["!doctype"] = self.counts.get("!doctype", 0) + 1


def structure(html: str) -> _Structure:
    parser = _Structure()
    parser.feed(html)
    parser.close()
    return parser


def test_several_html_invoices_are_one_document_with_a_page_each(capsys):
    code, out, err = bill(capsys, "--usage", EXAMPLE, "--rejects", "/dev/null", "--format", "html")
    assert code == 0
    doc = structure(out)
    assert doc.errors == [] and doc.stack == []
    assert (doc.counts["!doctype"], doc.counts["html"], doc.counts["head"], doc.counts["body"]) == (1, 1, 1, 1)
    assert doc.counts["section"] == 13 and doc.counts["h1"] == 13  # one section per invoice
    assert out.rstrip().endswith("</html>")  # nothing after the document
    assert "section.invoice { break-after: page; }" in out  # each invoice on its own printed page
    assert "<title>Invoices — face-recognition</title>" in out
    assert "billed 13 invoices" in err and "billed" not in out and "rows:" not in out


def test_the_book_is_in_the_rule_sets_language(capsys):
    code, out, _ = bill(capsys, "--usage", CN_USAGE, "--rules", CN, "--format", "html")
    assert code == 0 and "<title>账单 — face-recognition-cn</title>" in out and out.count("<section") == 5


def test_one_html_invoice_is_written_as_rendered(capsys, tmp_path):
    one = tmp_path / "one.csv"
    one.write_text("account,period,api,calls\nacme,2020-09,SearchFaces,10\n", encoding="utf-8")
    code, out, err = bill(capsys, "--usage", one, "--format", "html")
    assert code == 0 and "<section" not in out and out.count("<!DOCTYPE html>") == 1
    assert "<title>Invoice " in out and "billed 1 invoice:" in err


@pytest.mark.parametrize("fmt, check", [
    ("text", lambda out: out.count("INVOICE ") == 13 and "billed" not in out),
    ("markdown", lambda out: out.count("# Invoice ") == 13 and "billed" not in out),
    ("json", lambda out: len(json.loads(out)) == 13),
    ("jsonl", lambda out: len([json.loads(line) for line in out.splitlines()]) == 13),
])
def test_the_summary_goes_to_standard_error_whatever_the_format(capsys, fmt, check):
    code, out, err = bill(capsys, "--usage", EXAMPLE, "--rejects", "/dev/null", "--format", fmt)
    assert code == 0 and check(out)
    assert "billed 13 invoices" in err and re.search(r"^rows: ", err, re.M)


def test_with_out_the_summary_is_what_standard_output_shows(capsys, tmp_path):
    code, out, err = bill(capsys, "--usage", EXAMPLE, "--rejects", "/dev/null", "--format", "html",
                          "--out", tmp_path / "inv")
    assert code == 0 and out.startswith("billed 13 invoices") and "<html" not in out
    assert len(list((tmp_path / "inv").iterdir())) == 13


def test_a_template_without_head_and_body_is_refused_with_a_hint():
    book = HtmlBook(io.StringIO(), "Invoices")
    with pytest.raises(RatecardError, match="write them with --out DIR instead"):
        book.add("<p>an invoice without a document around it</p>")
