"""Rule files as they are staged in git: what a commit will contain, not what the working folder has.

The pre-commit hooks validate this (``ratecard validate --staged``): a file deleted with ``git rm`` is
gone, an untracked draft is not there, and a file staged and then edited again is checked as staged.
The staged files are exported to a temporary folder with the repository's layout, and problems name
the real paths (``rules/face-recognition/pricing.yaml:12:7``).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .discovery import DEFAULT_ROOT, RULE_SUFFIXES, local_root, rule_sets_under, shown
from .errors import Location, Problem, RatecardError

_BLOB_MODES = {"100644", "100755"}


@dataclass
class StagedRules:
    """Rule sets exported from the git index; use as a context manager (the copy is removed after)."""

    sets: list[tuple[Path, str]] = field(default_factory=list)  # (exported folder, the real folder shown)
    problems: list[Problem] = field(default_factory=list)
    files: int = 0
    folder: Path | None = None

    def __enter__(self) -> "StagedRules":
        return self

    def __exit__(self, *exc) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def _git(arguments, cwd) -> bytes:
    try:
        done = subprocess.run(["git", *arguments], cwd=cwd, capture_output=True, check=False)
    except FileNotFoundError:
        raise RatecardError("--staged reads the git index, and needs git, which is not installed or not on the "
                            "PATH") from None
    except OSError as exc:
        raise RatecardError(f"--staged: cannot run git: {exc.strerror or exc}") from None
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RatecardError("--staged: " + (detail[-1] if detail else f"git {' '.join(arguments)} failed"))
    return done.stdout


def staged_rules(specs=()) -> StagedRules:
    """Every rule set at any depth in the named folders (default: the rules root, ``./rules``) as the
    git index holds them."""
    top_text = _git(["rev-parse", "--show-toplevel"], Path.cwd()).decode("utf-8", "surrogateescape").strip()
    top = Path(top_text).resolve()
    folders = [Path(s) for s in specs] or [local_root() or Path(DEFAULT_ROOT)]
    out = StagedRules(folder=Path(tempfile.mkdtemp(prefix="ratecard-staged-")))
    try:
        for folder in folders:
            _export(top, folder, out)
    except BaseException:
        out.__exit__()
        raise
    return out


def _export(top: Path, folder: Path, out: StagedRules) -> None:
    try:
        relative = folder.resolve().relative_to(top)
    except ValueError:
        out.problems.append(Problem(Location(str(folder)), f"not inside the git repository at {top}, so its "
                                    "staged content cannot be read", code="no-rules"))
        return
    where = [] if str(relative) == "." else ["--", f"{relative.as_posix()}/"]
    listing = _git(["ls-files", "--stage", "-z", "--full-name", *where], top)
    exported = out.folder / relative
    count = 0
    for record in filter(None, listing.split(b"\0")):
        meta, _, raw_path = record.partition(b"\t")
        mode, obj, stage = meta.decode().split()
        path = PurePosixPath(raw_path.decode("utf-8", "surrogateescape"))
        if path.suffix not in RULE_SUFFIXES or any(part.startswith(".") for part in path.parts):
            continue
        label = shown(top / path)
        if stage != "0":
            if stage == "1":  # one report per file, not one per side of the conflict
                out.problems.append(Problem(Location(label), "has an unresolved merge conflict in the index; "
                                            "resolve it and stage the result", code="unmerged"))
            continue
        if mode not in _BLOB_MODES:
            out.problems.append(Problem(Location(label), "is staged as a symbolic link or submodule, not a file; "
                                        "commit the rule file itself", code="not-a-rule-file"))
            continue
        target = out.folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(_git(["cat-file", "blob", obj], top))
        count += 1
    out.files += count
    if not count:
        out.problems.append(Problem(Location(shown(folder)), "no rule files (*.yaml) are staged in this folder or "
                                    "below it, so nothing would be checked; expected rule set folders",
                                    code="no-rules"))
        return
    sets, problems = rule_sets_under(exported)
    out.problems += problems
    for exported_set in sets:
        out.sets.append((exported_set, shown(top / exported_set.relative_to(out.folder))))
