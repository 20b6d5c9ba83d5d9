"""`ratecard quote`: one month of usage for one account, priced from the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import pytest

from ratecard.cli import main

from conftest import ROOT, write_rule_set

VALIDATOR = jsonschema.Draft202012Validator(json.loads((ROOT / "schemas" / "bill.schema.json").read_text("utf-8")))


def quote(capsys, *args):
    status = main(["quote", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_the_spec_cliff_below(capsys):
    status, out, err = quote(capsys, "SearchFaces=3000000", "--period", "2020-09")
    # Not named with --rules: it says which rule set it used, and why (the repository's ratecard.toml).
    assert (status, err) == (0, "ratecard: using rules rules/face-recognition (ratecard.toml)\n")
    assert "Total  2,400.00 USD" in out
    assert "Face search  3,000,000" in out


def test_the_spec_cliff_above(capsys):
    status, out, err = quote(capsys, "SearchFaces=3000001", "--period", "2020-09")
    assert (status, err) == (0, "ratecard: using rules rules/face-recognition (ratecard.toml)\n")
    assert "Total  1,800.00 USD" in out
    assert "1,800.0006" in out  # the exact amount is shown before rounding
    assert "-0.0006" in out  # and what rounding took off


def test_json_validates_against_the_bill_schema(capsys):
    status, out, _ = quote(capsys, "SearchFaces=3000001", "CreateGroup=12", "--period", "2020-09", "--format", "json")
    data = json.loads(out)
    VALIDATOR.validate(data)
    assert (status, data["total"], data["subtotal"], data["currency"]) == (0, "1800.00", "1800.0006", "USD")
    assert [(line["category"], line["calls"], line["free_calls"], line["tier"]) for line in data["lines"]] == [
        ("face-search", 3_000_001, 0, 2), ("group-management", 0, 12, 1)]


def test_json_with_explanation_validates_too(capsys):
    status, out, _ = quote(capsys, "SearchFaces=3000000", "--period", "2020-09", "--format", "json", "--explain")
    data = json.loads(out)
    VALIDATOR.validate(data)
    assert status == 0 and any("Next bound" in sentence for sentence in data["explanation"])


def test_explain_names_the_next_bound_and_what_it_would_cost(capsys):
    status, out, _ = quote(capsys, "SearchFaces=3000000", "--period", "2020-09", "--explain")
    assert status == 0
    # One more call crosses the bound: tier 2 for all 3,000,001 calls, 1,800.0006 USD.
    assert "Next bound: above 3,000,000 (1 more) tier 2 at 0.0006" in out
    assert "3,000,001 would cost 1,800.0006 USD" in out
    status, out, _ = quote(capsys, "SearchFaces=3000001", "--period", "2020-09", "--explain")
    assert "For comparison, 3,000,000 (the top of tier 1) would cost 2,400.00 USD" in out
    assert "Next bound: above 15,000,000" in out


def test_outcomes_on_the_command_line(capsys):
    status, out, _ = quote(capsys, "DetectFace:InvalidParameterValue.NoFaceInPhoto=5", "DetectFace:LimitExceeded=3",
                           "--period", "2020-09", "--format", "json")
    (line,) = json.loads(out)["lines"]
    assert (status, line["calls"], line["free_calls"], line["amount"]) == (0, 5, 3, "0.0025")


@pytest.mark.parametrize("word", ["SearchFaces", "SearchFaces=", "SearchFaces=abc", "SearchFaces=-1", "=5",
                                  "SearchFaces=1.5"])
def test_a_bad_usage_word_is_a_clear_error(capsys, word):
    status, out, err = quote(capsys, word, "--period", "2020-09")
    assert (status, out) == (2, "")  # a mistake on the command line
    assert repr(word) in err and ("expected API=CALLS" in err or "e.g. 2000000, 2,000,000" in err)
    assert "Traceback" not in err


def test_an_unknown_api_is_named(capsys):
    status, out, err = quote(capsys, "SearchFaces=1", "SearchFacez=3", "--period", "2020-09")
    assert (status, out) == (1, "")
    assert "unknown API SearchFacez" in err and "Traceback" not in err


def test_a_period_before_the_rules(capsys):
    status, _, err = quote(capsys, "SearchFaces=1", "--period", "2019-01")
    assert status == 1 and "no price book is in force for period 2019-01" in err


def test_quote_from_another_rule_set(capsys, toy_rules_dir):
    status, out, _ = quote(capsys, "RenderWidget=101", "ListWidgets=7", "--rules", str(toy_rules_dir),
                           "--period", "2024-03")
    assert status == 0 and "Total  5.05 EUR" in out and "Widget rendering" in out


def test_what_if_packs_and_suspension(capsys, tmp_path):
    rules = write_rule_set(tmp_path / "quota", pricing="""\
kind: pricing
effective_from: 2024-01-01
currency: EUR
tier_mode: volume
free_quota: { units: 10 }
resource_packs: { valid_for_months: 12 }
categories:
  widgets:
    name: Widget rendering
    tiers:
      - { up_to: 100, unit_price: 0.10 }
      - { unit_price: 0.05 }
  gadgets:
    name: Gadget lookups
    tiers:
      - { unit_price: 1.5 }
""")
    args = ["RenderWidget=150", "--rules", str(rules), "--period", "2024-03", "--format", "json"]
    _, out, _ = quote(capsys, *args, "--pack", "widgets=50")
    (line,) = json.loads(out)["lines"]
    # 150 − 10 free − 50 from the pack = 90 pay-as-you-go, tier 1: 9.00
    assert (line["free_quota_used"], line["packs_used"][0]["units_used"], line["payg_calls"], line["amount"]) \
        == (10, 50, 90, "9.00")
    _, out, _ = quote(capsys, *args, "--suspended")
    assert json.loads(out)["lines"][0]["free_quota_used"] == 0
    status, _, err = quote(capsys, *args, "--pack", "sprockets=5")
    assert status == 1 and "sprockets" in err


def test_the_installed_command_has_no_traceback_on_bad_input():
    done = subprocess.run([sys.executable, "-m", "ratecard", "quote", "SearchFaces=lots", "--period", "2020-09"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and "bad usage 'SearchFaces=lots'" in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run([sys.executable, "-m", "ratecard", "quote", "SearchFaces=3000001", "--period", "2020-09"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and "Total  1,800.00 USD" in done.stdout
