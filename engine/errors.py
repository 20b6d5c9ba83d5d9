"""One exception hierarchy; every problem an analyst can act on carries where it is."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class Location:
    """A place in an input file. `line` and `column` are 1-based; `path` is the data path
    inside the document (e.g. ``categories.face-search.tiers[1].up_to``), empty for the whole file."""

    file: str
    line: int = 1
    column: int = 1
    path: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}" if self.column else f"{self.file}:{self.line}"


@dataclass(frozen=True, order=True)
class Problem:
    """One finding about an input: an error (it cannot be used) or a warning (legal but suspicious)."""

    location: Location
    message: str
    severity: str = "error"
    code: str = field(default="", compare=False)

    def __str__(self) -> str:
        where = f"{self.location.path}: " if self.location.path else ""
        return f"{self.location}: {self.severity}: {where}{self.message}"

    def to_dict(self) -> dict:
        return {
            "file": self.location.file,
            "line": self.location.line,
            "column": self.location.column,
            "path": self.location.path,
            "message": self.message,
            "severity": self.severity,
            "code": self.code,
        }


class RatecardError(Exception):
    """Base of every error ratecard reports to a user. The CLI maps it to exit status 1."""

    exit_status = 1

    def lines(self) -> list[str]:
        return [str(self)]


class CommandLineError(RatecardError):
    """A mistake on the command line found after parsing (a value argparse could not check alone)."""

    exit_status = 2


class ProblemsError(RatecardError):
    """Carries every problem found, so that all of them are reported in one run."""

    def __init__(self, problems, summary: str = ""):
        self.problems = tuple(sorted(problems))
        count = len(self.problems)
        super().__init__(summary or f"{count:,} problem{'' if count == 1 else 's'}")

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems] + [str(self)]


class RuleSetInvalid(ProblemsError):
    """A rule set failed to load: YAML syntax, schema or semantic problems."""


class UsageInvalid(ProblemsError):
    """Usage rows that cannot be billed (each problem names the file and row)."""

    def lines(self) -> list[str]:
        return [f"{p.location}: {p.message}" for p in self.problems] + [str(self)]


class AccountsInvalid(ProblemsError):
    """Rows of an accounts file that cannot be imported (each problem names the file and row)."""

    def lines(self) -> list[str]:
        return [f"{p.location}: {p.message}" for p in self.problems] + [str(self)]


class RatingError(RatecardError):
    """Usage that the rules cannot price, e.g. an unknown API when the rules say that is an error."""


class UnknownApi(RatingError):
    def __init__(self, apis):
        self.apis = tuple(sorted(apis))
        names = ", ".join(self.apis)
        super().__init__(
            f"unknown API {names}: the rule set's API mapping does not list "
            f"{'it' if len(self.apis) == 1 else 'them'}; add it to a category "
            f"(billable or free) or set `unknown_api: report`"
        )


class NoRulesInForce(RatingError):
    """No version of a rule file kind is in force for the requested period."""


class PeriodError(RatecardError):
    """A period that is not written YYYY-MM, or that the operation cannot accept."""
