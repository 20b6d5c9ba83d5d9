"""Rule versions over time: rule sets named by a folder or a git revision, and the versions a bill records.

A rule set to compare may be a folder, or ``git:REV``: the same folder as committed at revision REV
of the git repository it lives in (``git:main``, ``git:HEAD~1``, a tag or a commit id). The folder's
path is taken relative to the repository's top level, the rule files it held at REV are exported to
a temporary folder and loaded from there; problems in them are reported as
``git:REV:FOLDER/FILE:LINE:COL`` (the name ``git show REV:FOLDER/FILE`` opens).

A stored bill (its JSON, `Bill.to_dict`) records the versions that priced it and their fingerprint.
`versions_of` finds those versions in a rule set again, and refuses a rule set whose versions for
that period are not the ones the bill records, so that a re-rendered bill is the bill that was sent.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from .bill import Bill
from .errors import RatecardError
from .model import RuleSet
from .rules import RULE_SUFFIXES, display_path, load_rules

GIT_PREFIX = "git:"


def is_git_spec(spec) -> bool:
    return isinstance(spec, str) and spec.startswith(GIT_PREFIX)


def load_rule_spec(spec, *, folder=None) -> RuleSet:
    """Load a rule set named by a folder path, or by ``git:REV`` (the folder `folder` at revision REV)."""
    if is_git_spec(spec):
        if folder is None:
            raise RatecardError(f"{spec}: a git revision needs the rule set folder it is a revision of")
        return load_git_rules(spec[len(GIT_PREFIX):], folder)
    return load_rules(spec)


def load_git_rules(rev: str, folder) -> RuleSet:
    """The rule set in `folder` as committed at revision `rev` of the git repository holding it."""
    spec = f"{GIT_PREFIX}{rev}"
    if not rev:
        raise RatecardError(f"{spec}: no revision given; expected e.g. git:main, git:HEAD~1 or a commit id")
    folder = Path(folder).resolve()
    # The folder may be gone from the working tree and still be in the revision: ask git from the
    # nearest folder that exists.
    anchor = next((p for p in (folder, *folder.parents) if p.is_dir()), None)
    shown = display_path(folder)
    top = _git(["rev-parse", "--show-toplevel"], anchor, spec,
               f"{shown} is not inside a git repository, so {spec} cannot be read").decode().strip()
    try:
        relative = folder.relative_to(Path(top).resolve()).as_posix()
    except ValueError:
        raise RatecardError(f"{spec}: {shown} is not inside the git repository at {top}") from None
    commit = _git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"], top, spec,
                  f"unknown revision {rev!r} in the git repository at {top}; expected e.g. "
                  "main, HEAD~1, a tag or a commit id").decode().strip()
    where = [] if relative == "." else ["--", f"{relative}/"]
    listing = _git(["ls-tree", "-z", commit, *where], top, spec, f"cannot list {relative} at {rev}")
    entries = []
    for record in filter(None, listing.split(b"\0")):
        meta, _, path = record.partition(b"\t")
        _, kind, obj = meta.decode().split()
        name = Path(path.decode("utf-8", "surrogateescape")).name
        if kind == "blob" and Path(name).suffix in RULE_SUFFIXES:
            entries.append((name, obj))
    if not entries:
        raise RatecardError(f"{spec}: there are no rule files (*.yaml) in {relative} at revision {rev}")
    label = f"{spec}:{relative}" if relative != "." else spec
    with tempfile.TemporaryDirectory(prefix="ratecard-") as tmp:
        # Named like the folder, so that the rule set keeps its name (bills and invoice numbers use it).
        target = Path(tmp) / folder.name
        target.mkdir()
        for name, obj in entries:
            (target / name).write_bytes(_git(["cat-file", "blob", obj], top, spec, f"cannot read {name} at {rev}"))
        return load_rules(target, shown_as=label)


def _git(arguments, cwd, spec: str, failure: str) -> bytes:
    try:
        done = subprocess.run(["git", *arguments], cwd=cwd, capture_output=True, check=False)
    except FileNotFoundError:
        raise RatecardError(f"{spec}: reading rules from a git revision needs git, which is not installed "
                            "or not on the PATH") from None
    except OSError as exc:
        raise RatecardError(f"{spec}: cannot run git: {exc.strerror or exc}") from None
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RatecardError(f"{spec}: {failure}" + (f" (git: {detail[-1]})" if detail else ""))
    return done.stdout


def versions_of(rules: RuleSet, bill: Bill):
    """The price book, API mapping and settlement policy that priced a (stored) bill.

    Raises RatecardError when `rules` would price the bill's period with other versions than those
    the bill records, or when their fingerprint differs from the bill's: re-rendering the bill with
    them would not reproduce it.
    """
    found = rules.in_force(bill.period)
    terms = rules.terms_in_force(bill.period)  # optional kind: part of the bill only when the rule set has it
    recorded = dict(bill.rule_versions)
    have = {kind: v.effective_from.isoformat() for kind, v in zip(("pricing", "api-mapping", "settlement"), found)}
    if terms is not None:
        have["account-terms"] = terms.effective_from.isoformat()
    if recorded != have:
        raise RatecardError(f"the bill of {bill.account} for {bill.period} was priced by the versions {recorded}, "
                            f"but rule set {rules.path} has {have} for that period")
    fingerprint = rules.fingerprint_of(*found, *((terms,) if terms is not None else ()))
    if fingerprint != bill.rules_fingerprint:
        raise RatecardError(f"the bill of {bill.account} for {bill.period} was priced by rules with fingerprint "
                            f"{bill.rules_fingerprint}, but the versions of rule set {rules.path} for that period "
                            f"have {fingerprint}: they were changed since")
    return found
