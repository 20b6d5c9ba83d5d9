"""Where the shipped rule sets, schemas and templates are.

In a source checkout they are the top-level `rules/`, `schemas/` and `reports/` folders; in an
installed wheel they travel as `ratecard/_shipped/...` (see setup.py).
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _root() -> Path:
    shipped = _PACKAGE / "_shipped"
    if shipped.is_dir():
        return shipped
    return _PACKAGE.parent


def schemas_dir() -> Path:
    return _root() / "schemas"


def rules_dir() -> Path:
    return _root() / "rules"


def reports_dir() -> Path:
    return _root() / "reports"


def default_rule_set() -> Path:
    """The rule set used when none is named: the only one shipped, or `face-recognition`."""
    root = rules_dir()
    sets = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if len(sets) == 1:
        return sets[0]
    return root / "face-recognition"


def rule_sets_in(folder: Path) -> list[Path]:
    """The rule set folders directly inside `folder` (those holding YAML files), sorted."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.is_dir() and any(q.suffix in (".yaml", ".yml") for q in p.iterdir()))


def local_or_shipped_rule_sets() -> list[Path]:
    """What `validate` and `lint` check when no folder is named: the rule sets under ./rules when the
    working folder has them (an analysts' rules repository, or this one), else every shipped one."""
    return rule_sets_in(Path("rules")) or rule_sets_in(rules_dir())


def shipped_config() -> Path:
    """The shipped ratecard.toml: names the default rule set (data, so no code names a product)."""
    return _root() / "ratecard.toml"
