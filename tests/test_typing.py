"""mypy runs on the package as configured in pyproject.toml ([tool.mypy]), so the README's test
command, which CI runs, fails on a type error. Its cache (.mypy_cache) keeps a repeated run quick."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_is_clean_on_the_package():
    done = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    found = [line for line in done.stdout.splitlines() if ": error:" in line or ": note:" in line]
    assert done.returncode == 0 and not found, done.stdout + done.stderr


def test_the_mypy_configuration_checks_the_package_strictly_enough():
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert config["files"] == ["engine"]
    assert config["check_untyped_defs"] and config["warn_unused_ignores"]


def test_no_type_ignore_without_a_code_and_a_reason():
    # An ignore silences one named error, and says why beside it.
    bare = []
    for path in sorted((ROOT / "engine").rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "# type: ignore" in line:
                after = line.split("# type: ignore", 1)[1]
                if not after.startswith("[") or "]" not in after or not after.split("]", 1)[1].strip(" #("):
                    bare.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not bare, "\n".join(bare)
