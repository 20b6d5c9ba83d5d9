"""Usage inputs a user or an export tool really produces and the differential tests did not cover.

The principle each test guards: a row's verdict (billed, rejected, duplicate, out of period) is the
same whether the fast pass decides it or the row-by-row diagnosing pass does, i.e. it never depends
on whether some other row of the run is bad; and no input, however odd, reaches the user as a
traceback."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from ratecard.usage import read_usage

AGG = "account,period,api,calls,outcome\n"
GOOD = "acme,2020-09,DetectFace,5,success\n"
BAD_CSV = "acme,2020-09,DetectFace,ten,success\n"  # an unrelated bad row: forces the diagnosing pass


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def outcome(rules, path: Path, **kw):
    rejected = []
    reader = read_usage([path], rules, on_reject=rejected.append, **kw)
    try:
        usage = [(u.account, u.period, tuple((i.api, i.calls, i.outcome) for i in u.items))
                 for u in reader.accounts()]
        counts = reader.reconciliation
        assert counts.balanced
        return usage, [(r.line, r.code) for r in rejected], counts
    finally:
        reader.close()


def alone_and_beside_a_bad_row(rules, tmp_path, text: str, bad: str, name="usage.csv", **kw):
    """(result alone, result with a bad row appended): the row's verdict must be the same in both."""
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    alone = outcome(rules, Path(name), **kw)
    path.write_bytes((text + bad).encode("utf-8", "surrogatepass"))
    beside = outcome(rules, Path(name), **kw)
    return alone, beside


# -- the diagnosing pass carries every value through, whatever characters it holds -----------------


@pytest.mark.parametrize("row, billed", [
    ('acme,2020-09,DetectFace,5,"Quota\nExceeded"\n', [("acme", "2020-09", (("DetectFace", 5, "Quota\nExceeded"),))]),
    ('acme,2020-09,DetectFace,5,"Quota\r\nExceeded"\n', [("acme", "2020-09", (("DetectFace", 5, "Quota\r\nExceeded"),))]),
    ('acme,2020-09,DetectFace,5,"Quota\rExceeded"\n', [("acme", "2020-09", (("DetectFace", 5, "Quota\rExceeded"),))]),
])
def test_a_good_row_holding_a_quoted_line_break_is_billed_beside_a_bad_row(shipped_rules, tmp_path, row, billed):
    alone, beside = alone_and_beside_a_bad_row(shipped_rules, tmp_path, AGG + row, BAD_CSV)
    assert alone[0] == billed
    assert beside[0] == billed
    assert [code for _, code in beside[1]] == ["bad-calls"]


@pytest.mark.parametrize("row, code", [
    ('"ac\nme",2020-09,DetectFace,5,success\n', "bad-field"),  # a line break in the account
    ('"ac\r\nme",2020-09,DetectFace,5,success\n', "bad-field"),
    ("acme,2020-09,DetectFace,5,succ\ress\n", "malformed-csv"),  # a lone carriage return, unquoted
])
@pytest.mark.parametrize("first", [True, False])
def test_a_bad_row_holding_a_line_break_is_rejected_not_a_traceback(shipped_rules, tmp_path, row, code, first):
    (tmp_path / "usage.csv").write_text(AGG + (row + GOOD if first else GOOD + row), encoding="utf-8", newline="")
    usage, rejected, counts = outcome(shipped_rules, Path("usage.csv"))
    assert usage == [("acme", "2020-09", (("DetectFace", 5, "success"),))]
    assert [c for _, c in rejected] == [code]
    assert counts.rows_read == 2 and counts.rows_rejected == 1
