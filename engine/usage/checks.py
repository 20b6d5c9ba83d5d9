"""The checks of one usage row, with the reasons an analyst reads: the diagnosing pass.

The fast pass (`ratecard.usage.compile`) decides in SQL, for a whole input at once, whether every row
is certainly good; only when it is not does this pass run, row by row with line numbers, to say
which rows are bad and why. It decides nothing about duplicates: whether a row repeats a request id
already counted depends on the rows before it, which SQL settles over the whole input afterwards.

The order of the checks is part of the contract (a row with two problems is reported for the first):
request id, account, API, timestamp or period, calls, outcome; then the period filter (a row of
another period is out of period, never refused for its API); then the API and the rules in force.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
import json

from ..errors import NoRulesInForce, PeriodError
from ..model import RuleSet
from ..periods import parse_period, period_of
from ..rating import SUCCESS, Tariff, tariff
from .files import CALLS, Bad

_INTEGER = re.compile(r"[+-]?[0-9]+(?:\.0+)?")  # ASCII digits only; a zero fraction is how pandas writes a whole number
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff]")  # incl. invisible marks
_SURROGATE = re.compile(r"[\ud800-\udfff]")  # JSON can spell one ("\ud800"); UTF-8 cannot hold it
MAX_CALLS = 10**15  # in one row: far beyond any real month, and small enough to price exactly

OK, OUT, BAD = "ok", "out", "bad"


class RowChecker:
    """Checks rows against one rule set and an optional period filter.

    `check(kind, values)` returns ``(status, request_id, account, period, api, outcome, calls, bad)``:
    status `ok` (counted), `out` (another period) or `bad` (then `bad` is the `Bad` and the other
    fields are what could be read). `request_id` is None when it cannot be read.
    """

    def __init__(self, rules: RuleSet, period: str | None):
        self.rules, self.period = rules, period
        self._valid_periods: set[str] = set()
        self._tariffs: dict[str, Tariff | str] = {}
        # The rules' time zones, newest policy first: a call's period is its local month in the
        # zone of the policy in force for that month (see _local_period).
        self._zones = tuple(dict.fromkeys(p.time_zone for p in reversed(rules.policies)))

    def check(self, kind: str, values):
        request_id = account = period = api = outcome = None
        calls = 1 if kind == CALLS else 0
        try:
            if isinstance(values, Bad):
                raise values
            if kind == CALLS:
                request_id = text(values, "request_id")
                account = read_account(values)
                api = text(values, "api")
                period = self._call_period(text(values, "timestamp"))
            else:
                account = read_account(values)
                period = self._period(text(values, "period"))
                api = text(values, "api")
                calls = read_calls(values.get("calls"))
            outcome = read_outcome(values)
            if self.period is not None and period != self.period:
                return OUT, request_id, account, period, api, outcome, calls, None
            self._check_api(api, period)
        except Bad as bad:
            if kind != CALLS and not calls:
                calls = calls_or_zero(values)
            return BAD, request_id, account, period, api, outcome, calls, bad
        return OK, request_id, account, period, api, outcome, calls, None

    # -- periods ---------------------------------------------------------------------------------

    def _period(self, period: str) -> str:
        if period not in self._valid_periods:  # a handful of periods, each checked once
            try:
                parse_period(period)
            except PeriodError as exc:
                raise Bad("bad-period", str(exc)) from None
            self._valid_periods.add(period)
        return period

    def _call_period(self, value: str) -> str:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise Bad("bad-timestamp", f"bad timestamp {value!r}: expected ISO 8601 with a UTC offset, "
                      "e.g. 2020-09-30T23:30:00Z or 2020-10-01T07:30:00+08:00") from None
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise Bad("naive-timestamp", f"timestamp {value!r} has no UTC offset, so its billing period is "
                      "unknown; expected e.g. 2020-09-30T23:30:00Z or 2020-10-01T07:30:00+08:00")
        try:
            return self._local_period(moment)
        except PeriodError as exc:
            raise Bad("bad-timestamp", str(exc)) from None

    def _local_period(self, moment: datetime) -> str:
        # Nearly always one zone, tried once. Should a policy version ever change the time zone,
        # the period is the local month in the zone of the policy in force for that month.
        for zone in self._zones:
            period = period_of(moment, zone)
            t = self._tariff(period)
            if not isinstance(t, Tariff) or t.policy.time_zone == zone:
                return period
        return period_of(moment, self._zones[0])

    def _tariff(self, period: str) -> Tariff | str:
        found = self._tariffs.get(period)
        if found is None:
            try:
                found = tariff(self.rules, period)
            except NoRulesInForce as exc:
                found = str(exc)
            self._tariffs[period] = found
        return found

    def _check_api(self, api: str, period: str) -> None:
        t = self._tariff(period)
        if not isinstance(t, Tariff):
            raise Bad("no-rules", t)
        # Only `unknown_api: error` refuses the row; `report` and `ignore` are rating's business.
        if api not in t.index and t.unknown_api == "error":
            raise Bad("unknown-api", f"unknown API {api!r}: the API mapping in force for {period} "
                      f"({t.mapping.source}) does not list it")


# -- field checks ------------------------------------------------------------------------------------


def _shown(value) -> str:
    # Parquet gives dates, bytes, timestamps...: each shown as text, never a traceback.
    return str(value) if isinstance(value, Decimal) else json.dumps(value, default=str)


def text(values: dict, name: str) -> str:
    value = values.get(name)
    if value is None or value == "":
        raise Bad("missing-field", f"missing field {name!r}")
    if not isinstance(value, str):
        raise Bad("bad-field", f"{name} must be text, got {_shown(value)}")
    value = value.strip()
    if not value:
        raise Bad("missing-field", f"missing field {name!r}")
    return unicode_text(name, value)


def unicode_text(name: str, value: str) -> str:
    """`value`, when it is text UTF-8 can hold: a lone surrogate would make a document unwritable."""
    if _SURROGATE.search(value):
        shown = value.encode("utf-8", "backslashreplace").decode("utf-8")
        raise Bad("bad-field", f"{name} {shown!r} is not valid Unicode text (a lone surrogate); expected UTF-8 text")
    return value


def read_account(values: dict) -> str:
    value = values.get("account")
    if isinstance(value, str) and not value.strip():
        raise Bad("empty-account", "empty account: every row must name the account to bill")
    account = text(values, "account")
    if _CONTROL.search(account):
        raise Bad("bad-field", f"account {account!r} contains control characters; expected printable text")
    return account


def read_calls(value) -> int:
    if value is None or value == "":
        raise Bad("missing-field", "missing field 'calls'")
    if isinstance(value, int) and not isinstance(value, bool):
        calls = value
    elif isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        calls = int(value)  # a JSON number written 1000.0: whole, exactly (parsed as Decimal, never float)
    elif isinstance(value, str) and _INTEGER.fullmatch(value.strip()) and len(value.strip()) <= 40:
        calls = int(value.strip().split(".")[0])
    else:
        shown = value if isinstance(value, str) else _shown(value)
        raise Bad("bad-calls", f"calls must be a whole number, got {shown!r}")
    if calls < 0:
        raise Bad("negative-calls", f"calls must not be negative, got {calls}")
    if calls > MAX_CALLS:
        raise Bad("bad-calls", f"calls {calls} is out of range: expected at most {MAX_CALLS:,} in one row")
    return calls


def calls_or_zero(values) -> int:
    """The calls of an aggregated row refused for another reason (0 when they cannot be read)."""
    if isinstance(values, Bad):
        values = values.values  # a line read into a broken record, read alone
    try:
        return read_calls(values.get("calls")) if isinstance(values, dict) else 0
    except Bad:
        return 0


def read_outcome(values: dict) -> str | None:
    outcome = values.get("outcome")
    if isinstance(outcome, str) and outcome.strip():
        outcome = unicode_text("outcome", outcome.strip())
        # Logs disagree on the case of "success"; an error code keeps its case, which is significant.
        return SUCCESS if outcome.lower() == SUCCESS else outcome
    if outcome is not None and not isinstance(outcome, str):
        raise Bad("bad-field", f"outcome must be text, got {_shown(outcome)}")
    if "error_code" in values:
        code = values["error_code"]
        if code is None or code == "" or isinstance(code, str) and not code.strip():
            return SUCCESS
        if not isinstance(code, str):
            raise Bad("bad-field", f"error_code must be text, got {_shown(code)}")
        return unicode_text("error_code", code.strip())
    return None
