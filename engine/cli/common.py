"""What several commands share: lazy rule loading, argument checks, the clock, the ledger."""

from __future__ import annotations

import argparse
import os
import re
import stat
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


# ASCII digits (str.isdigit() takes "²" and "١٢"), and few enough of them to be a real count.
COUNT = re.compile(r"[0-9]{1,18}")
QUANTITY = re.compile(r"[0-9]{1,18}(\.[0-9]{1,12})?")


def _identity(path) -> tuple[int, int] | None:
    """(device, inode) of a usage input, "-" being standard input; None when it cannot be known
    (the reader reports a missing file itself)."""
    try:
        st = os.fstat(sys.stdin.fileno()) if path == "-" else os.stat(path)
    except (OSError, ValueError, AttributeError):  # no such file; standard input closed or replaced
        return None
    return st.st_dev, st.st_ino


def stdin_bytes(args):
    """Standard input as bytes, for `--usage -`; refused plainly when there is none to read (closed
    with `<&-`, or detached), rather than failing inside the reader."""
    if "-" not in (getattr(args, "usage", None) or ()):
        return None
    stream = getattr(sys.stdin, "buffer", None)  # None when Python started with file descriptor 0 closed
    if stream is None or getattr(stream, "closed", False):
        raise RatecardError("--usage -: standard input is closed; pipe the usage in, or name a file")
    return stream


def _is_null_device(st) -> bool:
    """/dev/null: a way to bill the good rows and keep no rejects, and never an input's contents."""
    try:
        null = os.stat(os.devnull)
    except OSError:
        return False
    return stat.S_ISCHR(st.st_mode) and (st.st_dev, st.st_ino, st.st_rdev) == (null.st_dev, null.st_ino, null.st_rdev)


def check_rejects_path(args) -> None:
    """A rejects file is opened for writing, which empties it, before the usage is read: it must be a
    regular file (new or existing), or /dev/null, that is none of the inputs, compared as the file
    system sees them (device and inode), so neither a hard link, a symbolic link nor /dev/stdin can
    empty an input."""
    rejects = getattr(args, "rejects", None)
    if not rejects:
        return
    if rejects == "-":
        # Elsewhere `-` is standard input or output, but standard output carries the documents or the
        # report: a file named "-" in the working folder would be a surprise, so it is asked for as ./-
        raise RatecardError("--rejects -: the bad rows are written to a file, and standard output carries the "
                            "report; expected a file name (./- for a file named '-'), or /dev/null to keep none: "
                            "nothing was read")
    try:
        st = os.stat(rejects)
    except FileNotFoundError:
        return  # a new file (the folder missing, or a dangling link, is reported when it is opened)
    except OSError:
        return  # the rejects writer reports why it cannot be opened
    if not stat.S_ISREG(st.st_mode) and not _is_null_device(st):
        what = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (a pipe, terminal or device)"
        raise RatecardError(f"--rejects {rejects} is {what}; expected a new or existing file to write the bad rows "
                            "to (or /dev/null to keep none): nothing was read")
    for source in args.usage:
        if _identity(source) == (st.st_dev, st.st_ino):
            also = "standard input" if source == "-" else f"--usage {source}"
            raise RatecardError(f"--rejects {rejects} is the same file as {also}; it would be emptied before it "
                                "is read: write the rejects somewhere else; nothing was read")


def jobs_arg(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,2}", text) or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(f"expected a number of worker processes from 1 to 64, got {text!r}")
    return int(text)


def batch_arg(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,6}", text) or not 1 <= int(text) <= 100_000:
        raise argparse.ArgumentTypeError(f"expected a number of accounts per transaction from 1 to 100,000, "
                                         f"got {text!r}")
    return int(text)


def usage_args(pairs, t=None) -> list:
    """`API=CALLS` or `API:OUTCOME=CALLS` words → usage items. CALLS is a count as `ratecard.counts`
    writes it (2000000, 2,000,000, 1.5M), or a decimal quantity (`StoreObject=150.5`, for a category
    with a decimal unit), and may end in `@AMOUNT`, the total transaction amount of the calls
    (`Charge=3@300.00`, for a category priced as a percentage). A mistake is a command-line one (exit 2)."""
    from decimal import Decimal

    from ..counts import CountError, parse_count
    from ..rating import UsageItem

    items = []
    for word in pairs:
        name, sep, value = word.rpartition("=")
        api, _, outcome = name.partition(":")
        calls, at, amount = value.partition("@")
        try:
            count, why = parse_count(calls), ""
        except CountError as exc:
            count, why = None, f": {exc}"
        digits = calls.replace("_", "")
        decimal = count is None and "." in digits and QUANTITY.fullmatch(digits) is not None
        if (not sep or not api or (count is None and not decimal)
                or (at and not QUANTITY.fullmatch(amount.replace("_", "").replace(",", "")))):
            raise CommandLineError(f"bad usage {word!r}: expected API=CALLS or API:OUTCOME=CALLS, e.g. "
                                   "RenderWidget=1000000 (a decimal quantity for a category with a decimal unit; "
                                   f"API=CALLS@AMOUNT for a transaction amount){why}")
        if decimal and t is not None:
            entry = t.index.get(api)
            places = t.decimal_pos.get(t.slot_position[entry[0]]) if entry is not None else None
            if places is None or len(digits.partition(".")[2].rstrip("0")) > places:
                raise CommandLineError(f"bad usage {word!r}: expected API=CALLS with a whole number of calls"
                                       + (f" (or at most {places} decimal places for {api})" if places else "")
                                       + f", e.g. RenderWidget=1000000{why}")
        items.append(UsageItem(api, Decimal(digits) if count is None else count, outcome or None,
                               Decimal(amount.replace("_", "").replace(",", "")) if at else None))
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


def rules_of_service(args, service: str):
    """The rule set a service names (its folder name), for checks against the account."""
    from ..discovery import resolve

    spec = getattr(args, "rules", None) or getattr(args, "service", None)
    return load_rules((resolve(spec, "--rules") if spec else chosen_rules(args)).path)


def ledger_buyers(rules, db=None):
    """The buyer details of the ledger's accounts (--db, $RATECARD_DB, ratecard.toml or ./ratecard.db)
    when the rules tax by them, else None: tax rules need the buyer's country and tax id."""
    from ..discovery import configured_db
    from ..ledger import DEFAULT_DB, Ledger

    if not rules.taxes:
        return None
    path = Path(db or configured_db()[0] or DEFAULT_DB)
    if not path.is_file():
        return None
    with Ledger(path, readonly=True) as ledger:
        return ledger.buyers()


def ledger_currency_check(rules, account_ids, db=None) -> None:
    """Refuse to bill accounts that the ledger holds in another currency than the rules bill in (a
    China-site account billed with the USD book). Checked when a ledger is named (--db,
    $RATECARD_DB or ratecard.toml) or ./ratecard.db exists; an account not in it is not checked.
    `account_ids` may be a function giving them: then they are gathered only when there is a ledger
    to check them in (a million account ids held as a set take tens of MiB)."""
    from ..discovery import configured_db
    from ..ledger import DEFAULT_DB, Ledger

    path = Path(db or configured_db()[0] or DEFAULT_DB)
    if not path.is_file():
        return
    if callable(account_ids):
        account_ids = account_ids()
    if not account_ids:
        return
    currencies = frozenset(book.currency for book in rules.pricing)
    with Ledger(path, readonly=True) as ledger:
        wrong = ledger.currency_mismatches(currencies, account_ids)
    if wrong:
        names = ", ".join(f"{a} ({c})" for a, c in sorted(wrong.items())[:10])
        more = f" and {len(wrong) - 10} more" if len(wrong) > 10 else ""
        raise RatecardError(f"{len(wrong)} account(s) in the ledger {path} hold their balance in another currency "
                            f"than rules {rules.name} bill in ({', '.join(sorted(currencies))}): {names}{more}; "
                            "bill them with the rules of their site (--rules)")


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


def choices_help(what: str, choices, default: str | None = None, notes: dict[str, str] | None = None) -> str:
    """'WHAT: a, b or c (NOTE); default: a' -- every value named, so --help lists the formats."""
    shown = [f"{c} ({notes[c]})" if notes and c in notes else str(c) for c in choices]
    text = f"{what}: {', '.join(shown[:-1])} or {shown[-1]}" if len(shown) > 1 else f"{what}: {shown[0]}"
    return text + (f"; default: {default}" if default else "")
