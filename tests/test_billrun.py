"""The bill run's output files (`--out`): names no two ids share, readable ids, never half written.

issue 11 items 9 and 11.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ratecard.billrun as billrun
from ratecard.billrun import InvoiceFolder, Rendered, invoice_filename
from ratecard.errors import RatecardError


def _id_of(name: str) -> str:
    """Reads a file name back into the account id: the proof that no two ids share a name."""
    stem = name.rsplit(".", 2)[0]
    if stem == "+":
        return ""
    out, i = [], 0
    while i < len(stem):
        char = stem[i]
        if char != "+":
            out.append(char)
            i += 1
        elif stem[i + 1].isdigit():
            out.append(chr(int(stem[i + 1:i + 7], 16)))
            i += 7
        else:
            out.append(stem[i + 1].upper())
            i += 2
    return "".join(out)


def _as_the_file_system_compares(name: str) -> str:
    return unicodedata.normalize("NFD", name).casefold()


def test_a_colliding_pair_of_the_old_40_bit_names_gets_two_files():
    # Both were written to __~6719b834eb.2020-09.txt: one invoice silently replaced the other.
    names = {invoice_filename(a, "2020-09", "text") for a in ("丮烼", "丷劼")}
    assert names == {"丮烼.2020-09.txt", "丷劼.2020-09.txt"}


def test_non_ascii_ids_stay_readable():
    assert invoice_filename("客户", "2020-09", "text") == "客户.2020-09.txt"
    assert invoice_filename("Ünïcode GmbH", "2020-09", "html") == "+ünïcode+000020+gmb+h.2020-09.html"
    assert invoice_filename("acme", "2020-09", "markdown") == "acme.2020-09.md"


@settings(max_examples=3000, deadline=None)
@given(st.text(max_size=30))
def test_every_name_reads_back_into_its_id(account):
    name = invoice_filename(account, "2020-09", "text")
    assert _id_of(name) == account
    # ... and is its own case fold and canonical form: a file system that ignores either cannot
    # take two names for one file.
    assert unicodedata.normalize("NFC", name).casefold() == name
    assert "/" not in name and "\\" not in name and not name.startswith(".") and "\x00" not in name


@pytest.mark.parametrize("a, b", [("acme", "Acme"), ("é", "e\u0301"), ("Å", "\u212b"), ("ß", "ss"), ("i", "ı"),
                                  ("σ", "ς"), ("a/b", "a_b"), ("+", "+00002b"), ("con", "+000063on")])
def test_ids_a_file_system_could_confuse_get_names_it_cannot(a, b):
    names = [invoice_filename(x, "2020-09", "text") for x in (a, b)]
    assert _as_the_file_system_compares(names[0]) != _as_the_file_system_compares(names[1])


def test_a_very_long_id_keeps_a_readable_start_and_a_bounded_name():
    name = invoice_filename("客户" * 200, "2020-09", "text")
    assert name.startswith("客户客户") and len(name.encode()) < 255 and re.search(r"\+-[0-9a-f]{64}\.", name)


def _item(account: str, text: str = "invoice\n") -> Rendered:
    return Rendered(account, "2020-09", "USD", Decimal("1"), text)


def test_two_invoices_for_one_file_stop_the_run_before_anything_is_overwritten(tmp_path, monkeypatch):
    # Were two ids ever to map to one name (as the file system compares names), the second is refused.
    monkeypatch.setattr(billrun, "invoice_filename", lambda account, period, fmt: f"{account}.{period}.txt")
    folder = InvoiceFolder(tmp_path / "out", "text")
    folder.write(_item("Acme", "first\n"))
    with pytest.raises(RatecardError, match="the invoices of 'Acme' and 'ACME' would both be written to"):
        folder.write(_item("ACME", "second\n"))
    assert (tmp_path / "out" / "Acme.2020-09.txt").read_text() == "first\n"


# -- interrupted output (item 11) ---------------------------------------------------------------------

def test_an_interrupted_jsonl_run_leaves_the_previous_bills_jsonl_whole(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "bills.jsonl").write_text('{"previous": "run"}\n')
    folder = InvoiceFolder(out, "jsonl")
    folder.write(_item("a", '{"account": "a"}\n'))
    folder.close(complete=False)  # Ctrl-C, a full disk, any error: the run did not finish
    assert (out / "bills.jsonl").read_text() == '{"previous": "run"}\n'
    assert [p.name for p in out.iterdir()] == ["bills.jsonl"]  # no temporary file left


def test_a_bill_run_stopped_by_ctrl_c_writes_no_partial_file(tmp_path, monkeypatch, capsys):
    from conftest import ROOT
    from ratecard.cli import main

    monkeypatch.chdir(tmp_path)
    usage = ROOT / "examples" / "usage-2020-09.csv"
    assert main(["bill", "--usage", str(usage), "--rejects", "r.csv", "--format", "jsonl", "--out", "out",
                 "--quiet"]) == 0
    complete = Path("out/bills.jsonl").read_text()
    assert complete.count("\n") == 13

    real = billrun._Pending.write
    written = []

    def interrupted(self, text):
        written.append(text)
        if len(written) == 5:
            raise KeyboardInterrupt
        real(self, text)

    monkeypatch.setattr(billrun._Pending, "write", interrupted)
    assert main(["bill", "--usage", str(usage), "--rejects", "r.csv", "--format", "jsonl", "--out", "out",
                 "--quiet"]) == 130  # Ctrl-C's exit status
    assert Path("out/bills.jsonl").read_text() == complete
    assert [p.name for p in Path("out").iterdir()] == ["bills.jsonl"]

    written.clear()
    assert main(["bill", "--usage", str(usage), "--rejects", "r.csv", "--format", "text", "--out", "text",
                 "--quiet"]) == 130
    files = sorted(Path("text").iterdir())
    assert len(files) == 4 and not any(".partial" in p.name for p in files)
    assert all(p.read_text().endswith("settlement in force from 2020-09-15\n") for p in files)  # each complete


@pytest.mark.parametrize("fmt, pool", [("jsonl", False), ("json", False), ("text", True), ("html", True)])
def test_by_default_only_templates_are_rendered_by_workers(monkeypatch, fmt, pool):
    # issue 10: default workers were slower than one process for JSON Lines (rating and dumping an
    # account costs less than shipping it to a worker and back); templates cost more, workers pay.
    import ratecard
    from ratecard.rating import UsageItem
    from ratecard.usage import AccountUsage

    started = []

    class Pool:
        def __init__(self, *args, **kwargs):
            started.append(kwargs["max_workers"])
            raise RuntimeError("a worker pool")

    monkeypatch.setattr(billrun, "ProcessPoolExecutor", Pool)
    monkeypatch.setattr(billrun.os, "cpu_count", lambda: 2)
    rules = ratecard.load_rules(Path(__file__).resolve().parent.parent / "rules" / "face-recognition")
    accounts = [AccountUsage(f"a{n}", "2020-09", (UsageItem("DetectFace", n),)) for n in range(3)]
    count = billrun.PARALLEL_FROM
    if pool:
        with pytest.raises(RuntimeError, match="a worker pool"):
            list(billrun.bill_accounts(rules, accounts, fmt, count=count))
        assert started == [2]
    else:
        assert len(list(billrun.bill_accounts(rules, accounts, fmt, count=count))) == 3
        assert started == []
    started.clear()
    with pytest.raises(RuntimeError, match="a worker pool"):  # asked for, they are used whatever the format
        list(billrun.bill_accounts(rules, accounts, fmt, jobs=2, count=count))
