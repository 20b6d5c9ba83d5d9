"""`ratecard completion SHELL`: generated from the parser (shtab), so every command is in it; the
bash script completes commands, formats and rule set names when a shell runs it."""
import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ratecard.cli import build_parser, main
from ratecard.cli.completion import SHELLS, script


def commands(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name
                yield from commands(sub)


@pytest.mark.parametrize("shell", SHELLS)
def test_the_script_mentions_every_command(shell):
    text = script(shell)
    names = sorted(set(commands(build_parser())))
    assert {"bill", "account", "activate", "completion", "migrate"} <= set(names)
    assert [n for n in names if n not in text] == []
    assert "ratecard completion --rule-sets" in text  # --rules values come from the rule sets known here


def test_rule_sets_lists_the_names_rules_accepts(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(Path(__file__).parent.parent / "rules" / "face-recognition", tmp_path / "rules" / "acme-search")
    assert main(["completion", "--rule-sets"]) == 0
    names = capsys.readouterr().out.split()
    assert "acme-search" in names and "face-recognition" in names


def test_a_shell_must_be_named(capsys):
    assert main(["completion"]) == 1
    assert "bash|zsh|tcsh" in capsys.readouterr().err
    assert main(["completion", "fish"]) == 2


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("words, expected", [
    (["ratecard", "bi"], ["bill"]),
    (["ratecard", "bill", "--format", ""], ["text", "markdown", "html", "json", "jsonl", "pdf"]),
    (["ratecard", "bill", "--rules", "face-recognition-c"], ["face-recognition-cn"]),
    (["ratecard", "account", ""], ["create", "import", "update", "activate", "show", "list"]),
])
def test_bash_completes(tmp_path, words, expected):
    (tmp_path / "ratecard.bash").write_text(script("bash"))
    driver = ('source ratecard.bash; COMP_WORDS=("$@"); COMP_CWORD=$(($#-1)); COMP_LINE="$*"; '
              'COMP_POINT=${#COMP_LINE}; _shtab_ratecard; printf "%s\\n" "${COMPREPLY[@]}"')
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(["bash", "-c", driver, "bash", *words], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    assert sorted(done.stdout.split()) == sorted(expected), done.stderr
