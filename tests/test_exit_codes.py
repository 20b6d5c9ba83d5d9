"""Exit statuses a script can trust: the README's table, row by row, against the commands.

0 done (for `status`: calls allowed), 1 bad input, 2 a mistake on the command line (unparsable values
included), 3 suspended and 4 not activated (`status` only), 130 interrupted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from ratecard.cli import exits, main

from conftest import ROOT, write_rule_set

README = (ROOT / "README.md").read_text(encoding="utf-8")
EXAMPLE = ROOT / "examples" / "usage-2020-09.csv"


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_readme_table_is_the_one_in_the_code():
    section = README.split("### Exit status", 1)[1].split("\n#", 1)[0]
    readme = {int(m[1]): m[2] for m in re.finditer(r"^\| (\d+) \| (.+?) \|$", section, re.M)}
    code = {int(m[1]): m[2] for m in re.finditer(r"^\| (\d+) \| (.+?) \|$", exits.__doc__, re.M)}
    assert sorted(readme) == sorted(code) == [0, 1, 2, 3, 4, 130]
    assert all(code[n] in readme[n] for n in code)  # the README may add examples, never change a meaning
    assert (exits.OK, exits.BAD_INPUT, exits.COMMAND_LINE, exits.SUSPENDED, exits.NOT_ACTIVATED,
            exits.INTERRUPTED) == (0, 1, 2, 3, 4, 130)


def test_0_done(capsys):
    assert run(capsys, "validate", ROOT / "rules" / "face-recognition")[0] == 0
    assert run(capsys, "quote", "SearchFaces=3,000,001", "--period", "2020-09")[0] == 0


def test_1_bad_input(capsys, tmp_path):
    broken = write_rule_set(tmp_path / "rs", pricing="kind: pricing\n")
    code, _, err = run(capsys, "validate", broken)
    assert code == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("account,period,api,calls\nacme,2020-09,SearchFaces,lots\n", encoding="utf-8")
    code, out, err = run(capsys, "bill", "--usage", bad)
    assert (code, out) == (1, "") and "bad.csv:2:" in err
    code, _, err = run(capsys, "quote", "Nope=5", "--period", "2020-09")
    assert code == 1 and "Nope" in err  # well formed, but the rules do not know the API


@pytest.mark.parametrize("argv, says", [
    (["quote", "--period", "2020-13", "SearchFaces=1"], "argument --period: expected a month written YYYY-MM"),
    (["bill", "--usage", str(EXAMPLE), "--period", "2020-9"], "argument --period"),
    (["ratecard", "--period", "١٢٣٤-٠٩"], "argument --period"),
    (["settle", "--period", "2020-09", "--usage", str(EXAMPLE), "--at", "2020-09-01"], "argument --at: expected an "
     "ISO 8601 date and time with a UTC offset"),
    (["topup", "acme", "ten"], "argument AMOUNT"),
    (["statement", "acme", "--time-zone", "Mars/Olympus"], "argument --time-zone"),
    (["quote", "SearchFaces=1.000", "--period", "2020-09"], "'1.000' is ambiguous"),
    (["quote", "SearchFaces", "--period", "2020-09"], "expected API=CALLS"),
    (["quote", "SearchFaces=5", "--pack", "face-search=lots", "--period", "2020-09"], "bad pack 'face-search=lots'"),
    (["pack", "buy", "acme", "face-search", "10m"], "`m` could mean milli or million"),
    (["bill", "--usage", str(EXAMPLE), "--jobs", "0"], "argument --jobs"),
    (["bill"], "the following arguments are required: --usage"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["quote", "--colour"], "unrecognized arguments: --colour"),
])
def test_2_a_command_line_mistake(capsys, tmp_path, monkeypatch, argv, says):
    monkeypatch.setenv("RATECARD_DB", str(tmp_path / "none.db"))
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, ""), err
    assert says in err and "Traceback" not in err
    assert not (tmp_path / "none.db").exists()  # nothing was done


@pytest.fixture
def ledger_with_three_accounts(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("RATECARD_DB", str(tmp_path / "l.db"))
    rules = write_rule_set(tmp_path / "toy")
    at = "2024-01-01T00:00:00+01:00"
    for account in ("ok", "owes", "idle"):
        assert run(capsys, "account", "create", account, "--currency", "EUR", "--at", at)[0] == 0
    for account in ("ok", "owes"):
        assert run(capsys, "account", "activate", account, "--rules", rules, "--terms", "v1", "--at", at)[0] == 0
    assert run(capsys, "topup", "ok", "100", "--at", "2024-01-02T00:00:00+01:00")[0] == 0
    usage = tmp_path / "u.csv"
    usage.write_text("account,period,api,calls\nowes,2024-01,RenderWidget,1000\n", encoding="utf-8")
    assert run(capsys, "settle", "--period", "2024-01", "--usage", usage, "--rules", rules,
               "--at", "2024-02-06T10:00:00+01:00")[0] == 0  # in the deduction window: owes is debited
    return rules


@pytest.mark.parametrize("account, status, state", [("ok", 0, "active"), ("owes", 3, "suspended"),
                                                    ("idle", 4, "not-activated")])
def test_status_is_0_only_when_calls_are_allowed(capsys, ledger_with_three_accounts, account, status, state):
    code, out, _ = run(capsys, "status", account, "--rules", ledger_with_three_accounts)
    assert code == status and f": {state}" in out
    code, out, _ = run(capsys, "status", account, "--rules", ledger_with_three_accounts, "--format", "json")
    assert code == status and f'"state": "{state}"' in out


def test_status_of_an_unknown_account_is_bad_input(capsys, ledger_with_three_accounts):
    code, _, err = run(capsys, "status", "nobody", "--rules", ledger_with_three_accounts)
    assert code == 1 and "unknown account 'nobody'" in err


def test_130_interrupted(capsys, monkeypatch):
    import ratecard.cli.validate as validate

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(validate, "cmd_validate", interrupted)
    from ratecard.cli import parser

    monkeypatch.setattr(parser, "cmd_validate", interrupted)
    assert run(capsys, "validate")[0] == 130


def test_the_installed_command_exits_with_the_same_statuses(tmp_path):
    def status_of(*argv):
        return subprocess.run([sys.executable, "-m", "ratecard", *argv], capture_output=True, text=True,
                              cwd=tmp_path).returncode

    assert status_of("--version") == 0
    assert status_of("quote", "--period", "2020-13", "SearchFaces=1") == 2
    assert status_of("validate", str(tmp_path / "nowhere")) == 1
