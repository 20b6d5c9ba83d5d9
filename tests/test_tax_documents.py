"""Taxed documents through the ledger: the invoice debits the gross, a supplementary invoice and a
credit note carry their tax, a void reverses all of it, every format shows it; and the China site's
credit note in its own language.

Toy prices and policy as in tests/test_documents.py; the tax rules are tests/test_tax.py's (DE 19%,
exclusive, rounded per invoice, half-up). The buyer is in DE without a tax id, so it is taxed.
"""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest

from conftest import ROOT, write_rule_set
from test_documents import NUMBERED, SELLER, balance, documents, settle, sound
from test_ledger import berlin, cli, write_usage  # noqa: F401  (cli is a fixture)
from test_tax import TAX


def taxed_setup(cli, tmp_path, country="DE", tax_id=None):
    rules = write_rule_set(tmp_path / "toy", settlement=NUMBERED, seller=SELLER, tax=TAX)
    extra = ["--tax-id", tax_id] if tax_id else []
    cli("account", "create", "ada", "--currency", "EUR", "--legal-name", "Ada Analytik GmbH", "--address",
        "Beispielweg 2", "--address", "80331 München", *(["--country", country] if country else []), *extra,
        "--at", berlin(2024, 1, 1, 0, 0))
    cli("account", "activate", "ada", "--service", "toy", "--terms", "1", "--at", berlin(2024, 1, 1, 0, 0))
    cli("topup", "ada", "100", "--at", berlin(2024, 1, 1, 0, 0))
    return rules


@pytest.fixture
def taxed_ledger(cli, tmp_path):
    """A taxed invoice, its supplementary invoice (late usage) and a manual credit note."""
    rules = taxed_setup(cli, tmp_path)
    # 100 widgets 10.00 + 4 gadgets 6.00 = 16.00 net; 19% = 3.04; gross 19.04.
    settle(cli, tmp_path, rules, [("ada", "RenderWidget", 100), ("ada", "LookupGadget", 4)], berlin(2024, 2, 6, 9, 0))
    # Two late gadgets: 19.00 net, 3.61 tax, 22.61 gross: a supplementary invoice of 3.57 = 3.00 + 0.57 tax.
    settle(cli, tmp_path, rules, [("ada", "RenderWidget", 100), ("ada", "LookupGadget", 6)],
           berlin(2024, 2, 12, 9, 0), "late.csv")
    # A manual credit of 2.38 gross: its tax is 2.38 × 3.61 / 22.61 = 0.38, its net 2.00.
    cli("credit-note", "ada", "TOY-2024-0001", "--amount", "2.38", "--reason", "service outage on 12 January",
        "--rules", rules, "--at", berlin(2024, 2, 14, 9, 0))
    return cli


def test_the_ledger_debits_the_gross_and_each_document_carries_its_tax(taxed_ledger):
    cli = taxed_ledger
    assert [(n, k, a) for n, k, _, _, a, _, _ in documents(cli.db)] == [
        ("TOY-2024-0001", "invoice", "19.04"), ("TOY-2024-0002", "supplementary-invoice", "3.57"),
        ("TOYC-2024-0001", "credit-note", "2.38")]
    assert balance(cli) == D("100") - D("19.04") - D("3.57") + D("2.38")
    invoice = cli.json("invoice", "show", "ada", "TOY-2024-0001", "--format", "json")
    assert invoice["bill"]["schema_version"] == 3
    assert {k: invoice["bill"]["tax"][k] for k in ("net", "tax", "gross")} == {"net": "16.00", "tax": "3.04",
                                                                             "gross": "19.04"}
    supplementary = cli.json("invoice", "show", "ada", "TOY-2024-0002", "--format", "json")
    assert supplementary["tax"] == {"prices": "exclusive", "lines": [{"label": "VAT 19%", "rate": "19", "tax": "0.57"}],
                                    "net": "3.00", "tax": "0.57"}
    note = cli.json("invoice", "show", "ada", "TOYC-2024-0001", "--format", "json")
    assert (note["tax"]["net"], note["tax"]["tax"]) == ("2.00", "0.38")
    sound(cli)


def test_taxed_documents_and_bills_validate_against_their_schemas(taxed_ledger, tmp_path):
    from test_output_schemas import validate

    cli = taxed_ledger
    for number in ("TOY-2024-0001", "TOY-2024-0002", "TOYC-2024-0001"):
        document = cli.json("invoice", "show", "ada", number, "--format", "json")
        validate("document.schema.json", document)
    validate("bill.schema.json", cli.json("invoice", "show", "ada", "TOY-2024-0001", "--format", "json")["bill"])


@pytest.mark.parametrize("number", ["TOY-2024-0001", "TOY-2024-0002", "TOYC-2024-0001"])
@pytest.mark.parametrize("fmt", ["text", "markdown", "html", "json"])
def test_every_taxed_document_in_every_format(taxed_ledger, snapshot, number, fmt):
    out = taxed_ledger("invoice", "show", "ada", number, "--format", fmt)[1]
    assert "VAT 19%" in out
    assert out == snapshot


def test_voiding_a_taxed_invoice_reverses_its_tax_too(cli, tmp_path):
    rules = taxed_setup(cli, tmp_path)
    settle(cli, tmp_path, rules, [("ada", "RenderWidget", 100), ("ada", "LookupGadget", 4)], berlin(2024, 2, 2, 9, 0))
    cli("void", "TOY-2024-0001", "--rules", rules, "--at", berlin(2024, 2, 3, 9, 0))
    note = cli.json("invoice", "show", "ada", "TOYC-2024-0001", "--format", "json")
    assert (note["amount"], note["tax"]["net"], note["tax"]["tax"]) == ("19.04", "16.00", "3.04")
    assert balance(cli) == D("100")  # the scheduled debit is never taken
    sound(cli)


def test_a_reverse_charged_buyer_pays_the_net_and_the_invoice_says_why(cli, tmp_path):
    rules = taxed_setup(cli, tmp_path, tax_id="DE999999999")
    settle(cli, tmp_path, rules, [("ada", "RenderWidget", 100), ("ada", "LookupGadget", 4)], berlin(2024, 2, 6, 9, 0))
    assert balance(cli) == D("84.00")
    text = cli("invoice", "show", "ada", "TOY-2024-0001")[1]
    assert "Reverse charge: Reverse charge: the recipient accounts for the VAT (toy wording for tests)." in text


def test_an_account_the_rules_cannot_tax_is_not_settled_and_says_why(cli, tmp_path):
    rules = taxed_setup(cli, tmp_path, country=None)
    code, out, _ = settle(cli, tmp_path, rules, [("ada", "RenderWidget", 100)], berlin(2024, 2, 6, 9, 0), ok=False)
    assert code == 3
    (account,) = json.loads(out)["accounts"]
    assert account["outcome"] == "failed" and "has none; set it (`ratecard account update ada --country CC`)" in \
        account["problem"]
    assert balance(cli) == D("100") and documents(cli.db) == []


def test_bill_taxes_by_the_buyers_in_the_ledger(cli, tmp_path):
    rules = taxed_setup(cli, tmp_path)
    usage = write_usage(tmp_path / "u.csv", [("ada", "2024-01", "RenderWidget", 100, "")])
    out = cli("bill", "--period", "2024-01", "--usage", usage, "--rules", rules, "--db", cli.db)[1]
    # 10.00 × 19% = 1.90; the invoice names the buyer from the ledger.
    assert "VAT 19% on 10.00" in out and "11.90" in out and "Ada Analytik GmbH" in out


# -- the China site's credit note, in its language ----------------------------------------------------

def test_the_china_site_credit_note_is_in_chinese(tmp_path, snapshot):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    import ratecard
    from ratecard.ledger import Ledger
    from ratecard.rating import UsageItem
    from ratecard.reprint import rendered
    from ratecard.usage import AccountUsage

    bj = ZoneInfo("Asia/Shanghai")
    cn = ratecard.load_rules(ROOT / "rules" / "face-recognition-cn")
    with Ledger(tmp_path / "cn.db", create=True) as ledger:
        ledger.create_account("peony", "Peony", "CNY", datetime(2020, 9, 1, tzinfo=bj))
        ledger.activate("peony", "face-recognition-cn", "2020-09", datetime(2020, 9, 1, tzinfo=bj))
        ledger.top_up("peony", "5000", datetime(2020, 9, 1, tzinfo=bj))
        usage = [AccountUsage("peony", "2020-09", (UsageItem("SearchFaces", 110_000),))]
        report = ledger.settle(cn, usage, "2020-09", datetime(2020, 10, 1, 10, tzinfo=bj))
        invoice = report.accounts[0].invoice
        # 100,000 calls after the free 10,000, × 0.0032 = 320.00 CNY; 20.00 credited.
        assert report.accounts[0].total == D("320.00")
        number, _ = ledger.credit_note(cn, "peony", invoice, "20.00", "服务中断补偿",
                                       datetime(2020, 10, 8, 10, tzinfo=bj))
        found = ledger.document("peony", number)
        assert ledger.verify() == []
    _, document, data, text = found
    assert text.startswith(f"贷项通知单 {number}\n") and "贷记金额 CNY" in text and "对应账单" in text
    html = rendered(number, document, data, "html")
    assert '<html lang="zh-Hans' in html and "贷项通知单" in html
    assert text == snapshot
    assert html == snapshot
