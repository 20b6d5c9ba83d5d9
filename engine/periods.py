"""Billing periods (calendar months written YYYY-MM) and their bounds in a time zone."""

from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

from .errors import PeriodError

_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")


def parse_period(text: str) -> date:
    """The first day of the period. Raises PeriodError for anything but a real YYYY-MM."""
    m = _PERIOD.match(text or "")
    if not m or not 1 <= int(m.group(2)) <= 12 or int(m.group(1)) < 1:
        raise PeriodError(f"bad period {text!r}: expected a month written YYYY-MM, e.g. 2020-09")
    return date(int(m.group(1)), int(m.group(2)), 1)


def next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def period_of(moment: datetime, time_zone: str) -> str:
    """The period a timezone-aware moment falls in, in the policy's time zone."""
    local = moment.astimezone(ZoneInfo(time_zone))
    return f"{local.year:04d}-{local.month:02d}"


def period_bounds(period: str, time_zone: str) -> tuple[datetime, datetime]:
    """[start, end) of a period as aware datetimes in the policy's time zone."""
    first = parse_period(period)
    zone = ZoneInfo(time_zone)
    after = next_month(first)
    return (datetime(first.year, first.month, 1, tzinfo=zone),
            datetime(after.year, after.month, 1, tzinfo=zone))
