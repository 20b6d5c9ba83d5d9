"""`--format pdf` for `bill` and `settle`: the same renderer as `invoice show --format pdf`; with
--out one PDF per invoice, to standard output one PDF with a page break before each invoice. Each
PDF is checked by its extracted text (totals, numbers, dates) and its page count, and page one is
rendered to an image (kept beside the test's folder, to look at).

Toy prices (tests/conftest.py), Berlin time, bills issued on the 2nd, debited from the 5th to the 9th:
  ada: 100 RenderWidget (10.00) + 4 LookupGadget (6.00) = 16.00 EUR;  bob: 20 LookupGadget × 1.25 = 25.00 EUR.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from conftest import write_rule_set
from test_documents import NUMBERED, SELLER
from test_ledger import berlin, cli, write_usage  # noqa: F401  (cli is a fixture)

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None or shutil.which("pdfinfo") is None,
                                reason="poppler-utils (pdftotext, pdfinfo) is not installed; .ci/run installs it")

ROWS = [("ada", "2024-01", "RenderWidget", 100, ""), ("ada", "2024-01", "LookupGadget", 4, ""),
        ("bob", "2024-01", "LookupGadget", 20, "")]


def ratecard(*args, cwd, stdout=None):
    return subprocess.run([sys.executable, "-m", "ratecard", *map(str, args)], cwd=cwd, stdout=stdout,
                          stderr=subprocess.PIPE, text=stdout is None, check=False)


def text_of(pdf) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def pages_of(pdf) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)$", info, re.M).group(1))


def look(pdf, tmp_path, name):
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(pdf), str(tmp_path / name)],
                       check=True)
        (png,) = tmp_path.glob(f"{name}*.png")
        assert png.stat().st_size > 5000  # a page with something drawn on it
        shutil.copy(png, tmp_path.parent / f"{name}-page-1.png")


def test_bill_prints_one_pdf_with_a_page_per_invoice(tmp_path):
    rules = write_rule_set(tmp_path / "toy", seller=SELLER)
    usage = write_usage(tmp_path / "u.csv", ROWS)
    pdf = tmp_path / "bills.pdf"
    with open(pdf, "wb") as out:
        done = ratecard("bill", "--usage", usage, "--rules", rules, "--format", "pdf", cwd=tmp_path, stdout=out)
    assert done.returncode == 0, done.stderr
    assert "billed 2 invoices: 41.00 EUR" in done.stderr.decode()  # the summary is not in the PDF
    assert pdf.read_bytes().startswith(b"%PDF-") and pages_of(pdf) == 2
    text = text_of(pdf)
    for expected in ("Toy Widgets GmbH", "ada", "bob", "16.00 EUR", "25.00 EUR", "2024-02-02", "2024-02-09"):
        assert expected in text, expected
    # Each invoice starts on its own page: the first page has ada's total, the second bob's.
    first, second = text.split("\f")[:2]
    assert "16.00 EUR" in first and "25.00 EUR" not in first and "25.00 EUR" in second
    look(pdf, tmp_path, "bill-run")


def test_bill_with_out_writes_one_pdf_per_invoice_and_refuses_a_terminal(tmp_path):
    rules = write_rule_set(tmp_path / "toy")
    usage = write_usage(tmp_path / "u.csv", ROWS)
    done = ratecard("bill", "--usage", usage, "--rules", rules, "--format", "pdf", "--out", tmp_path / "out",
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["ada.2024-01.pdf", "bob.2024-01.pdf"]
    for name, total in (("ada.2024-01.pdf", "16.00 EUR"), ("bob.2024-01.pdf", "25.00 EUR")):
        pdf = tmp_path / "out" / name
        assert pages_of(pdf) == 1 and total in text_of(pdf)


def test_settle_prints_the_numbered_invoices_as_one_pdf(cli, tmp_path):
    rules = write_rule_set(tmp_path / "toy", settlement=NUMBERED, seller=SELLER)
    for account in ("ada", "bob"):
        cli("account", "create", account, "--currency", "EUR", "--at", berlin(2024, 1, 1, 0, 0))
        cli("account", "activate", account, "--service", "toy", "--terms", "1", "--at", berlin(2024, 1, 1, 0, 0))
        cli("topup", account, "100", "--at", berlin(2024, 1, 1, 0, 0))
    usage = write_usage(tmp_path / "u.csv", ROWS)
    pdf = tmp_path / "settled.pdf"
    with open(pdf, "wb") as out:
        done = ratecard("settle", "--period", "2024-01", "--usage", usage, "--rules", rules, "--db", cli.db,
                        "--at", berlin(2024, 2, 6, 9, 0), "--format", "pdf", cwd=tmp_path, stdout=out)
    assert done.returncode == 0, done.stderr
    assert "2 documents printed" in done.stderr.decode()
    assert pages_of(pdf) == 2
    text = text_of(pdf)
    for expected in ("Invoice TOY-2024-0001", "Invoice TOY-2024-0002", "2024-02-06", "2024-02-09", "16.00 EUR",
                     "25.00 EUR"):
        assert expected in text, expected
    look(pdf, tmp_path, "settle-run")
    # With --out, one PDF per document, named by its number; settling again prints the same invoices.
    done = ratecard("settle", "--period", "2024-01", "--usage", usage, "--rules", rules, "--db", cli.db,
                    "--at", berlin(2024, 2, 7, 9, 0), "--format", "pdf", "--out", tmp_path / "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["TOY-2024-0001.pdf", "TOY-2024-0002.pdf"]
    assert "Invoice TOY-2024-0001" in text_of(tmp_path / "out" / "TOY-2024-0001.pdf")
    code, _, err = cli("settle", "--period", "2024-01", "--usage", usage, "--rules", rules, "--out", tmp_path / "x",
                       "--at", berlin(2024, 2, 7, 9, 0), ok=False)
    assert code == 1 and "--format pdf" in err
