"""The README's commands stay true: CI runs its test command, and its console examples are real output."""

from __future__ import annotations

import os
import re
import shlex
import shutil

import pytest

from conftest import ROOT
from ratecard.cli import main

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _sh_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)\n```", README, re.S)


def test_readme_starts_with_the_two_commands():
    main_job, tests = _sh_blocks()[:2]
    assert "ratecard bill --usage examples/" in main_job
    assert "pytest" in tests
    assert README.index(main_job) < README.index(tests) < README.index("## ")


def test_ci_runs_exactly_the_readme_test_command():
    test_command = _sh_blocks()[1].strip()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_command in [line.strip() for line in ci]


EXAMPLES = re.findall(r"```console\n\$ (ratecard [^\n]*)\n(.*?)```", README, re.S)


@pytest.mark.parametrize("command, expected", EXAMPLES, ids=[c for c, _ in EXAMPLES])
def test_console_example_is_real_output(command, expected, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(shlex.split(command)[1:]) == 0
    assert capsys.readouterr().out == expected


def test_python_api_example_runs(monkeypatch):
    monkeypatch.chdir(ROOT)
    code = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})


def test_the_ledger_walkthrough_runs_as_written(tmp_path, monkeypatch, capsys):
    (block,) = [b for b in _sh_blocks() if "ratecard settle" in b]
    work, demo = tmp_path / "checkout", tmp_path / "demo"
    shutil.copytree(ROOT / "examples", work / "examples")
    demo.mkdir()
    monkeypatch.chdir(work)
    states = []
    for line in block.splitlines():
        if re.fullmatch(r"\w+=\$\(mktemp -d\)(\s+#.*)?", line):
            monkeypatch.setenv(line.split("=")[0], str(demo))
            continue
        line = os.path.expandvars(line)
        if line.startswith("export "):
            name, _, value = line[len("export "):].partition("=")
            monkeypatch.setenv(name, value)
            continue
        words = shlex.split(line, comments=True)
        assert words[0] == "ratecard"
        expected = re.search(r"# exit status ([0-9]+)", line)  # a line may say it ends otherwise than 0
        code = main(words[1:])
        assert code == (int(expected.group(1)) if expected else 0), line
        out = capsys.readouterr().out
        if words[1] == "status":
            states.append((out.split(":")[1].split()[0], code))
    assert states == [("suspended", 3)]  # as the README's exit status table says
    assert "face-recognition: active" in out  # the statement ends with the service's state now
    # Nothing was written where the walkthrough was run: only in the temporary folder it made.
    assert sorted(p.name for p in work.iterdir()) == ["examples"]
    assert {p.name for p in demo.iterdir()} >= {"demo.db", "rejects.csv"}
