"""What a usage read gives back: bad rows, accounts' usage, the reconciliation, and the rejects file."""

from __future__ import annotations

import csv
from dataclasses import dataclass, fields
from decimal import Decimal
from pathlib import Path
from typing import Iterable

from ..errors import Location, Problem, RatecardError
from ..rating import UsageItem
from ..rules import display_path


@dataclass(frozen=True, slots=True)
class Rejected:
    """A bad row: where it is (file and physical line), why it was refused, and its text as read."""

    file: str
    line: int
    reason: str
    raw: str
    code: str = ""  # a stable name for the class of problem, e.g. "negative-calls"
    account: str = ""  # the row's account, when it could be read
    # Other accounts whose money the row puts in question (a request id's copies naming two accounts):
    # `settle --rejects` holds them with `account`.
    also: tuple[str, ...] = ()

    def problem(self) -> Problem:
        return Problem(Location(self.file, self.line, 0), self.reason, code=self.code)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass(frozen=True, slots=True)
class AccountUsage:
    """One account's usage in one period, ready for ``rate(rules, u.items, u.period, account=u.account)``."""

    account: str
    period: str
    items: tuple[UsageItem, ...]

    @property
    def calls(self) -> int | Decimal:
        return sum((item.calls for item in self.items), 0)


@dataclass(frozen=True)
class Reconciliation:
    """Where every row and every call read went. Nothing lost, nothing counted twice.

    A rejected row whose calls cannot be read (``calls`` missing or not a number) adds no calls:
    its calls are unknown. Each call record is one call.
    """

    rows_read: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    rows_duplicate: int = 0
    rows_out_of_period: int = 0
    calls_read: int = 0
    calls_accepted: int = 0
    calls_rejected: int = 0
    calls_duplicate: int = 0
    calls_out_of_period: int = 0
    period: str | None = None  # the period filter, when one was given

    @property
    def balanced(self) -> bool:
        return (self.rows_read == self.rows_accepted + self.rows_rejected + self.rows_duplicate
                + self.rows_out_of_period
                and self.calls_read == self.calls_accepted + self.calls_rejected + self.calls_duplicate
                + self.calls_out_of_period
                and all(getattr(self, f.name) >= 0 for f in fields(self) if f.name != "period"))

    def check(self) -> Reconciliation:
        """Prove the sums; a failure here is a bug in ratecard, never a problem of the input."""
        if not self.balanced:
            raise RatecardError("internal error: the usage reconciliation does not add up: " + "; ".join(self.lines()))
        return self

    def lines(self) -> list[str]:
        other = f"out of period {self.period}" if self.period else "out of period"
        return [f"rows: {self.rows_read:,} read = {self.rows_accepted:,} accepted + {self.rows_rejected:,} "
                f"rejected + {self.rows_duplicate:,} duplicate + {self.rows_out_of_period:,} {other}",
                f"calls: {self.calls_read:,} read = {self.calls_accepted:,} accepted + {self.calls_rejected:,} "
                f"rejected + {self.calls_duplicate:,} duplicate + {self.calls_out_of_period:,} {other}"]

    def to_dict(self) -> dict:
        from ..bill import quantity  # calls of a decimal unit (GB) add up to a Decimal: exact text, as bills write them

        return {f.name: quantity(v) if isinstance(v, Decimal) else v
                for f in fields(self) for v in (getattr(self, f.name),)} | {"balanced": self.balanced}


# -- bad rows out --------------------------------------------------------------------------------------


REJECTS_HEADER = ("file", "row", "reason", "raw")


class RejectsWriter:
    """Writes bad rows to a CSV file (file, row, reason, raw) as they are found; use as `on_reject`."""

    def __init__(self, target):
        """`target` is a path or an open text stream (which is left open)."""
        if hasattr(target, "write"):
            self._file, self._owned = target, False
        else:
            try:
                self._file = open(target, "w", encoding="utf-8", newline="")
            except OSError as exc:
                raise RatecardError(f"{display_path(Path(target))}: cannot write the rejects file: "
                                    f"{exc.strerror or exc}") from None
            self._owned = True
        self._csv = csv.writer(self._file)
        self._csv.writerow(REJECTS_HEADER)
        self.count = 0

    def __call__(self, rejected: Rejected) -> None:
        self._csv.writerow((rejected.file, rejected.line, rejected.reason, rejected.raw))
        self.count += 1

    def close(self) -> None:
        if self._owned:
            self._file.close()
        else:
            self._file.flush()

    def __enter__(self) -> RejectsWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def write_rejects(target, rejects: Iterable[Rejected]) -> int:
    """Write bad rows to a rejects CSV file; returns how many were written."""
    with RejectsWriter(target) as writer:
        for rejected in rejects:
            writer(rejected)
        return writer.count
