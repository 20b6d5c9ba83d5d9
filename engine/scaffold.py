"""An analysts' rules repository: `ratecard init` scaffolds one, and `validate` keeps its schemas honest.

What `init` writes (never over an existing file):

* ``rules/<name>/`` — a copy of a shipped rule set to start from (the default one unless named);
* ``schemas/`` — this ratecard's JSON Schemas, which the first line of every rule file names
  (``# yaml-language-server: $schema=../../schemas/pricing.schema.json``), so that the editor checks
  a file with the same schema as ``ratecard validate``;
* ``.pre-commit-config.yaml`` — the ``ratecard-validate`` and ``ratecard-lint`` hooks, reading the
  staged rule files (``--staged``), run on every commit;
* ``.vscode/settings.json`` and ``.vscode/extensions.json`` — the YAML extension, reading YAML 1.2
  as ratecard does;
* ``ratecard.toml`` — the default rule set, named once;
* ``.gitignore`` — the local ledger file.

A copy of the schemas can drift from the engine after an upgrade: `schema_drift` warns, at the first
line of each rule file whose named schema differs from the one ratecard validates with.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from . import __version__, resources
from .discovery import CONFIG_FILE, RULE_SUFFIXES, resolve
from .errors import Location, Problem, RatecardError

_MODELINE = re.compile(r"#\s*yaml-language-server:\s*\$schema=(\S+)")


def rule_schemas() -> list[str]:
    from .schemas import KINDS

    return sorted(KINDS.values())


def _hooks_config(hook_repo: str | None, hook_rev: str | None) -> str:
    head = ("# pre-commit hooks (https://pre-commit.com): `pre-commit install` once, then every commit is\n"
            "# checked. The hooks read the rule files as staged (`--staged`): a deleted file is gone, an\n"
            "# untracked draft is not seen. They run on every commit (always_run), so a commit that only\n"
            "# removes a rule file is checked too; name other folders than ./rules in `args`.\n")
    if hook_repo:
        return head + (f"repos:\n  - repo: {hook_repo}\n    rev: {hook_rev or 'v' + __version__}\n    hooks:\n"
                       "      - id: ratecard-validate\n      - id: ratecard-lint\n")
    # The installed ratecard: the same version as the schemas copied here.
    return head + ("repos:\n  - repo: local\n    hooks:\n"
                   "      - id: ratecard-validate\n        name: ratecard validate\n"
                   "        entry: ratecard validate --staged\n        language: system\n"
                   "        always_run: true\n        pass_filenames: false\n"
                   "      - id: ratecard-lint\n        name: ratecard lint\n"
                   "        entry: ratecard lint --staged\n        language: system\n"
                   "        always_run: true\n        pass_filenames: false\n        verbose: true\n")


_VSCODE_SETTINGS = {
    "yaml.validate": True, "yaml.completion": True, "yaml.hover": True,
    # ratecard reads rule files as YAML 1.2 does (1_000_000 is text, 010 is ten): so must the editor.
    "yaml.yamlVersion": "1.2",
    "[yaml]": {"editor.insertSpaces": True, "editor.tabSize": 2},
}
_VSCODE_EXTENSIONS = {"recommendations": ["redhat.vscode-yaml"]}


@dataclass(frozen=True)
class Scaffold:
    folder: Path
    written: tuple[str, ...]
    kept: tuple[str, ...]
    rule_set: str


def init(folder, *, start_from: str | None = None, hook_repo: str | None = None,
         hook_rev: str | None = None) -> Scaffold:
    """Scaffold an analysts' rules repository in `folder` (created if missing)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise RatecardError(f"{folder}: not a folder")
    if start_from:
        source_path = resolve(start_from, "--from").path
    else:
        from .discovery import _shipped_default

        source_path = _shipped_default()
    name = source_path.resolve().name
    files: dict[str, bytes] = {}
    for rule_file in sorted(source_path.iterdir()):
        if rule_file.suffix in RULE_SUFFIXES and rule_file.is_file():
            files[f"rules/{name}/{rule_file.name}"] = rule_file.read_bytes()
    for schema in rule_schemas():
        files[f"schemas/{schema}"] = (resources.schemas_dir() / schema).read_bytes()
    files[".pre-commit-config.yaml"] = _hooks_config(hook_repo, hook_rev).encode()
    files[".vscode/settings.json"] = (json.dumps(_VSCODE_SETTINGS, indent=2) + "\n").encode()
    files[".vscode/extensions.json"] = (json.dumps(_VSCODE_EXTENSIONS, indent=2) + "\n").encode()
    files[CONFIG_FILE] = (f"# ratecard settings for this repository (see `ratecard --help`).\n"
                          f"rules = \"rules/{name}\"\n").encode()
    files[".gitignore"] = b"ratecard.db\nratecard.db-*\n"
    written, kept = [], []
    for relative, content in files.items():
        target = folder / relative
        if target.exists():
            kept.append(relative)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        written.append(relative)
    return Scaffold(folder, tuple(written), tuple(kept), name)


def update_schemas(folder) -> list[str]:
    """Overwrite the repository's schema copy with this ratecard's (after an upgrade)."""
    target = Path(folder) / "schemas"
    target.mkdir(parents=True, exist_ok=True)
    changed = []
    for schema in rule_schemas():
        engine = (resources.schemas_dir() / schema).read_bytes()
        mine = target / schema
        if not mine.is_file() or mine.read_bytes() != engine:
            shutil.copyfile(resources.schemas_dir() / schema, mine)
            changed.append(f"schemas/{schema}")
    return changed


def schema_drift(folder, shown: str | None = None) -> list[Problem]:
    """Warnings for rule files in `folder` whose first-line schema is a local copy that differs from the
    schema ratecard validates with (or is missing): the editor would check them by other rules.

    The schema is looked up relative to the rule file's real place (`shown`, for a folder exported
    from the git index), where the editor looks for it."""
    folder = Path(folder)
    real = Path(shown) if shown else folder
    engine_dir = resources.schemas_dir().resolve()
    problems = []
    for rule_file in sorted(folder.iterdir()):
        if rule_file.suffix not in RULE_SUFFIXES or not rule_file.is_file():
            continue
        try:
            with open(rule_file, encoding="utf-8", errors="replace") as fh:
                first = fh.readline()
        except OSError:
            continue
        found = _MODELINE.search(first)
        if not found or "://" in found.group(1):
            continue
        named = found.group(1)
        copy = (real / named).resolve()
        label = f"{shown}/{rule_file.name}" if shown else str(rule_file)
        if copy.parent == engine_dir:
            continue  # the engine's own schemas (this repository)
        engine = resources.schemas_dir() / copy.name
        if not engine.is_file():
            continue  # not one of ratecard's schemas
        if not copy.is_file():
            problems.append(Problem(Location(label, 1, 1), f"the schema named on the first line ({named}) does not "
                                    "exist, so the editor cannot check this file; run `ratecard init --schemas` "
                                    "to copy ratecard's schemas there", "warning", "schema-copy"))
        elif copy.read_bytes() != engine.read_bytes():
            problems.append(Problem(Location(label, 1, 1), f"the schema named on the first line ({named}) differs "
                                    f"from the one ratecard {__version__} validates with, so the editor and "
                                    "`ratecard validate` may disagree; run `ratecard init --schemas` to update the "
                                    "copy", "warning", "schema-copy"))
    return problems
