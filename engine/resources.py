"""Where the shipped rule sets, schemas and templates are (which rule set a command uses is
engine/discovery.py's business).

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
    """The rule set a command uses when none is named. Kept for callers written before discovery:
    engine/discovery.py's `choose` is the one place that decides, and says why."""
    from .discovery import choose

    return choose(None).path


def shipped_config() -> Path:
    """The shipped ratecard.toml: names the default rule set (data, so no code names a product)."""
    return _root() / "ratecard.toml"
