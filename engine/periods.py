"""Billing periods (calendar months written YYYY-MM) and their bounds in a time zone."""

from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

from .errors import PeriodError

# ASCII digits only: `\d` would also take "２０２０", a second spelling of the same month.
_PERIOD = re.compile(r"([0-9]{4})-([0-9]{2})")
# Periods whose bounds, in any time zone and in UTC (as the ledger stores times), and the month after
# (when bills are issued) are real dates: year 1 begins before 0001-01-01 UTC east of Greenwich.
FIRST_YEAR, LAST_YEAR = 2, 9998


def parse_period(text: str) -> date:
    """The first day of the period. Raises PeriodError for anything but a real YYYY-MM."""
    m = _PERIOD.fullmatch(text) if isinstance(text, str) else None
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise PeriodError(f"bad period {text!r}: expected a month written YYYY-MM, e.g. 2020-09")
    if not FIRST_YEAR <= int(m.group(1)) <= LAST_YEAR:
        raise PeriodError(f"bad period {text!r}: it is out of the range that can be billed; expected a month "
                          f"from {FIRST_YEAR:04d}-01 to {LAST_YEAR}-12")
    return date(int(m.group(1)), int(m.group(2)), 1)


def next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def period_of(moment: datetime, time_zone: str) -> str:
    """The period a timezone-aware moment falls in, in the policy's time zone."""
    try:
        local = moment.astimezone(ZoneInfo(time_zone))
    except OverflowError:
        raise PeriodError(f"{moment.isoformat()} is out of the range of dates that can be billed") from None
    if not FIRST_YEAR <= local.year <= LAST_YEAR:
        raise PeriodError(f"{moment.isoformat()} is out of the range of dates that can be billed")
    return f"{local.year:04d}-{local.month:02d}"


def period_bounds(period: str, time_zone: str) -> tuple[datetime, datetime]:
    """[start, end) of a period as aware datetimes in the policy's time zone."""
    first = parse_period(period)
    zone = ZoneInfo(time_zone)
    after = next_month(first)
    return (datetime(first.year, first.month, 1, tzinfo=zone),
            datetime(after.year, after.month, 1, tzinfo=zone))
