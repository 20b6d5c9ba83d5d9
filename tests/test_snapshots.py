"""Every rendered invoice of every example account, and the rate card, guarded by snapshots.

A change to rules, templates or code that alters a bill fails here; review the diff of the
snapshot file before updating it with `pytest --snapshot-update`.
"""

from __future__ import annotations

import pytest

from ratecard.billrun import render_bill
from ratecard.rating import rate
from ratecard.render import render_rate_card
from ratecard.usage import UsageReader

from conftest import ROOT

EXAMPLE = ROOT / "examples" / "usage-2020-09.csv"


@pytest.fixture(scope="module")
def example_accounts(shipped_rules):
    reader = UsageReader(shipped_rules, on_reject=lambda rejected: None).read(str(EXAMPLE))
    return {usage.account: usage for usage in reader.accounts()}


def _example_account_ids():
    # Read from the example file itself, so a new example account gets its snapshots.
    import csv

    with open(EXAMPLE, newline="", encoding="utf-8") as fh:
        return sorted({row["account"] for row in csv.DictReader(fh)})


ACCOUNTS = _example_account_ids()


def _render(rules, usage, fmt):
    bill = rate(rules, usage.items, usage.period, account=usage.account)
    return render_bill(bill, rules, fmt)


@pytest.mark.parametrize("account", ACCOUNTS)
def test_text_invoice(account, shipped_rules, example_accounts, snapshot_txt):
    assert _render(shipped_rules, example_accounts[account], "text") == snapshot_txt


@pytest.mark.parametrize("account", ACCOUNTS)
def test_markdown_invoice(account, shipped_rules, example_accounts, snapshot_md):
    assert _render(shipped_rules, example_accounts[account], "markdown") == snapshot_md


@pytest.mark.parametrize("account", ACCOUNTS)
def test_html_invoice(account, shipped_rules, example_accounts, snapshot_html):
    assert _render(shipped_rules, example_accounts[account], "html") == snapshot_html


def test_rate_card_markdown(shipped_rules, snapshot_md):
    assert render_rate_card(shipped_rules, "markdown", "2020-09") == snapshot_md


def test_rate_card_html(shipped_rules, snapshot_html):
    assert render_rate_card(shipped_rules, "html", "2020-09") == snapshot_html


def test_every_example_account_is_billed(example_accounts):
    assert sorted(example_accounts) == ACCOUNTS
