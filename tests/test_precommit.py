"""The real pre-commit (the `pre-commit` package) running this repository's hooks (.pre-commit-hooks.yaml)
on scratch analysts' repositories, commit by commit: issue 16 items 1-4.

The hook repository is a git copy of this working tree (tracked and untracked files, as they are now),
so the hooks pre-commit installs are the code under test, installed the way an analyst's machine
installs them (`language: python`: a virtualenv and `pip install` of the hook repository). The
install happens once per test session (PRE_COMMIT_HOME is shared) and takes up to a minute or two.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

pytest.importorskip("pre_commit")  # in the test extra: present wherever the tests are installed

NEGATIVE = ("      - { up_to: 3000000, unit_price: 0.0005 }", "      - { up_to: 3000000, unit_price: -0.0005 }")


def _fault_at() -> str:
    """LINE:COL of the planted negative price in the starter rule set `ratecard init` copies (the
    shipped default), read from the file so that a comment added to it does not break the tests."""
    text = (ROOT / "rules" / "face-recognition" / "pricing.yaml").read_text(encoding="utf-8")
    line = next(i for i, text_line in enumerate(text.splitlines(), 1) if NEGATIVE[0] in text_line)
    return f"{line}:{len(NEGATIVE[0].split('unit_price: ')[0]) + len('unit_price: ') + 1}"


FAULT = _fault_at()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    home = tmp_path_factory.mktemp("precommit-home")
    gitconfig = home / "gitconfig"
    gitconfig.write_text("[user]\n  name = Analyst\n  email = analyst@example.org\n[init]\n  defaultBranch = main\n"
                         "[advice]\n  detachedHead = false\n")
    out = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    out.update(PRE_COMMIT_HOME=str(home / "cache"), GIT_CONFIG_GLOBAL=str(gitconfig), GIT_CONFIG_NOSYSTEM="1",
               PRE_COMMIT_COLOR="never", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return out


def sh(cwd, *argv, env, check=True):
    done = subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory, env):
    """This working tree as a git repository with one commit: what `repo:` points the analysts to."""
    target = tmp_path_factory.mktemp("hook-repo")
    listed = sh(ROOT, "git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", env=env).stdout
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    sh(target, "git", "init", "-q", env=env)
    sh(target, "git", "add", "-A", env=env)
    sh(target, "git", "commit", "-qm", "ratecard under test", env=env)
    rev = sh(target, "git", "rev-parse", "HEAD", env=env).stdout.strip()
    return target, rev


def _ratecard(*argv, cwd, env):
    return sh(cwd, sys.executable, "-m", "ratecard", *argv, env=env)


class Repo:
    def __init__(self, path: Path, env):
        self.path, self.env = path, env

    def git(self, *argv, check=True):
        return sh(self.path, "git", *argv, env=self.env, check=check)

    def write(self, relative, text):
        (self.path / relative).parent.mkdir(parents=True, exist_ok=True)
        (self.path / relative).write_text(text, encoding="utf-8")

    def edit(self, relative, old, new):
        text = (self.path / relative).read_text(encoding="utf-8")
        assert old in text, (relative, old)
        self.write(relative, text.replace(old, new, 1))

    def commit(self, message="change"):
        """`git commit` with the hooks pre-commit installed; (committed, what the hooks printed)."""
        before = self.git("rev-list", "--all", "--count").stdout.strip()
        done = self.git("commit", "-m", message, check=False)
        after = self.git("rev-list", "--all", "--count").stdout.strip()
        assert (done.returncode == 0) == (before != after)
        return done.returncode == 0, done.stdout + done.stderr


def _hooks_config(hook_repo, args=None) -> str:
    path, rev = hook_repo
    extra = f"\n        args: {args}" if args else ""
    return (f"repos:\n  - repo: {path}\n    rev: {rev}\n    hooks:\n      - id: ratecard-validate{extra}\n"
            f"      - id: ratecard-lint{extra}\n")


@pytest.fixture
def analysts(tmp_path, env, hook_repo):
    """An analysts' repository made by `ratecard init`, its first commit done by the hooks."""
    path = tmp_path / "analysts"
    _ratecard("init", str(path), "--hook-repo", str(hook_repo[0]), "--hook-rev", hook_repo[1], cwd=tmp_path, env=env)
    repo = Repo(path, env)
    repo.git("init", "-q")
    sh(path, sys.executable, "-m", "pre_commit", "install", env=env)
    repo.git("add", "-A")
    ok, output = repo.commit("start from the shipped rules")
    assert ok, output
    assert "ratecard validate" in output and "Passed" in output
    return repo


def test_init_writes_a_config_pointing_at_the_hooks(analysts, hook_repo):
    config = (analysts.path / ".pre-commit-config.yaml").read_text()
    assert f"repo: {hook_repo[0]}" in config and f"rev: {hook_repo[1]}" in config


def test_a_planted_fault_blocks_the_commit_at_its_line(analysts):
    analysts.edit("rules/face-recognition/pricing.yaml", *NEGATIVE)
    analysts.git("add", "-A")
    ok, output = analysts.commit("a negative price")
    assert not ok
    assert f"rules/face-recognition/pricing.yaml:{FAULT}: error: categories.face-detection.tiers[0].unit_price: " \
           "the number -0.0005 is out of range; expected at least 0" in output


def test_deleting_a_rule_file_is_checked(analysts):
    analysts.git("rm", "-q", "rules/face-recognition/settlement.yaml")
    ok, output = analysts.commit("drop the settlement policy")
    assert not ok
    assert "rules/face-recognition:1:1: error: no settlement policy in this rule set" in output


def test_an_untracked_draft_does_not_block_a_commit(analysts):
    analysts.write("rules/face-recognition/draft.yaml", "kind: pricing\ncategories: [unfinished\n")
    analysts.write("NOTES.md", "what we plan\n")
    analysts.git("add", "NOTES.md")
    ok, output = analysts.commit("notes only")
    assert ok, output


def test_a_file_the_commit_needs_but_leaves_untracked_fails(analysts):
    shutil.copytree(analysts.path / "rules" / "face-recognition", analysts.path / "rules" / "ocr")
    analysts.git("add", "rules/ocr/apis.yaml", "rules/ocr/settlement.yaml")  # its price book stays untracked
    ok, output = analysts.commit("a new rule set, half of it staged")
    assert not ok
    assert "rules/ocr:1:1: error: no price book in this rule set" in output


def test_a_nested_rule_set_beside_a_valid_one_is_checked(analysts):
    nested = analysts.path / "rules" / "ocr" / "intl"
    nested.mkdir(parents=True)
    for name in ("apis.yaml", "settlement.yaml", "pricing.yaml"):
        text = (analysts.path / "rules" / "face-recognition" / name).read_text()
        (nested / name).write_text(text.replace("../../schemas/", "../../../schemas/"))
    analysts.edit("rules/ocr/intl/pricing.yaml", *NEGATIVE)
    analysts.git("add", "-A")
    ok, output = analysts.commit("a nested rule set")
    assert not ok
    assert f"rules/ocr/intl/pricing.yaml:{FAULT}: error" in output
    assert "rules/face-recognition: valid" in output  # and the one beside it was checked too


@pytest.fixture
def flat(tmp_path, env, hook_repo):
    """Rule files directly in rules/, and a schema copy beside it: a layout the hooks used to skip."""
    path = tmp_path / "flat"
    _ratecard("init", str(path), "--hook-repo", str(hook_repo[0]), "--hook-rev", hook_repo[1], cwd=tmp_path, env=env)
    for rule_file in sorted((path / "rules" / "face-recognition").iterdir()):
        rule_file.rename(path / "rules" / rule_file.name)
        text = (path / "rules" / rule_file.name).read_text()
        (path / "rules" / rule_file.name).write_text(text.replace("../../schemas/", "../schemas/"))
    (path / "rules" / "face-recognition").rmdir()
    (path / "ratecard.toml").write_text('rules = "rules"\n')
    repo = Repo(path, env)
    repo.git("init", "-q")
    sh(path, sys.executable, "-m", "pre_commit", "install", env=env)
    return repo


def test_a_flat_layout_is_checked(flat):
    flat.git("add", "-A")
    ok, output = flat.commit("flat rules")
    assert ok, output
    assert "rules: valid" in output
    flat.edit("rules/pricing.yaml", *NEGATIVE)
    flat.git("add", "-A")
    ok, output = flat.commit("a negative price")
    assert not ok and f"rules/pricing.yaml:{FAULT}: error" in output
    assert "_shipped" not in output and "site-packages" not in output  # never the shipped rules instead


def test_args_naming_another_folder_still_run_the_hooks(tmp_path, env, hook_repo):
    path = tmp_path / "elsewhere"
    _ratecard("init", str(path), "--hook-repo", str(hook_repo[0]), "--hook-rev", hook_repo[1], cwd=tmp_path, env=env)
    (path / "rules").rename(path / "pricing")
    (path / ".pre-commit-config.yaml").write_text(_hooks_config(hook_repo, args="[pricing]"))
    (path / "ratecard.toml").write_text('rules = "pricing/face-recognition"\n')
    repo = Repo(path, env)
    repo.git("init", "-q")
    sh(path, sys.executable, "-m", "pre_commit", "install", env=env)
    repo.git("add", "-A")
    ok, output = repo.commit("rules in pricing/")
    assert ok and "pricing/face-recognition: valid" in output, output
    repo.edit("pricing/face-recognition/pricing.yaml", *NEGATIVE)
    repo.git("add", "-A")
    ok, output = repo.commit("a negative price")
    assert not ok and f"pricing/face-recognition/pricing.yaml:{FAULT}: error" in output


def test_the_default_init_config_runs_the_installed_ratecard(tmp_path, env):
    """Without --hook-repo, `ratecard init` writes local hooks that run the ratecard installed beside the
    schemas it copied (the same version as the editor's schemas)."""
    path = tmp_path / "local"
    env = {**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}
    _ratecard("init", str(path), cwd=tmp_path, env=env)
    repo = Repo(path, env)
    repo.git("init", "-q")
    sh(path, sys.executable, "-m", "pre_commit", "install", env=env)
    repo.git("add", "-A")
    ok, output = repo.commit("start")
    assert ok, output
    repo.git("rm", "-q", "rules/face-recognition/settlement.yaml")
    ok, output = repo.commit("drop the settlement policy")
    assert not ok and "rules/face-recognition:1:1: error: no settlement policy in this rule set" in output
