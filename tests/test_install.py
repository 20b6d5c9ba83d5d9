"""A real install: `pip install .` (not editable) into a fresh venv, then `ratecard` from elsewhere.

This is the only way to prove the shipped rules and schemas travel as package data (pyproject.toml
force-include, engine/resources.py): in the source tree they would be found next to the code.
Slow (a venv and a build, about a minute at most), so it installs once for the module.
"""

from __future__ import annotations

import json
import os
import subprocess
import venv
from pathlib import Path

import pytest

from conftest import ROOT


def _env():
    # Nothing from the test run may leak in: no PYTHONPATH to the source tree, no active venv.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    home = tmp_path_factory.mktemp("install")
    venv.create(home / "venv", with_pip=True)
    bin_dir = home / "venv" / ("Scripts" if os.name == "nt" else "bin")
    done = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", str(ROOT)],
                          capture_output=True, text=True, env=_env(), timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    elsewhere = home / "elsewhere"
    elsewhere.mkdir()
    return bin_dir, elsewhere


def _run(installed, *argv):
    bin_dir, elsewhere = installed
    return subprocess.run([str(bin_dir / "ratecard"), *argv], capture_output=True, text=True,
                          cwd=elsewhere, env=_env(), timeout=120)


def test_installed_ratecard_validates_the_shipped_rules_from_anywhere(installed):
    done = _run(installed, "validate")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "face-recognition: valid" in done.stdout


def test_rules_and_schemas_come_from_the_installed_package(installed):
    bin_dir, elsewhere = installed
    done = _run(installed, "validate", "--format", "json")
    rule_sets = json.loads(done.stdout)["rule_sets"]
    shipped = sorted(p.name for p in (ROOT / "rules").iterdir() if p.is_dir())
    assert sorted(Path(r["path"]).name for r in rule_sets) == shipped  # every shipped rule set
    for rule_set in rule_sets:
        assert "site-packages" in rule_set["path"] and "_shipped" in rule_set["path"] and rule_set["valid"]
    probe = subprocess.run(
        [str(bin_dir / "python"), "-c",
         "import ratecard, ratecard.resources as r; print(ratecard.__file__); print(r.schemas_dir())"],
        capture_output=True, text=True, cwd=elsewhere, env=_env())
    module, schemas_dir = probe.stdout.splitlines()
    assert str(ROOT) not in module and "site-packages" in module
    assert "site-packages" in schemas_dir and (
        sorted(p.name for p in Path(schemas_dir).glob("*.json"))
        == sorted(p.name for p in (ROOT / "schemas").glob("*.json")))


def test_installed_lint_and_bad_input(installed, tmp_path):
    assert _run(installed, "lint").returncode == 0
    done = _run(installed, "validate", str(tmp_path / "nowhere"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "no such rule set folder" in done.stdout


def test_python_dash_m_ratecard_works_too(installed):
    bin_dir, elsewhere = installed
    done = subprocess.run([str(bin_dir / "python"), "-m", "ratecard", "validate"], capture_output=True,
                          text=True, cwd=elsewhere, env=_env())
    assert done.returncode == 0 and "face-recognition: valid" in done.stdout


def test_import_ratecard_is_not_shadowed_by_a_local_engine_module(installed):
    """The library's public name is `ratecard`: a project's own `engine.py` must not break it."""
    bin_dir, elsewhere = installed
    (elsewhere / "engine.py").write_text("raise SystemExit('the local engine.py was imported')\n")
    try:
        probe = subprocess.run(
            [str(bin_dir / "python"), "-c",
             "import ratecard; from importlib.metadata import version; "
             "assert ratecard.__version__ == version('ratecard'); print(ratecard.__version__)"],
            capture_output=True, text=True, cwd=elsewhere, env=_env())
        assert probe.returncode == 0, probe.stderr
        for argv in ([str(bin_dir / "python"), "-m", "ratecard", "--version"], [str(bin_dir / "ratecard"), "--version"]):
            done = subprocess.run(argv, capture_output=True, text=True, cwd=elsewhere, env=_env())
            assert (done.returncode, done.stdout.strip()) == (0, f"ratecard {probe.stdout.strip()}")
        typed = subprocess.run([str(bin_dir / "python"), "-c",
                                "import ratecard, pathlib; print((pathlib.Path(ratecard.__file__).parent / 'py.typed').is_file())"],
                               capture_output=True, text=True, cwd=elsewhere, env=_env())
        assert typed.stdout.strip() == "True"
    finally:
        (elsewhere / "engine.py").unlink()


def test_installed_documents_speak_the_rule_sets_language(installed):
    """The message catalogs travel in the wheel: the China-site rate card comes out in Chinese."""
    bin_dir, _ = installed
    probe = subprocess.run([str(bin_dir / "python"), "-c", "import ratecard.resources as r; "
                            "print(r.rules_dir() / 'face-recognition-cn')"], capture_output=True, text=True,
                           env=_env())
    done = _run(installed, "ratecard", "--rules", probe.stdout.strip(), "--period", "2020-09")
    assert done.returncode == 0, done.stderr
    assert "价目表 — face-recognition-cn" in done.stdout and "免费额度" in done.stdout
