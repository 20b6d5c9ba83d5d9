"""Which rule sets a command uses: one discovery for every command, and never a silent fall-back.

A rule set is a folder holding rule files (``*.yaml``/``*.yml``) directly. How it is chosen:

* ``--rules X`` names a folder, or a rule set by its folder name (looked up under the local rules
  root first, then among the rule sets shipped with ratecard).
* Without ``--rules``: ``$RATECARD_RULES``, else ``rules`` in ``./ratecard.toml``, else the one rule
  set under the local rules root (``./rules``, or ``rules_root`` in ``ratecard.toml``), else, when
  there is no rules root at all, the shipped default (named in the shipped ``ratecard.toml``).
* ``validate`` and ``lint`` without folders check every rule set at any depth under the rules root
  (a flat ``rules/*.yaml`` is one rule set, ``rules/ocr/intl/`` another); outside any rules root,
  every shipped rule set.

A rules root, or a named folder, that holds no rule file at any depth is an error: the shipped rule
sets are only used where no local rules exist, and every choice says where it came from
(`Chosen.note`), so that edits to local rules can never be silently ignored.

This module reads folders and one small TOML file; it imports no YAML or JSON Schema, so that light
commands (``ratecard status``) can use it.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from . import resources
from .errors import Location, Problem, RatecardError

RULE_SUFFIXES = (".yaml", ".yml")
CONFIG_FILE = "ratecard.toml"
ENV_RULES = "RATECARD_RULES"
ENV_DB = "RATECARD_DB"
DEFAULT_ROOT = "rules"
_CONFIG_KEYS = {
    "rules": "the default rule set: a folder (relative to this file) or a rule set's name",
    "rules_root": "the folder holding every rule set that validate and lint check (default: rules)",
    "db": "the ledger file (relative to this file)",
}


@dataclass(frozen=True)
class Config:
    """Settings from a ``ratecard.toml`` (all optional); paths in it are relative to its folder."""

    file: Path | None = None
    rules: str | None = None
    rules_root: Path | None = None
    db: Path | None = None


@dataclass(frozen=True)
class Chosen:
    """One rule set and how it was chosen, for the commands that use one."""

    path: Path
    source: str  # e.g. "--rules", "$RATECARD_RULES", "ratecard.toml", "the only rule set under rules"
    shipped: bool = False

    @property
    def name(self) -> str:
        return self.path.resolve().name

    @property
    def explicit(self) -> bool:
        return self.source == "--rules"

    def note(self) -> str:
        where = "; shipped with ratecard" if self.shipped else ""
        return f"using rules {shown(self.path)} ({self.source}{where})"


@dataclass(frozen=True)
class Selection:
    """The rule sets `validate` and `lint` check, how they were found, and problems of discovery."""

    sets: tuple[Path, ...]
    source: str
    problems: tuple[Problem, ...] = field(default=())
    shipped: bool = False


def shown(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    # Not resolved first: a symbolic link is shown where it is, not where it points.
    absolute = Path(os.path.normpath(Path(path).absolute()))
    for inside, top in ((absolute, Path.cwd()), (Path(path).resolve(), Path.cwd().resolve())):
        try:
            return str(inside.relative_to(top))
        except ValueError:
            continue
    return str(path)


# -- settings ---------------------------------------------------------------------------------------


def read_config(folder: Path | None = None) -> Config:
    """``ratecard.toml`` in `folder` (default: the working directory), or empty settings."""
    file = Path(folder or Path.cwd()) / CONFIG_FILE
    if not file.is_file():
        return Config()
    return _parse_config(file)


def _parse_config(file: Path) -> Config:
    label = shown(file)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RatecardError(f"{label}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RatecardError(f"{label}: cannot read it: {getattr(exc, 'strerror', None) or exc}") from None
    unknown = sorted(set(data) - set(_CONFIG_KEYS))
    if unknown:
        raise RatecardError(f"{label}: unknown setting {', '.join(map(repr, unknown))}; expected: "
                            + "; ".join(f"{k} ({v})" for k, v in _CONFIG_KEYS.items()))
    for key, value in data.items():
        if not isinstance(value, str) or not value.strip():
            raise RatecardError(f"{label}: `{key}` must be a non-empty text, e.g. {key} = \"...\"")
    base = file.parent
    return Config(file=file, rules=data.get("rules"),
                  rules_root=base / data["rules_root"] if "rules_root" in data else None,
                  db=base / data["db"] if "db" in data else None)


def configured_db(env=None) -> tuple[str | None, str]:
    """The ledger file when ``--db`` is not given: ``$RATECARD_DB``, else ``db`` in ratecard.toml;
    None leaves the ledger's own default (``./ratecard.db``). Returns it and where it came from."""
    env = os.environ if env is None else env
    if env.get(ENV_DB):
        return env[ENV_DB], f"${ENV_DB}"
    config = read_config()
    if config.db is not None:
        return str(config.db), shown(config.file)
    return None, "default"


def _shipped_default() -> Path:
    """The shipped default rule set, as the shipped ratecard.toml names it (data, not code)."""
    file = resources.shipped_config()
    config = _parse_config(file) if file.is_file() else Config()
    if config.rules:
        return (file.parent / config.rules)
    sets = rule_sets_under(resources.rules_dir())[0]
    if len(sets) == 1:
        return sets[0]
    raise RatecardError("no default rule set is shipped; name one with --rules")


# -- finding rule sets in folders ---------------------------------------------------------------------


def holds_rule_files(folder: Path) -> bool:
    try:
        return any(p.suffix in RULE_SUFFIXES for p in folder.iterdir())
    except OSError:
        return False


def rule_sets_under(folder: Path) -> tuple[list[Path], list[Problem]]:
    """Every rule set at any depth under `folder` (itself included), sorted, and the entries that
    look like rule files but cannot be read as one (a folder named ``x.yaml``, a dangling link).
    Hidden folders (``.git``, ``.venv``) are not searched."""
    found: list[Path] = []
    problems: list[Problem] = []
    for here, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "node_modules")
        base = Path(here)
        names = [n for n in files + dirs if Path(n).suffix in RULE_SUFFIXES]
        for name in sorted(names):
            entry = base / name
            if entry.is_dir():
                problems.append(Problem(Location(shown(entry)), "a folder named like a rule file; expected a "
                                        "YAML file here, or rename the folder", code="not-a-rule-file"))
            elif not entry.is_file():
                problems.append(Problem(Location(shown(entry)), "cannot be read as a rule file (a dangling "
                                        "link, or not a regular file)", code="not-a-rule-file"))
        if any((base / n).is_file() for n in names):
            found.append(base)
    return sorted(found), problems


def local_root(config: Config | None = None) -> Path | None:
    """The rules root here: ``rules_root`` of ratecard.toml, else ``./rules`` when it exists."""
    config = read_config() if config is None else config
    if config.rules_root is not None:
        return config.rules_root
    here = Path(DEFAULT_ROOT)
    return here if here.is_dir() else None


def shipped_rule_sets() -> dict[str, Path]:
    return {p.name: p for p in rule_sets_under(resources.rules_dir())[0]}


def _by_name(name: str, root: Path | None) -> tuple[Path, bool] | None:
    """A rule set named by its folder name: under the local root first, then the shipped ones."""
    if "/" in name or os.sep in name or name in (".", ".."):
        return None
    if root is not None:
        local = [p for p in rule_sets_under(root)[0] if p.name == name]
        if len(local) > 1:
            raise RatecardError(f"rule set name {name!r} is ambiguous under {shown(root)}: "
                                f"{', '.join(shown(p) for p in local)}; name the folder instead")
        if local:
            return local[0], False
    shipped = shipped_rule_sets().get(name)
    return (shipped, True) if shipped is not None else None


def known_names(root: Path | None = None) -> list[str]:
    local = [p.name for p in rule_sets_under(root)[0]] if root is not None else []
    return sorted(set(local) | set(shipped_rule_sets()))


def resolve(spec: str, source: str, *, config: Config | None = None, base: Path | None = None) -> Chosen:
    """One rule set named by a folder (relative to `base`, default the working directory) or by a rule
    set's name; an error saying what exists otherwise."""
    config = read_config() if config is None else config
    root = local_root(config)
    base = Path.cwd() if base is None else base
    folder = Path(spec) if Path(spec).is_absolute() else base / spec
    if folder.is_dir():
        if holds_rule_files(folder):
            return Chosen(_tidy(folder, spec, base), source, shipped=_is_shipped(folder))
        inside, _ = rule_sets_under(folder)
        if len(inside) == 1:
            return Chosen(inside[0], f"{source}, the only rule set in {shown(folder)}", shipped=_is_shipped(folder))
        if not inside:
            raise RatecardError(f"{spec} ({source}): no rule files (*.yaml) in this folder or below it; "
                                "expected a rule set folder")
        raise RatecardError(f"{spec} ({source}) holds {len(inside)} rule sets: "
                            f"{', '.join(shown(p) for p in inside)}; name one of them")
    named = _by_name(spec, root)
    if named is not None:
        return Chosen(named[0], source, shipped=named[1])
    if folder.exists():
        raise RatecardError(f"{spec} ({source}): not a folder; expected a rule set folder or a rule set's name")
    if "/" in spec or os.sep in spec:
        raise RatecardError(f"{spec} ({source}): no such rule set folder; expected a folder of YAML rule files")
    raise RatecardError(f"unknown rule set {spec!r} ({source}): no such folder, and no rule set of that name; "
                        f"known rule sets: {', '.join(known_names(root)) or 'none'}")


def _tidy(folder: Path, spec: str, base: Path) -> Path:
    # As the user wrote it when it is relative to the working directory, so messages show it so.
    return Path(spec) if base.resolve() == Path.cwd().resolve() and not Path(spec).is_absolute() else folder


def _is_shipped(folder: Path) -> bool:
    try:
        folder.resolve().relative_to(resources.rules_dir().resolve())
    except ValueError:
        return False
    return resources.rules_dir().resolve() != Path(DEFAULT_ROOT).resolve()


def shown_config(config: Config) -> str:
    return shown(config.file) if config.file else CONFIG_FILE


def choose(spec: str | None = None, *, env=None) -> Chosen:
    """The rule set of a command that uses one (bill, quote, settle, pack buy, ...)."""
    env = os.environ if env is None else env
    if spec:
        return resolve(spec, "--rules")
    config = read_config()
    if env.get(ENV_RULES):
        return resolve(env[ENV_RULES], f"${ENV_RULES}", config=config)
    if config.rules:
        return resolve(config.rules, shown_config(config), config=config, base=config.file.parent)
    root = local_root(config)
    if root is not None:
        sets, _ = rule_sets_under(root)
        if len(sets) == 1:
            return Chosen(sets[0], f"the only rule set under {shown(root)}")
        if not sets:
            raise RatecardError(f"{shown(root)} holds no rule files (*.yaml) at any depth, so there are no "
                                "rules to use here; add a rule set, or name one with --rules")
        raise RatecardError(f"{shown(root)} holds {len(sets)} rule sets ({', '.join(shown(p) for p in sets)}); "
                            f"name one with --rules, or once with ${ENV_RULES} or `rules = \"...\"` in "
                            f"{CONFIG_FILE}")
    return Chosen(_shipped_default(), "the default: no rules folder here", shipped=True)


def select(specs=(), *, env=None) -> Selection:
    """The rule sets `validate` and `lint` check: those named (each folder searched at any depth), else
    every rule set under the rules root, else, with no rules root here, every shipped one."""
    problems: list[Problem] = []
    if specs:
        sets: list[Path] = []
        for spec in specs:
            folder = Path(spec)
            if folder.is_dir():
                inside, found = rule_sets_under(folder)
                problems += found
                if not inside:
                    problems.append(Problem(Location(spec), "no rule files (*.yaml) in this folder or below it; "
                                            "expected a rule set folder", code="no-rules"))
                sets += inside
                continue
            try:
                sets.append(resolve(spec, "--rules").path)
            except RatecardError as exc:
                problems.append(Problem(Location(spec), str(exc), code="no-rules"))
        return Selection(tuple(dict.fromkeys(sets)), "named", tuple(problems))
    root = local_root()
    if root is not None:
        if not root.is_dir():
            return Selection((), shown(root), (Problem(Location(shown(root)), "the rules root does not exist; "
                                                       "expected a folder of rule sets", code="no-rules"),))
        sets, problems = rule_sets_under(root)
        if not sets:
            problems.append(Problem(Location(shown(root)), "no rule files (*.yaml) in this folder or below it, so "
                                    "nothing was checked; expected rule set folders (or name one)", code="no-rules"))
        return Selection(tuple(sets), f"every rule set under {shown(root)}", tuple(problems))
    sets, problems = rule_sets_under(resources.rules_dir())
    return Selection(tuple(sets), "the rule sets shipped with ratecard (no ./rules here)", tuple(problems),
                     shipped=True)
