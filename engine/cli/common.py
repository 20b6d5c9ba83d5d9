"""What several commands share: lazy rule loading, argument checks, the clock, the ledger."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from ..errors import CommandLineError, RatecardError
from ..formatting import format_money


# The rule loader pulls in YAML and JSON Schema; imported on first use so that commands that need no
# rules (`ratecard status`, asked by a gateway many times a second) start fast.
def load_rules(path):
    from ..rules import load_rules as load

    return load(path)


def check_rules(path, **options):
    from ..rules import check_rules as check

    return check(path, **options)


def chosen_rules(args):
    """The rule set a command uses (`--rules`, else the default named once, else the local one, else
    the shipped one): the same discovery for every command (engine/discovery.py)."""
    from ..discovery import choose

    return choose(getattr(args, "rules", None))


def rules_of(args, *, say: bool = True):
    """Load the command's rule set; when it was not named with --rules, say on standard error which
    one was used (with `say=False` the caller says it, with `rules_note`)."""
    chosen = chosen_rules(args)
    if say and not chosen.explicit:
        print(f"ratecard: {chosen.note()}", file=sys.stderr)
    return load_rules(chosen.path)


def rules_note(args) -> str | None:
    chosen = chosen_rules(args)
    return None if chosen.explicit else chosen.note()


def same_file(a, b) -> bool:
    try:
        return a != "-" and Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def check_rejects_path(args) -> None:
    """A rejects file that is also an input would be emptied before it is read."""
    if getattr(args, "rejects", None) and any(same_file(u, args.rejects) for u in args.usage):
        raise RatecardError(f"--rejects {args.rejects} is also a --usage file; it would be overwritten before "
                            "it is read: write the rejects somewhere else")


def jobs_arg(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,2}", text) or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"expected a number of worker processes from 1 to 64, got {text!r}")
    return int(text)


def usage_args(pairs) -> list:
    """`API=CALLS` or `API:OUTCOME=CALLS` words → usage items; CALLS as `ratecard.counts` says."""
    from ..counts import CountError, parse_count
    from ..rating import UsageItem

    items = []
    for word in pairs:
        name, sep, calls = word.rpartition("=")
        api, _, outcome = name.partition(":")
        if not sep or not api:
            raise CommandLineError(f"bad usage {word!r}: expected API=CALLS or API:OUTCOME=CALLS, e.g. "
                                   "RenderWidget=1000000")
        try:
            items.append(UsageItem(api, parse_count(calls), outcome or None))
        except CountError as exc:
            raise CommandLineError(f"bad usage {word!r}: {exc}") from None
    return items


def pack_args(pairs) -> list:
    from ..counts import CountError, parse_count
    from ..rating import PackBalance

    packs = []
    for i, word in enumerate(pairs, 1):
        category, sep, units = word.partition("=")
        if not sep or not category:
            raise CommandLineError(f"bad pack {word!r}: expected CATEGORY=UNITS, e.g. widgets=500000")
        try:
            packs.append(PackBalance(f"what-if-{i}", category, parse_count(units)))
        except CountError as exc:
            raise CommandLineError(f"bad pack {word!r}: {exc}") from None
    return packs


def default_period(rules) -> str:
    from datetime import datetime, timezone

    from ..periods import period_of

    return period_of(datetime.now(timezone.utc), rules.latest[2].time_zone)


class Progress:
    """Progress on standard error, only when it is a terminal and the run is longer than a moment."""

    def __init__(self, total: int, enabled: bool):
        import time

        self.clock, self.total = time.monotonic, total
        self.enabled = enabled and sys.stderr.isatty()
        self.start = self.last = self.clock()
        self.shown = False

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if now - self.start >= 2 and now - self.last >= 0.25:
            self.last, self.shown = now, True
            print(f"\rbilling: {done:,}/{self.total:,} accounts", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.shown:
            print("\r\033[K", end="", file=sys.stderr, flush=True)


def pct_arg(text: str):
    from decimal import Decimal, InvalidOperation

    try:
        value = Decimal(text)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"expected a percentage of at least 0, e.g. 5 or 12.5, got {text!r}")
    return value


def moment_arg(text: str):
    """`--at`: an ISO 8601 date and time with a UTC offset; anything else is a command-line mistake."""
    from datetime import datetime

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is not None and not 1970 <= moment.year <= 9998:
        raise argparse.ArgumentTypeError(f"expected a date between 1970 and 9998, got {text!r}")
    if moment is None or moment.tzinfo is None or moment.utcoffset() is None:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 date and time with a UTC offset, e.g. "
                                         f"2024-04-05T09:00:00+02:00 or 2024-04-05T07:00:00Z, got {text!r}")
    return moment


def at_arg(value):
    """The moment a ledger command acts at: --at (parsed by `moment_arg`), else now. The only place
    the ledger reads the clock."""
    from datetime import datetime, timezone

    if value is None:
        return datetime.now(timezone.utc)
    return moment_arg(value) if isinstance(value, str) else value


def period_arg(text: str) -> str:
    """`--period`: a real month written YYYY-MM (2020-13 is a command-line mistake, exit 2)."""
    from ..errors import PeriodError
    from ..periods import parse_period

    try:
        parse_period(text)
    except PeriodError:
        raise argparse.ArgumentTypeError(f"expected a month written YYYY-MM, e.g. 2020-09, got {text!r}") from None
    return text


def count_arg(text: str) -> int:
    """A count of units, written as `ratecard.counts` says (2000000, 2,000,000, 1.5M)."""
    from ..counts import CountError, parse_count

    try:
        return parse_count(text)
    except CountError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def amount_arg(text: str) -> str:
    """A positive amount of money in plain digits (100, 25.50); its currency's decimals are the ledger's check."""
    if not re.fullmatch(r"[0-9]{1,30}(\.[0-9]{1,30})?", text):
        raise argparse.ArgumentTypeError(f"expected a positive amount in plain digits, e.g. 100 or 25.50, got {text!r}")
    return text


def zone_arg(text: str) -> str:
    """An IANA time zone name (Europe/Berlin, UTC)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(f"expected an IANA time zone such as Europe/Berlin or UTC, got {text!r}") from None
    return text


def open_ledger(args, **options):
    from ..discovery import configured_db
    from ..ledger import Ledger

    return Ledger(args.db or configured_db()[0], **options)


def service_of(args, *, known: bool = False) -> str:
    """The service a ledger command is about: a rule set's name, from `--rules` (a folder or a name),
    the `--service NAME` alias, or the default rule set. With `known`, a name that no rule set has is
    refused (activating a typo would hold an account to rules that do not exist)."""
    from ..discovery import resolve

    rules, service = getattr(args, "rules", None), getattr(args, "service", None)
    if rules and service:
        raise RatecardError("--service is another spelling of --rules: give one of them")
    if rules:
        return resolve(rules, "--rules").name
    if service:
        return resolve(service, "--service").name if known else service
    return chosen_rules(args).name


def services_text(account) -> str:
    return ", ".join(f"{s.service} {s.state}" for s in account.services) or "no service activated"


def applied_text(applied, currency) -> str:
    text = (f"balance {format_money(applied.balance, currency)}, deposits {format_money(applied.frozen, currency)}, "
            f"available {format_money(applied.balance - applied.frozen, currency)}")
    standing = [f"{e.service} {e.kind}" for e in applied.entries if e.kind in ("suspended", "resumed")]
    if standing:
        text += "; " + ", ".join(standing)
    elif applied.suspended:
        text += f"; suspended: {', '.join(applied.suspended)}"
    return text
