"""Lint an analyst can make pass: a finding acknowledged in the rule file itself, with a reason.

`# lint: allow CODE -- why` on the line a warning points at excuses that warning; the comment is
itself checked (unknown code, no reason, nothing left to acknowledge)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ratecard.cli import main
from ratecard.lint import lint, lint_report
from ratecard.rules import load_rules

from conftest import ROOT, TOY_PRICING, write_rule_set



@pytest.fixture(autouse=True)
def _in_a_folder_of_its_own(tmp_path, monkeypatch):
    # Each test names its rule set as an analyst types it (relative: "rs"), so it runs in a temporary
    # folder, never in the repository.
    monkeypatch.chdir(tmp_path)


CLIFF_100 = "      - { up_to: 100, unit_price: 0.10 }"
CLIFF_1000 = "      - { up_to: 1000, unit_price: 0.05 }"
CLIFF_10 = "      - { up_to: 10, unit_price: 1.5 }"


def _acknowledged(*lines_and_comments) -> str:
    pricing = TOY_PRICING
    for line, comment in lines_and_comments:
        assert line in pricing
        pricing = pricing.replace(line, line + comment)
    return pricing


def _codes(problems):
    return sorted((p.location.line, p.code) for p in problems)


def test_the_toy_book_has_three_cliffs_and_strict_fails(capsys):
    write_rule_set(Path("rs"))
    assert main(["lint", "rs", "--strict"]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "rs: valid, 3 warnings"


def test_acknowledged_cliffs_pass_strict_and_are_counted(capsys):
    pricing = _acknowledged((CLIFF_100, "  # lint: allow price-cliff -- the launch discount"),
                            (CLIFF_1000, "  # lint: allow price-cliff — volume pricing is the product's rule"),
                            (CLIFF_10, "  #lint: allow price-cliff: intended"))
    write_rule_set(Path("rs"), pricing=pricing)
    assert main(["lint", "rs", "--strict"]) == 0
    assert capsys.readouterr().out.splitlines() == ["rs: valid, 0 warnings (3 acknowledged)"]
    assert main(["lint", "rs", "--strict", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["warnings"], out["acknowledged"], out["rule_sets"][0]["acknowledged"]) == (0, 3, 3)


def test_an_acknowledgement_excuses_only_its_line_and_its_code():
    pricing = _acknowledged((CLIFF_100, "  # lint: allow price-cliff -- the launch discount"))
    report = lint_report(load_rules(write_rule_set(Path("rs"), pricing=pricing)))
    assert _codes(report.acknowledged) == [(10, "price-cliff")]
    assert _codes(report.warnings) == [(11, "price-cliff"), (16, "price-cliff")]


def test_an_acknowledgement_that_no_longer_matches_is_a_warning():
    # The analyst fixed the cliff at 100 (tier 2 now costs enough) but left the comment.
    pricing = _acknowledged((CLIFF_100, "  # lint: allow price-cliff -- the launch discount"))
    pricing = pricing.replace("{ up_to: 1000, unit_price: 0.05 }", "{ up_to: 1000, unit_price: 0.0999 }")
    problems = lint(load_rules(write_rule_set(Path("rs"), pricing=pricing)))
    [unused] = [p for p in problems if p.code == "unused-acknowledgement"]
    assert (unused.location.line, unused.location.column) == (10, 43)
    assert unused.message.startswith("`# lint: allow price-cliff` acknowledges no finding: lint reports no "
                                     "price-cliff on this line")
    assert unused.severity == "warning"


def test_the_code_of_another_finding_does_not_excuse_it_and_is_unused():
    pricing = _acknowledged((CLIFF_100, "  # lint: allow same-price-tier -- merged later"))
    problems = lint(load_rules(write_rule_set(Path("rs"), pricing=pricing)))
    assert (10, "price-cliff") in _codes(problems) and (10, "unused-acknowledgement") in _codes(problems)


@pytest.mark.parametrize("comment, code, says", [
    ("  # lint: allow price-clif -- typo", "unknown-lint-code", "names price-clif, which lint does not report"),
    ("  # lint: allow", "unknown-lint-code", "names no code"),
    ("  # lint: allow price-cliff", "acknowledgement-without-reason", "does not say why"),
    ("  # lint: allow price-cliff --", "acknowledgement-without-reason", "does not say why"),
])
def test_a_malformed_acknowledgement_is_reported(comment, code, says):
    pricing = _acknowledged((CLIFF_100, comment))
    problems = lint(load_rules(write_rule_set(Path("rs"), pricing=pricing)))
    [found] = [p for p in problems if p.code == code]
    assert found.location.line == 10 and says in found.message


def test_several_codes_on_one_line():
    pricing = TOY_PRICING.replace("{ unit_price: 1.25 }", "{ unit_price: 1.75 }")  # dearer tier 2 of gadgets
    pricing = pricing.replace("      - { unit_price: 1.75 }",
                              "      - { unit_price: 1.75 }  # lint: allow dearer-higher-tier, price-cliff -- x")
    problems = lint(load_rules(write_rule_set(Path("rs"), pricing=pricing)))
    assert (17, "dearer-higher-tier") not in _codes(problems)
    assert (17, "unused-acknowledgement") in _codes(problems)  # no cliff on that line


def test_the_shipped_rule_sets_pass_strict_with_their_cliffs_acknowledged(capsys):
    for name in ("face-recognition", "face-recognition-cn"):
        rules = load_rules(ROOT / "rules" / name)
        report = lint_report(rules)
        assert report.warnings == []
        assert {p.code for p in report.acknowledged} == {"price-cliff"} and len(report.acknowledged) == 14
    assert main(["lint", "--strict", str(ROOT / "rules" / "face-recognition"),
                 str(ROOT / "rules" / "face-recognition-cn")]) == 0


def test_a_free_first_tier_is_an_allowance_not_a_dearer_tier():
    pricing = TOY_PRICING.replace("{ up_to: 100, unit_price: 0.10 }", "{ up_to: 100, unit_price: 0 }")
    problems = lint(load_rules(write_rule_set(Path("rs"), pricing=pricing)))
    assert "dearer-higher-tier" not in {p.code for p in problems}
    # a paid tier dearer than a paid tier below is still reported
    pricing = pricing.replace("{ unit_price: 0.01 }", "{ unit_price: 0.06 }")
    problems = lint(load_rules(write_rule_set(Path("rs"), pricing=pricing)))
    assert [(p.location.line, p.code) for p in problems if p.code == "dearer-higher-tier"] == [(12, "dearer-higher-tier")]
