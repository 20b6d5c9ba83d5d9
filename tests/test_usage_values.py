"""Usage with transaction amounts and decimal quantities (ratecard.usage.valued): every row read,
each bad one named with its file and row, nothing lost; rows with amounts stay apart."""

from __future__ import annotations

from decimal import Decimal as D

from conftest import ROOT
from ratecard import load_rules
from ratecard.usage import read_usage

RULES = ROOT / "examples" / "every-model"


def test_bad_amounts_and_quantities_are_bad_rows(tmp_path):
    usage = tmp_path / "usage.csv"
    usage.write_text("account,period,api,calls,outcome,amount\n"
                     "acme,2024-01,Charge,1,success,12.50\n"        # 2: good
                     "acme,2024-01,Charge,1,success,-3\n"           # 3: a negative amount
                     "acme,2024-01,Charge,1,success,1e3\n"          # 4: not plain decimal text
                     "acme,2024-01,StoreObject,1.2345,success,\n"   # 5: more places than GB's 3
                     "acme,2024-01,TagImage,1.5,success,\n"         # 6: calls stay whole numbers
                     "acme,2024-01,StoreObject,2.5,success,\n"      # 7: good
                     "acme,2024-01,Charge,1,success,12.50\n"        # 8: good, its own item
                     "acme,2024-02,StoreObject,0.5,success,\n",     # 9: another period
                     encoding="utf-8")
    reader = read_usage([usage], load_rules(RULES), period="2024-01")
    assert [(r.line, r.code) for r in reader.rejected] == [(3, "bad-amount"), (4, "bad-amount"), (5, "bad-calls"),
                                                           (6, "bad-calls")]
    assert "more decimal places than its unit allows (3)" in reader.rejected[2].reason
    assert "must be a whole number, got '1.5'" in reader.rejected[3].reason
    (acme,) = reader.accounts()
    assert [(i.api, i.calls, i.amount) for i in acme.items] == [
        ("Charge", 1, D("12.50")), ("Charge", 1, D("12.50")), ("StoreObject", D("2.5"), None)]
    r = reader.reconciliation
    assert (r.rows_read, r.rows_accepted, r.rows_rejected, r.rows_out_of_period) == (8, 3, 4, 1)
    assert r.balanced and r.calls_out_of_period == D("0.5") and r.to_dict()["calls_out_of_period"] == "0.5"


def test_shipped_rules_keep_the_compiled_query(tmp_path):
    from ratecard.usage import valued

    assert not valued.needed(load_rules(ROOT / "rules" / "face-recognition"))
    assert not valued.needed(load_rules(ROOT / "rules" / "face-recognition-cn"))
    assert valued.needed(load_rules(RULES))
