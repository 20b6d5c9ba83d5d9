"""One test per class of bad rule file: the exact file, line and column reported, and nothing else.

Each test writes the toy rule set (tests/conftest.py) with one thing broken, so the positions can be
read off the YAML in conftest.py or in the test itself. Asserting the complete list of errors shows
both that the problem is found where it is, and that it does not drag false errors along.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import ROOT, TOY_APIS, TOY_PRICING, TOY_SETTLEMENT, write_rule_set
from ratecard.cli import main
from ratecard.lint import lint, lint_report, volume_cliff
from ratecard.rules import check_rules, load_rules


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    # Problems name files relative to the working directory: run where the rule sets are written.
    monkeypatch.chdir(tmp_path)


def errors(directory="rs", **files):
    """(file, line, column, code) of every error, after writing the toy set with `files` changed."""
    write_rule_set(Path(directory), **files)
    _, problems = check_rules(directory)
    return [(p.location.file, p.location.line, p.location.column, p.code)
            for p in problems if p.severity == "error"]


def only_problem(**files):
    """The one problem of a rule set, asserting there is exactly one."""
    write_rule_set(Path("rs"), **files)
    _, problems = check_rules("rs")
    assert len(problems) == 1, problems
    return problems[0]


def where(problem):
    return problem.location.file, problem.location.line, problem.location.column, problem.location.path


# -- YAML reading -----------------------------------------------------------------------------------

def test_yaml_syntax_error_is_located_and_the_other_files_are_still_checked():
    # Line 9 `tiers:` is indented by 3, not 4: it cannot continue the mapping of `name:`.
    bad = TOY_PRICING.replace("    tiers:\n      - { up_to: 100", "   tiers:\n      - { up_to: 100")
    found = errors(pricing=bad, settlement=TOY_SETTLEMENT.replace("Europe/Berlin", "Mars/Olympus"))
    assert found == [
        ("rs", 1, 1, "missing-kind"),  # the unreadable price book leaves the set without one
        ("rs/pricing.yaml", 9, 4, "yaml-syntax"),
        ("rs/settlement.yaml", 4, 12, "schema:enum"),
    ]


def test_duplicate_key_points_at_the_second_occurrence():
    pasted_twice = TOY_PRICING + "  widgets:\n    name: Widgets again\n    tiers:\n      - { unit_price: 1 }\n"
    problem = only_problem(pricing=pasted_twice)
    assert where(problem) == ("rs/pricing.yaml", 18, 3, "categories.widgets")
    assert "duplicate key 'widgets' (first written at line 7)" in problem.message


def test_yes_is_not_a_boolean():
    problem = only_problem(apis=TOY_APIS.replace("success: true", "success: yes"))
    assert where(problem) == ("rs/apis.yaml", 5, 12, "billable_outcomes.success")
    assert "got the text 'yes'; write true or false" in problem.message


def test_quoted_price_is_reported_not_guessed():
    problem = only_problem(pricing=TOY_PRICING.replace("unit_price: 0.10", 'unit_price: "0.10"'))
    assert where(problem) == ("rs/pricing.yaml", 10, 35, "categories.widgets.tiers[0].unit_price")
    assert "write it without quotes" in problem.message


def test_thousands_separator_is_reported():
    # Block style: in a flow mapping `{ up_to: 1,000 }` the comma would split the entry instead.
    block = TOY_PRICING.replace("      - { up_to: 1000, unit_price: 0.05 }",
                                "      - up_to: 1,000\n        unit_price: 0.05")
    problem = only_problem(pricing=block)
    assert where(problem) == ("rs/pricing.yaml", 11, 16, "categories.widgets.tiers[1].up_to")
    assert "write the number without separators (1000)" in problem.message


# Numbers are read as YAML 1.2 (the core schema) reads them, because that is what the editor reads
# (yaml-language-server): the value the editor checks is the value ratecard checks (issue 16 item 7).
def test_leading_zeros_are_a_decimal_number_as_in_yaml_1_2_and_the_editor():
    pricing = TOY_PRICING.replace("up_to: 100,", "up_to: 0100,").replace("up_to: 1000,", "up_to: 0o1750,")
    tiers = load_rules(write_rule_set(Path("rs"), pricing=pricing)).pricing[0].categories["widgets"].tiers
    assert [t.up_to for t in tiers] == [100, 1000, None]  # 0100 is a hundred, not 64; 0o1750 is octal


@pytest.mark.parametrize("written", ["1_000", "01_000"])
def test_digit_grouping_is_text_as_in_yaml_1_2_and_the_editor(written):
    problem = only_problem(pricing=TOY_PRICING.replace("up_to: 1000,", f"up_to: {written},"))
    assert where(problem) == ("rs/pricing.yaml", 11, 18, "categories.widgets.tiers[1].up_to")
    assert problem.code == "schema:type"
    assert f"got the text {written!r}; write the number without separators ({written.replace('_', '')})" in problem.message


@pytest.mark.parametrize("written", [".inf", "-.inf", ".nan"])
def test_infinite_numbers_are_refused_once(written):
    problem = only_problem(pricing=TOY_PRICING.replace("unit_price: 0.01", f"unit_price: {written}"))
    assert problem.code == "number-range" and "is not a finite number" in problem.message


def test_exponents_are_read_as_plainly_meant():
    pricing = TOY_PRICING.replace("up_to: 100,", "up_to: 1e2,").replace("up_to: 1000,", "up_to: 1.0e3,") \
        .replace("unit_price: 0.01", "unit_price: 1e-2")
    rules = load_rules(write_rule_set(Path("rs"), pricing=pricing))
    tiers = rules.pricing[0].categories["widgets"].tiers
    assert [t.up_to for t in tiers] == [100, 1000, None]
    assert all(type(t.up_to) is int for t in tiers[:2])
    assert tiers[2].unit_price == Decimal("0.01") and isinstance(tiers[2].unit_price, Decimal)


# -- schema -----------------------------------------------------------------------------------------

def test_unknown_key_points_at_the_key():
    problem = only_problem(pricing=TOY_PRICING.replace("    name: Gadget lookups",
                                                       "    name: Gadget lookups\n    colour: red"))
    assert where(problem) == ("rs/pricing.yaml", 15, 5, "categories.gadgets.colour")
    assert "unknown key 'colour'" in problem.message


def test_missing_required_key_points_at_its_parent():
    problem = only_problem(pricing=TOY_PRICING.replace("    name: Gadget lookups\n", ""))
    assert where(problem)[:2] == ("rs/pricing.yaml", 13) and where(problem)[3] == "categories.gadgets"
    assert "missing required key `name`" in problem.message


def test_a_tier_without_a_price_points_at_the_tier():
    # A tier may be a flat amount only (issue 12), so `unit_price` is no longer required by the
    # schema: a tier with neither is a semantic error, at the same place the schema reported it.
    problem = only_problem(pricing=TOY_PRICING.replace("{ up_to: 1000, unit_price: 0.05 }", "{ up_to: 1000 }"))
    assert where(problem) == ("rs/pricing.yaml", 11, 9, "categories.widgets.tiers[1]")
    assert "has no price; expected a `unit_price`, a `flat_amount` or both" in problem.message


def test_negative_price():
    problem = only_problem(pricing=TOY_PRICING.replace("unit_price: 1.25", "unit_price: -1.25"))
    assert where(problem) == ("rs/pricing.yaml", 17, 23, "categories.gadgets.tiers[1].unit_price")
    assert "-1.25 is out of range; expected at least 0" in problem.message


# -- tiers ------------------------------------------------------------------------------------------

def test_tiers_not_ascending():
    problem = only_problem(pricing=TOY_PRICING.replace("up_to: 1000,", "up_to: 50,"))
    assert where(problem) == ("rs/pricing.yaml", 11, 18, "categories.widgets.tiers[1].up_to")
    assert problem.code == "tiers-not-ascending"


def test_middle_tier_unbounded():
    problem = only_problem(pricing=TOY_PRICING.replace("{ up_to: 1000, unit_price: 0.05 }", "{ unit_price: 0.05 }"))
    assert where(problem) == ("rs/pricing.yaml", 11, 9, "categories.widgets.tiers[1]")
    assert problem.code == "unbounded-middle-tier"


def test_last_tier_bounded():
    problem = only_problem(pricing=TOY_PRICING.replace("{ unit_price: 1.25 }", "{ up_to: 20, unit_price: 1.25 }"))
    assert where(problem) == ("rs/pricing.yaml", 17, 11, "categories.gadgets.tiers[1].up_to")
    assert problem.code == "bounded-last-tier"


# -- API mapping against the price book -------------------------------------------------------------

def test_mapped_category_missing_from_price_book():
    problem = only_problem(apis=TOY_APIS + "  sprockets:\n    billable: [SpinSprocket]\n")
    assert where(problem) == ("rs/apis.yaml", 15, 3, "categories.sprockets")
    assert "category 'sprockets' is not in the price book" in problem.message


def test_api_mapped_twice_points_at_the_second_listing():
    problem = only_problem(apis=TOY_APIS.replace("billable: [LookupGadget]", "billable: [LookupGadget, RenderWidget]"))
    assert where(problem) == ("rs/apis.yaml", 14, 30, "categories.gadgets.billable[1]")
    assert "API RenderWidget is mapped twice (first at line 11" in problem.message


def test_priced_category_no_billable_api_reaches():
    problem = only_problem(apis=TOY_APIS.replace("billable: [LookupGadget]", "free: [LookupGadget]"))
    assert where(problem) == ("rs/pricing.yaml", 13, 3, "categories.gadgets")
    assert problem.code == "unreachable-category"


# -- values checked against the world ---------------------------------------------------------------

# The schema lists the allowed values (so an editor flags them while typing, issue 16 item 7), and
# the engine checks them with the same schema.
@pytest.mark.parametrize("code, hint", [("EUX", "EUR?"), ("euro", "did you mean EUR?"),
                                        ("XYZ", "; expected e.g. USD or CNY")])
def test_currency_must_be_iso_4217(code, hint):
    problem = only_problem(pricing=TOY_PRICING.replace("currency: EUR", f"currency: {code}"))
    assert where(problem) == ("rs/pricing.yaml", 3, 11, "currency")
    assert problem.code == "schema:enum"
    assert problem.message.startswith(f"the text {code!r} is not a known currency (ISO 4217 code); ")
    assert hint.removesuffix("?") in problem.message


@pytest.mark.parametrize("quantum", ["0.03", "0.000000001", "10", "5"])
def test_insane_rounding_quantum(quantum):
    problem = only_problem(settlement=TOY_SETTLEMENT.replace("quantum: 0.01", f"quantum: {quantum}"))
    assert where(problem) == ("rs/settlement.yaml", 7, 22, "rounding.quantum")
    assert problem.code == "schema:enum"
    assert "expected one of: 1, 0.1, 0.01, 0.001, 0.0001, 0.00001" in problem.message


@pytest.mark.parametrize("quantum", ["0.010", "1e-2", "1", "0.00000001"])
def test_a_power_of_ten_quantum_in_any_spelling_is_allowed(quantum):
    assert errors(settlement=TOY_SETTLEMENT.replace("quantum: 0.01", f"quantum: {quantum}")) == []


def test_day_of_month_out_of_range():
    problem = only_problem(settlement=TOY_SETTLEMENT.replace("last_day: 9", "last_day: 31"))
    assert where(problem) == ("rs/settlement.yaml", 6, 45, "deduction_window.last_day")
    assert "31 is out of range; expected at most 28" in problem.message


def test_deduction_window_reversed():
    problem = only_problem(settlement=TOY_SETTLEMENT.replace("first_day: 5, last_day: 9", "first_day: 9, last_day: 5"))
    assert where(problem) == ("rs/settlement.yaml", 6, 45, "deduction_window.last_day")
    assert "ends (day 5) before it starts (day 9)" in problem.message


def test_unknown_time_zone():
    problem = only_problem(settlement=TOY_SETTLEMENT.replace("Europe/Berlin", "Europe/Berlinn"))
    assert where(problem) == ("rs/settlement.yaml", 4, 12, "time_zone")
    assert problem.message.startswith("the text 'Europe/Berlinn' is not a known time zone (IANA name); "
                                      "did you mean Europe/Berlin or ")


# -- files of the rule set --------------------------------------------------------------------------

def test_unknown_kind():
    assert errors(pricing=TOY_PRICING.replace("kind: pricing", "kind: prices")) == [
        ("rs", 1, 1, "missing-kind"),
        ("rs/pricing.yaml", 1, 7, "kind"),
    ]



@pytest.mark.parametrize("written, shown", [("[pricing]", "a list"), ("{a: 1}", "a mapping")])
def test_a_kind_that_is_a_list_or_mapping_is_located_not_a_crash(written, shown):
    # issue 11 item 12: this raised TypeError (unhashable type) out of check_rules.
    write_rule_set(Path("rs"), pricing=TOY_PRICING.replace("kind: pricing", f"kind: {written}"))
    _, problems = check_rules("rs")
    assert [(where(p), p.code) for p in problems] == [
        (("rs", 1, 1, ""), "missing-kind"), (("rs/pricing.yaml", 1, 7, "kind"), "kind")]
    assert f"the rule file kind must be a name, got {shown}" in problems[1].message


def test_api_mapping_categories_that_are_a_number_are_located_not_a_crash():
    # issue 11 item 12: `categories: 1.5` raised TypeError in the check against the price book.
    apis = TOY_APIS.split("categories:")[0] + "categories: 1.5\n"
    found = errors(apis=apis)
    assert ("rs/apis.yaml", 9, 13, "schema:type") in found
    assert all(code in ("schema:type", "unreachable-category") for *_, code in found)


def test_a_pack_validity_beyond_a_hundred_years_is_out_of_range():
    # issue 11 item 12: 100000 months validated, then `pack buy` failed with "year 10354 is out of range".
    problem = only_problem(pricing=TOY_PRICING + "resource_packs: { valid_for_months: 100000 }\n")
    assert where(problem) == ("rs/pricing.yaml", 18, 37, "resource_packs.valid_for_months")
    assert "the number 100000 is out of range; expected at most 1200" in problem.message
    assert only_problem(pricing=TOY_PRICING + "resource_packs: { valid_for_months: 1201 }\n").code == "schema:maximum"
    assert errors(pricing=TOY_PRICING + "resource_packs: { valid_for_months: 1200 }\n") == []


def test_a_nul_character_is_located_where_it_is():
    # issue 11 item 18: reported at 1:1 with PyYAML's "position 287".
    bad = TOY_PRICING.replace("name: Gadget lookups", "name: Gadget\0lookups")
    problem = [p for p in (write_rule_set(Path("rs"), pricing=bad) and check_rules("rs"))[1]
               if p.location.file == "rs/pricing.yaml"]
    assert [where(p) for p in problem] == [("rs/pricing.yaml", 14, 17, "")]
    assert "U+0000 is not allowed" in problem[0].message


@pytest.mark.parametrize("tagged, line, column", [
    ("tiers: !prices\n      - { up_to: 10, unit_price: 1.5 }", 15, 12),  # a list
    ("  gadgets: !category\n", 13, 12),  # a mapping
    ("tiers: !!set\n      - { up_to: 10, unit_price: 1.5 }", 15, 12),
])
def test_yaml_tags_on_lists_and_mappings_are_unsupported(tagged, line, column):
    # issue 11 item 18: only plain values got the "unsupported tag" error; lists and mappings passed.
    plain = "tiers:\n      - { up_to: 10, unit_price: 1.5 }" if "tiers" in tagged else "  gadgets:\n"
    problem = only_problem(pricing=TOY_PRICING.replace(plain, tagged))
    assert (problem.location.line, problem.location.column, problem.code) == (line, column, "yaml-tag")
    assert "unsupported YAML tag" in problem.message


def test_standard_list_and_mapping_tags_change_nothing():
    tagged = TOY_PRICING.replace("  gadgets:\n", "  gadgets: !!map\n").replace("tiers:\n      - { up_to: 10,",
                                                                                "tiers: !!seq\n      - { up_to: 10,")
    assert errors(pricing=tagged) == []



@pytest.mark.parametrize("written, line, column, shown", [
    ("name: \"Gadget\\e[31m lookups\"", 14, 11, "U+001B (ESCAPE"),  # an ANSI escape
    ("name: \"Gadget\\n  top-up 1,000,000.00\"", 14, 11, "U+000A (LINE FEED)"),  # a forged line
    ("name: \"Gadget \\u2066lookups\"", 14, 11, "U+2066 (LEFT-TO-RIGHT ISOLATE)"),
])
def test_a_control_character_in_text_shown_on_documents_is_refused(written, line, column, shown):
    # issue 11 item 15: a display name could forge or hide a row of a text invoice or rate card.
    problem = only_problem(pricing=TOY_PRICING.replace("name: Gadget lookups", written))
    assert (where(problem), problem.code) == (("rs/pricing.yaml", line, column, "categories.gadgets.name"),
                                              "unsafe-text")
    assert f"the text holds {shown}" in problem.message


def test_a_description_may_run_over_lines():
    written = TOY_PRICING.replace("    name: Gadget lookups\n", "    name: Gadget lookups\n    description: |\n"
                                                                "      Looks up gadgets.\n      By id.\n")
    assert errors(pricing=written) == []


def test_a_dangling_symlink_named_like_a_rule_file_is_an_error_not_ignored():
    # issue 11 item 18: the link was skipped, so the set loaded without the rules it points to.
    write_rule_set(Path("rs"), apis=None)
    Path("rs/apis.yaml").symlink_to("../elsewhere/apis.yaml")
    _, problems = check_rules("rs")
    assert [(where(p), p.code) for p in problems] == [
        (("rs", 1, 1, ""), "missing-kind"), (("rs/apis.yaml", 1, 1, ""), "not-a-file")]
    assert "a symbolic link to ../elsewhere/apis.yaml, which does not exist" in problems[1].message


def test_a_folder_named_like_a_rule_file_is_an_error_not_ignored():
    write_rule_set(Path("rs"))
    Path("rs/extra.yaml").mkdir()
    problem = only_problem()
    assert (where(problem), problem.code) == (("rs/extra.yaml", 1, 1, ""), "not-a-file")
    assert "a folder named like a rule file" in problem.message


def test_missing_kind_file_is_reported_at_the_folder():
    problem = only_problem(settlement=None)
    assert where(problem) == ("rs", 1, 1, "")
    assert "no settlement policy in this rule set; expected a file with `kind: settlement`" in problem.message


def test_empty_file():
    assert errors(apis="# only a comment\n") == [
        ("rs", 1, 1, "missing-kind"),
        ("rs/apis.yaml", 1, 1, "empty"),
    ]


def test_nonexistent_path():
    _, problems = check_rules("no-such-folder")
    assert [(where(p), p.message) for p in problems] == [
        (("no-such-folder", 1, 1, ""), "no such rule set folder; expected a folder of YAML rule files")]


def test_a_file_instead_of_a_folder(tmp_path):
    (tmp_path / "pricing.yaml").write_text(TOY_PRICING)
    _, problems = check_rules("pricing.yaml")
    assert [where(p) for p in problems] == [("pricing.yaml", 1, 1, "")]
    assert "not a folder" in problems[0].message


def test_file_that_is_not_utf8():
    write_rule_set(Path("rs"))
    with open("rs/apis.yaml", "ab") as fh:
        fh.write(b"# caf\xe9\n")  # Latin-1, as an old editor might save it: line 15
    _, problems = check_rules("rs")
    assert [where(p) for p in problems] == [("rs", 1, 1, ""), ("rs/apis.yaml", 15, 1, "")]
    assert "not UTF-8" in problems[1].message


def test_unreadable_file(monkeypatch):
    write_rule_set(Path("rs"))
    # Denied by the operating system; simulated, since tests may run as root, who reads anything.
    real = Path.read_bytes

    def read_bytes(path):
        if path.name == "apis.yaml":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    _, problems = check_rules("rs")
    assert [where(p) for p in problems] == [("rs", 1, 1, ""), ("rs/apis.yaml", 1, 1, "")]
    assert problems[1].message == "cannot read the file: Permission denied"


def test_overlapping_versions():
    problem = only_problem(pricing2=TOY_PRICING.replace("unit_price: 0.10", "unit_price: 0.20"))
    assert where(problem) == ("rs/pricing2.yaml", 2, 17, "effective_from")
    assert "two price book versions start on 2024-01-01 (the other is rs/pricing.yaml)" in problem.message


def test_mid_period_version():
    problem = only_problem(pricing2=TOY_PRICING.replace("2024-01-01", "2024-03-15"))
    assert where(problem) == ("rs/pricing2.yaml", 2, 17, "effective_from")
    assert "must start on the 1st of a month, e.g. 2024-03-01" in problem.message


# -- all at once ------------------------------------------------------------------------------------

MANY_PROBLEMS = """\
kind: pricing
effective_from: 2024-01-01
currency: EUX
tier_mode: volume
categories:
  widgets:
    name: Widget rendering
    tiers:
      - { up_to: 100, unit_price: "0.10" }
      - { up_to: 50, unit_price: 0.05 }
      - { unit_price: -0.01 }
  gadgets:
    name: Gadget lookups
    colour: red
    tiers:
      - { up_to: 10, unit_price: 1.5 }
      - { unit_price: 1.25 }
  gadgets:
    name: Gadget lookups again
    tiers: [{ unit_price: 1 }]
"""


def test_every_problem_of_every_file_is_reported_in_one_run():
    found = errors(pricing=MANY_PROBLEMS, apis=TOY_APIS.replace("success: true", "success: no"),
                   settlement=TOY_SETTLEMENT.replace("Europe/Berlin", "Europe/Berlinn"))
    assert found == [
        ("rs/apis.yaml", 5, 12, "schema:type"),
        ("rs/pricing.yaml", 3, 11, "schema:enum"),
        ("rs/pricing.yaml", 9, 35, "schema:type"),
        ("rs/pricing.yaml", 10, 18, "tiers-not-ascending"),
        ("rs/pricing.yaml", 11, 23, "schema:minimum"),
        ("rs/pricing.yaml", 14, 5, "schema:additionalProperties"),
        ("rs/pricing.yaml", 18, 3, "duplicate-key"),
        ("rs/settlement.yaml", 4, 12, "schema:enum"),
    ]


# -- the command ------------------------------------------------------------------------------------

def run(*argv, cwd=None):
    """`python -m ratecard ...` as a user runs it: a separate process, so a traceback would show."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "ratecard", *argv], capture_output=True, text=True,
                          cwd=cwd, env=env)


def test_validate_valid_rule_set_exits_0_with_a_one_line_summary(capsys):
    write_rule_set(Path("rs"))
    assert main(["validate", "rs"]) == 0
    out, err = capsys.readouterr()
    assert out.count("\n") == 1 and err == ""
    assert out.startswith("rs: valid — 2 categories, 3 billable and 1 free API, EUR, volume tiers")


def test_validate_without_argument_checks_the_shipped_rules(capsys):
    assert main(["validate"]) == 0
    assert "face-recognition: valid — 7 categories" in capsys.readouterr().out


def test_validate_invalid_exits_1_listing_every_problem(capsys):
    write_rule_set(Path("rs"), pricing=MANY_PROBLEMS)
    assert main(["validate", "rs"]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 6
    assert lines[0].startswith("rs/pricing.yaml:3:11: error: currency: the text 'EUX' is not a known currency (ISO 4217 code)")
    assert lines[-1].startswith("rs/pricing.yaml:18:3: error: categories.gadgets: duplicate key 'gadgets'")
    assert err == "6 errors found\n"


def test_validate_json_gives_problems_as_data(capsys):
    write_rule_set(Path("rs"), apis=TOY_APIS.replace("success: true", "success: yes"))
    assert main(["validate", "rs", "--format", "json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["valid"] is False
    assert out["problems"] == [{
        "file": "rs/apis.yaml", "line": 5, "column": 12, "path": "billable_outcomes.success",
        "message": "expected true or false, got the text 'yes'; write true or false "
                   "(yes/no/on/off are not booleans here)",
        "severity": "error", "code": "schema:type",
    }]


def test_validate_json_when_valid(capsys):
    write_rule_set(Path("rs"))
    assert main(["validate", "rs", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["valid"] is True and out["problems"] == []
    assert out["rule_sets"][0]["fingerprint"].startswith("sha256:")


@pytest.mark.parametrize("setup", ["missing", "file", "syntax", "empty", "binary", "not-a-mapping"])
def test_bad_input_never_gives_a_traceback(tmp_path, setup):
    target = tmp_path / "rs"
    if setup == "file":
        target.write_text("kind: pricing\n")
    elif setup != "missing":
        write_rule_set(target, pricing={"syntax": "kind: [pricing\n", "empty": "", "binary": None,
                                        "not-a-mapping": "- just\n- a list\n"}[setup])
        if setup == "binary":
            (target / "pricing.yaml").write_bytes(b"\xff\xfe\x00k\x00i")
    for command in ("validate", "lint"):
        done = run(command, "rs", cwd=tmp_path)
        assert done.returncode == 1, done
        assert "Traceback" not in done.stderr + done.stdout
        assert done.stdout.startswith("rs"), done.stdout  # every problem is located in the input


# -- lint -------------------------------------------------------------------------------------------

def test_lint_states_the_face_search_cliff_in_money(shipped_rules):
    # The shipped book acknowledges its cliffs (they are the product's), so the finding is acknowledged.
    [cliff] = [p for p in lint_report(shipped_rules).acknowledged
               if p.location.path == "categories.face-search.tiers[0].up_to"]
    assert cliff.severity == "warning" and cliff.code == "price-cliff"
    assert cliff.message.endswith(
        "3,000,000 calls cost 2,400.00 USD but 3,000,001 cost 1,800.0006 USD, "
        "so every count from 3,000,001 to 3,999,999 is cheaper than 3,000,000 calls")
    assert (cliff.location.file.endswith("rules/face-recognition/pricing.yaml"),
            cliff.location.line, cliff.location.column) == (True, 52, 18)


def test_lint_cliff_end_is_exact():
    # The cliff ends at the smallest count that costs as much as the bound does: 2,400 / 0.0006.
    assert volume_cliff(3_000_000, Decimal("0.0008"), Decimal("0.0006"), 15_000_000) == (
        Decimal("2400.0000"), Decimal("1800.0006"), 3_999_999)
    # A count that lands exactly on the bound's cost is not cheaper: 100 × 0.3 = 30 = 150 × 0.2.
    assert volume_cliff(100, Decimal("0.3"), Decimal("0.2"), None)[2] == 149
    # The cliff cannot run past the next tier's bound, where another price applies.
    assert volume_cliff(100, Decimal("1"), Decimal("0.1"), 200)[2] == 200
    # No cliff when one more unit costs more overall.
    assert volume_cliff(100, Decimal("0.10"), Decimal("0.0999"), None) is None


def test_lint_toy_cliffs_in_the_rule_set_units_and_currency(capsys):
    write_rule_set(Path("rs"))
    assert main(["lint", "rs"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "rs/pricing.yaml:10:18: warning: categories.widgets.tiers[0].up_to: Widget rendering: price cliff at the "
        "tier 1 bound: 100 requests cost 10.00 EUR but 101 cost 5.05 EUR, so every count from 101 to 199 "
        "is cheaper than 100 requests",
        "rs/pricing.yaml:11:18: warning: categories.widgets.tiers[1].up_to: Widget rendering: price cliff at the "
        "tier 2 bound: 1,000 requests cost 50.00 EUR but 1,001 cost 10.01 EUR, so every count from 1,001 to "
        "4,999 is cheaper than 1,000 requests",
        # 12 × 1.25 = 15.00 already: only 11 is cheaper, so there is no range to state.
        "rs/pricing.yaml:16:18: warning: categories.gadgets.tiers[0].up_to: Gadget lookups: price cliff at the "
        "tier 1 bound: 10 requests cost 15.00 EUR but 11 cost 13.75 EUR",
        "rs: valid, 3 warnings",
    ]


def test_lint_dearer_higher_tier():
    pricing = TOY_PRICING.replace("{ unit_price: 1.25 }", "{ unit_price: 1.75 }")
    rules = load_rules(write_rule_set(Path("rs"), pricing=pricing))
    [dearer] = [p for p in lint(rules) if p.code == "dearer-higher-tier"]
    assert where(dearer) == ("rs/pricing.yaml", 17, 23, "categories.gadgets.tiers[1].unit_price")
    assert dearer.message == (
        "Gadget lookups: tier 2 (above 10 requests) costs 1.75 EUR per request, more than tier 1 (1.5 EUR); "
        "a larger volume pays more per request: check that the prices are not swapped")


def test_lint_graduated_tiers_have_no_cliff():
    pricing = TOY_PRICING.replace("tier_mode: volume", "tier_mode: graduated")
    assert lint(load_rules(write_rule_set(Path("rs"), pricing=pricing))) == []


def test_lint_free_category_and_nothing_billed():
    pricing = TOY_PRICING.replace("unit_price: 1.5", "unit_price: 0").replace("unit_price: 1.25", "unit_price: 0")
    apis = TOY_APIS.replace("success: true", "success: false").replace("  error_codes: [Quota.Partial]\n", "")
    rules = load_rules(write_rule_set(Path("rs"), pricing=pricing, apis=apis))
    found = {p.code: where(p) for p in lint(rules)}
    assert found["free-category"] == ("rs/pricing.yaml", 13, 3, "categories.gadgets")
    assert found["nothing-billed"] == ("rs/apis.yaml", 5, 12, "billable_outcomes.success")
    assert found["same-price-tier"] == ("rs/pricing.yaml", 17, 23, "categories.gadgets.tiers[1].unit_price")


def test_lint_dropped_api_in_a_later_mapping():
    later = TOY_APIS.replace("2024-01-01", "2024-06-01").replace("billable: [RenderWidget, RenderWidgetBatch]",
                                                                 "billable: [RenderWidget]")
    rules = load_rules(write_rule_set(Path("rs"), apis2=later))
    [dropped] = [p for p in lint(rules) if p.code == "dropped-api"]
    assert where(dropped) == ("rs/apis2.yaml", 10, 3, "categories.widgets")
    assert dropped.message.startswith("API RenderWidgetBatch is listed (billable in widgets) until 2024-05-31 "
                                      "by rs/apis.yaml but not from 2024-06-01")


def test_lint_exit_status_and_json(capsys):
    write_rule_set(Path("rs"))
    assert main(["lint", "rs", "--strict"]) == 1
    capsys.readouterr()
    assert main(["lint", "rs", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["valid"] is True and out["warnings"] == 3
    assert {p["severity"] for p in out["problems"]} == {"warning"}
    assert set(out["problems"][0]) >= {"file", "line", "column", "path", "message", "severity"}


def test_lint_reports_errors_first_and_exits_1(capsys):
    write_rule_set(Path("rs"), pricing=MANY_PROBLEMS)
    assert main(["lint", "rs"]) == 1
    out = capsys.readouterr().out
    assert "warning" not in out and out.count(": error: ") == 6


def test_without_a_folder_validate_checks_the_rule_sets_under_rules_of_the_working_folder(tmp_path, monkeypatch,
                                                                                           capsys):
    from conftest import write_rule_set

    write_rule_set(tmp_path / "rules" / "my-product")
    bad = write_rule_set(tmp_path / "rules" / "other", pricing=None)
    monkeypatch.chdir(tmp_path)
    assert main(["validate"]) == 1  # what an analysts' pre-commit hook runs
    out = capsys.readouterr().out
    assert "rules/my-product: valid" in out
    assert f"{bad.relative_to(tmp_path)}:1:1: error: no price book in this rule set" in out
