"""Rule-set discovery (engine/discovery.py, engine/gitindex.py): issue 16 items 1-5 and 8, and the one
rule-set vocabulary of issue 14 item 2. Every test here failed on the code before discovery existed.

The real clients (pre-commit, yaml-language-server) are driven in test_precommit.py and test_editor.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, TOY_APIS, TOY_PRICING, write_rule_set
from ratecard.cli import main

NEGATIVE = TOY_PRICING.replace("unit_price: 0.10", "unit_price: -0.10")


@pytest.fixture
def here(tmp_path, monkeypatch):
    """An empty working folder, with no rules setting from the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RATECARD_RULES", raising=False)
    monkeypatch.delenv("RATECARD_DB", raising=False)
    return tmp_path


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def git(cwd, *argv):
    env = {**os.environ, "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@example.org", "GIT_COMMITTER_NAME": "a",
           "GIT_COMMITTER_EMAIL": "a@example.org", "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(cwd)}
    return subprocess.run(["git", *argv], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


# -- item 1: every rule set under ./rules is found and checked; never the shipped ones instead ------------


def test_a_flat_rules_folder_is_a_rule_set_and_its_faults_are_reported(here, capsys):
    write_rule_set(here / "rules", pricing=NEGATIVE)
    status, out, err = run(capsys, "validate")
    assert status == 1
    assert "rules/pricing.yaml:10:35: error: categories.widgets.tiers[0].unit_price:" in out
    assert "_shipped" not in out + err and str(ROOT) not in out + err  # no shipped rule set stood in


def test_a_nested_rule_set_beside_a_valid_one_is_checked(here, capsys):
    write_rule_set(here / "rules" / "ocr")
    write_rule_set(here / "rules" / "ocr" / "intl", pricing=NEGATIVE)
    status, out, err = run(capsys, "validate")
    assert status == 1
    assert "rules/ocr: valid" in out and "rules/ocr/intl/pricing.yaml:10:35: error" in out
    assert "checked 2 rule sets: every rule set under rules" in err


def test_a_rules_folder_with_nothing_recognisable_is_an_error_not_a_fall_back(here, capsys):
    (here / "rules" / "drafts").mkdir(parents=True)
    (here / "rules" / "drafts" / "notes.txt").write_text("to do\n")
    status, out, err = run(capsys, "validate")
    assert status == 1
    assert out.startswith("rules:1:1: error: no rule files (*.yaml) in this folder or below it")
    assert "valid" not in out.replace("invalid", "")
    status, _, err = run(capsys, "bill", "--usage", str(ROOT / "examples" / "usage-2020-09.csv"))
    assert status == 1 and "rules holds no rule files (*.yaml) at any depth" in err


def test_a_named_folder_is_searched_at_any_depth(here, capsys):
    write_rule_set(here / "pricing" / "a")
    write_rule_set(here / "pricing" / "deep" / "b", pricing=NEGATIVE)
    status, out, _ = run(capsys, "validate", "--rules", "pricing")
    assert status == 1 and "pricing/a: valid" in out and "pricing/deep/b/pricing.yaml:10:35" in out
    # The positional folder is the older spelling of the same thing.
    assert run(capsys, "validate", "pricing")[1] == out


def test_a_folder_named_like_a_rule_file_or_a_dangling_link_is_reported(here, capsys):
    write_rule_set(here / "rules" / "toy")
    (here / "rules" / "toy" / "extra.yaml").mkdir()
    (here / "rules" / "toy" / "gone.yaml").symlink_to(here / "nowhere.yaml")
    status, out, _ = run(capsys, "validate")
    assert status == 1
    assert "rules/toy/extra.yaml:1:1: error: a folder named like a rule file" in out
    assert "rules/toy/gone.yaml:1:1: error: cannot be read as a rule file (a dangling link" in out


def test_outside_any_rules_folder_the_shipped_rule_sets_are_checked_and_said_so(here, capsys):
    status, out, err = run(capsys, "validate")
    assert status == 0 and "face-recognition: valid" in out
    assert "the rule sets shipped with ratecard (no ./rules here)" in err


# -- item 8 and issue 14 item 2: one choice of rule set for every command --------------------------------


USAGE = "account,period,api,calls,outcome\nada,2024-01,RenderWidget,50,success\n"


def test_bill_inside_a_rules_checkout_uses_the_local_rules_and_says_so(here, capsys):
    write_rule_set(here / "rules" / "toy", pricing=TOY_PRICING.replace("unit_price: 0.10", "unit_price: 0.20"))
    (here / "usage.csv").write_text(USAGE)
    status, out, _ = run(capsys, "bill", "--usage", "usage.csv", "--format", "json")
    bills = json.loads(out)
    assert status == 0 and bills[0]["total"] == "10.00"  # 50 × 0.20: the local edit is billed
    status, out, err = run(capsys, "quote", "RenderWidget=50", "--period", "2024-01")
    assert "Total  10.00 EUR" in out and "ratecard: using rules rules/toy (the only rule set under rules)" in err


def test_several_local_rule_sets_without_a_default_is_a_question_not_a_guess(here, capsys):
    write_rule_set(here / "rules" / "toy")
    write_rule_set(here / "rules" / "other")
    status, _, err = run(capsys, "quote", "RenderWidget=50", "--period", "2024-01")
    assert status == 1
    assert "rules holds 2 rule sets (rules/other, rules/toy); name one with --rules" in err


@pytest.mark.parametrize("how", ["env", "toml"])
def test_the_default_rule_set_is_named_once(here, capsys, monkeypatch, how):
    write_rule_set(here / "rules" / "toy")
    write_rule_set(here / "rules" / "dear", pricing=TOY_PRICING.replace("unit_price: 0.10", "unit_price: 1"))
    if how == "env":
        monkeypatch.setenv("RATECARD_RULES", "dear")
        source = "$RATECARD_RULES"
    else:
        (here / "ratecard.toml").write_text('rules = "rules/dear"\n')
        source = "ratecard.toml"
    status, out, err = run(capsys, "quote", "RenderWidget=50", "--period", "2024-01")
    assert status == 0 and "Total  50.00 EUR" in out
    assert err == f"ratecard: using rules rules/dear ({source})\n"
    # --rules still wins, and takes a rule set's name as well as a folder.
    assert "Total  5.00 EUR" in run(capsys, "quote", "RenderWidget=50", "--period", "2024-01", "--rules", "toy")[1]


def test_rules_takes_a_shipped_rule_sets_name(here, capsys):
    status, out, err = run(capsys, "quote", "AnalyzeFace=8000", "--period", "2020-09", "--rules",
                           "face-recognition-cn")
    assert status == 0 and "rules face-recognition-cn, CNY" in out and err == ""


def test_an_unknown_rule_set_name_is_refused_with_the_known_ones(here, capsys):
    status, _, err = run(capsys, "quote", "X=1", "--rules", "nosuch")
    assert status == 1
    assert "unknown rule set 'nosuch' (--rules): no such folder, and no rule set of that name; known rule " \
           "sets: face-recognition, face-recognition-cn" in err


def test_a_bad_ratecard_toml_is_reported(here, capsys):
    (here / "ratecard.toml").write_text('rulez = "x"\n')
    status, _, err = run(capsys, "quote", "X=1")
    assert status == 1 and "ratecard.toml: unknown setting 'rulez'" in err
    (here / "ratecard.toml").write_text('rules = \n')
    status, _, err = run(capsys, "quote", "X=1")
    assert status == 1 and "ratecard.toml: not valid TOML" in err


def test_the_ledger_is_named_once_in_ratecard_toml(here, capsys):
    (here / "ratecard.toml").write_text('db = "books/ledger.db"\n')
    (here / "books").mkdir()
    status, out, _ = run(capsys, "account", "create", "ada", "--currency", "EUR", "--at", "2024-01-01T00:00:00Z")
    assert status == 0 and (here / "books" / "ledger.db").is_file() and not (here / "ratecard.db").exists()


# -- items 2 and 3: --staged validates what the commit holds -------------------------------------------


@pytest.fixture
def repo(here):
    git(here, "init", "-q", "-b", "main")
    write_rule_set(here / "rules" / "toy")
    git(here, "add", "-A")
    git(here, "commit", "-qm", "rules")
    return here


def test_staged_a_deleted_rule_file_is_checked(repo, capsys):
    git(repo, "rm", "-q", "rules/toy/settlement.yaml")
    status, out, _ = run(capsys, "validate", "--staged")
    assert status == 1
    assert "rules/toy:1:1: error: no settlement policy in this rule set" in out


def test_staged_an_untracked_draft_does_not_block_the_commit(repo, capsys):
    (repo / "rules" / "toy" / "draft.yaml").write_text("kind: pricing\nbroken: [\n")
    assert run(capsys, "validate")[0] == 1  # the working folder has it ...
    status, out, _ = run(capsys, "validate", "--staged")
    assert status == 0 and "rules/toy: valid" in out  # ... the commit does not


def test_staged_a_file_the_commit_needs_but_leaves_untracked_fails(repo, capsys):
    write_rule_set(repo / "rules" / "toy", apis=TOY_APIS + "  sprockets:\n    billable: [TurnSprocket]\n",
                   pricing=TOY_PRICING + "  sprockets:\n    name: Sprockets\n    tiers:\n      - { unit_price: 1 }\n")
    git(repo, "add", "rules/toy/apis.yaml")  # the price book with `sprockets` is not staged
    assert run(capsys, "validate")[0] == 0
    status, out, _ = run(capsys, "validate", "--staged")
    assert status == 1 and "rules/toy/apis.yaml:15:3: error: categories.sprockets: category 'sprockets' is " \
                           "not in the price book" in out


def test_staged_content_is_checked_not_the_working_copy(repo, capsys):
    (repo / "rules" / "toy" / "pricing.yaml").write_text(NEGATIVE)
    git(repo, "add", "rules/toy/pricing.yaml")
    (repo / "rules" / "toy" / "pricing.yaml").write_text(TOY_PRICING)  # fixed, but the fix is not staged
    status, out, _ = run(capsys, "validate", "--staged")
    assert status == 1 and "rules/toy/pricing.yaml:10:35: error" in out


def test_staged_with_no_rule_file_in_the_index_is_an_error(repo, capsys):
    git(repo, "rm", "-rq", "rules")
    status, out, _ = run(capsys, "lint", "--staged")
    assert status == 1 and "rules:1:1: error: no rule files (*.yaml) are staged in this folder or below it" in out


def test_staged_outside_a_git_repository_is_a_plain_error(here, capsys):
    status, _, err = run(capsys, "validate", "--staged")
    assert status == 1 and err.startswith("--staged: fatal: not a git repository")


# -- item 4: the hooks' manifest -------------------------------------------------------------------------


def test_the_hooks_run_on_every_commit_and_read_the_index():
    import yaml

    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert {h["id"] for h in hooks} == {"ratecard-validate", "ratecard-lint"}
    for hook in hooks:
        # always_run: a commit that only deletes a rule file lists no file, and `files:` would skip the
        # hook; and `args` naming another folder must not be filtered out by a `files:` pattern.
        assert hook["always_run"] is True and hook["pass_filenames"] is False and "files" not in hook
        assert hook["entry"].endswith(" --staged")


# -- item 5: ratecard init, and the schema copy kept honest -------------------------------------------------


def test_init_scaffolds_a_rules_repository_that_validates(here, capsys):
    status, out, _ = run(capsys, "init", "analysts")
    assert status == 0
    repo = here / "analysts"
    for relative in ("rules/face-recognition/pricing.yaml", "schemas/pricing.schema.json",
                     "schemas/api-mapping.schema.json", "schemas/settlement.schema.json",
                     ".pre-commit-config.yaml", ".vscode/settings.json", ".vscode/extensions.json", "ratecard.toml"):
        assert (repo / relative).is_file(), relative
        assert f"wrote {relative}" in out
    assert (repo / "schemas" / "pricing.schema.json").read_bytes() == (ROOT / "schemas" / "pricing.schema.json").read_bytes()
    config = (repo / ".pre-commit-config.yaml").read_text()
    assert "ratecard validate --staged" in config and "always_run: true" in config
    os.chdir(repo)
    status, out, err = run(capsys, "validate")
    assert status == 0 and out.startswith("rules/face-recognition: valid") and "warning" not in out
    # Running it again keeps what exists.
    os.chdir(here)
    assert "kept rules/face-recognition/pricing.yaml (it exists)" in run(capsys, "init", "analysts")[1]


def test_validate_warns_when_the_schema_copy_differs_from_the_engines(here, capsys):
    run(capsys, "init", ".")
    schema = here / "schemas" / "pricing.schema.json"
    schema.write_text(schema.read_text().replace('"minimum": 0,', '"minimum": 1,', 1))
    status, out, _ = run(capsys, "validate")
    assert status == 0  # a warning: the rules themselves are fine
    assert "rules/face-recognition/pricing.yaml:1:1: warning: the schema named on the first line " \
           "(../../schemas/pricing.schema.json) differs from the one ratecard" in out
    assert run(capsys, "init", "--schemas")[1] == "updated schemas/pricing.schema.json\n"
    assert "warning" not in run(capsys, "validate")[1]


# -- issue 11 item 10: a service must name a known rule set -------------------------------------------------


def test_activating_an_unknown_service_is_refused(here, capsys):
    run(capsys, "account", "create", "acme", "--currency", "USD", "--at", "2020-09-01T00:00:00+08:00")
    status, _, err = run(capsys, "account", "activate", "acme", "--service", "nosuch", "--terms", "1",
                         "--at", "2020-09-01T00:00:00+08:00")
    assert status == 1 and "unknown rule set 'nosuch' (--service)" in err
    status, out, _ = run(capsys, "account", "show", "acme")
    assert "Services: none activated" in out
    # --rules is the same choice, by folder or name.
    assert run(capsys, "account", "activate", "acme", "--rules", "face-recognition", "--terms", "1",
               "--at", "2020-09-01T00:00:00+08:00")[0] == 0


# -- issue 11 item 8: an account's currency must match the rule set -------------------------------------


def _cn_accounts(capsys):
    for account in ("lotus", "peony"):
        assert run(capsys, "account", "create", account, "--currency", "CNY", "--at", "2020-09-01T00:00:00+08:00")[0] == 0


def test_bill_refuses_accounts_the_ledger_holds_in_another_currency(here, capsys, monkeypatch):
    monkeypatch.setenv("RATECARD_DB", str(here / "books.db"))
    _cn_accounts(capsys)
    usage = str(ROOT / "examples" / "usage-cn-2020-09.csv")
    status, out, err = run(capsys, "bill", "--usage", usage)  # the default rules: the USD book
    assert status == 1 and "Invoice" not in out
    assert "2 account(s) in the ledger" in err and "lotus (CNY), peony (CNY)" in err
    assert "than rules face-recognition bill in (USD)" in err
    status, out, _ = run(capsys, "bill", "--usage", usage, "--rules", "face-recognition-cn")
    assert status == 0 and "CNY" in out


def test_activating_a_service_that_bills_in_another_currency_is_refused(here, capsys):
    _cn_accounts(capsys)
    status, _, err = run(capsys, "account", "activate", "lotus", "--terms", "1", "--at", "2020-09-01T00:00:00+08:00")
    assert status == 1
    assert "account lotus holds its balance in CNY, but face-recognition bills in USD" in err
    assert run(capsys, "account", "activate", "lotus", "--rules", "face-recognition-cn", "--terms", "1",
               "--at", "2020-09-01T00:00:00+08:00")[0] == 0
