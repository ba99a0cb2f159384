"""The trading calendar of the Shanghai and Shenzhen exchanges (shared/DOMAIN.md "Trading
calendar"): they trade on weekdays that are not public holidays, and never on weekends, not
even on the weekend days that are official working days (调休).

The official holiday schedule comes from `chinese_calendar` (the State Council's schedule,
published each year for the next; the library knows the years it has been updated for). An
admin's `TradingDayOverride` for a day wins over it. For a year the library does not know
yet, weekdays count as trading days until an admin enters the closures: `calendar_known`
says whether a day is covered, and the API and admin say so.
"""

from __future__ import annotations

import datetime as dt

import chinese_calendar

from .models import TradingDayOverride

MAX_RANGE_DAYS = 3 * 366  # one request, one answer of at most three years


def calendar_known(day: dt.date) -> bool:
    """Whether the official holiday schedule of `day`'s year is known."""
    try:
        chinese_calendar.is_holiday(day)
    except NotImplementedError:
        return False
    return True


def _official_trading_day(day: dt.date) -> bool:
    if day.weekday() >= 5:
        return False
    try:
        return not chinese_calendar.is_holiday(day)
    except NotImplementedError:  # a year not published yet: weekdays, until an admin corrects
        return True


def _overrides(start: dt.date, end: dt.date) -> dict[dt.date, bool]:
    return dict(TradingDayOverride.objects.filter(day__gte=start, day__lte=end)
                .values_list("day", "is_trading_day"))


def trading_days(start: dt.date, end: dt.date) -> list[dt.date]:
    """The trading days from `start` to `end`, both included (one query)."""
    overrides = _overrides(start, end)
    days, day = [], start
    while day <= end:
        if overrides[day] if day in overrides else _official_trading_day(day):
            days.append(day)
        day += dt.timedelta(days=1)
    return days


def is_trading_day(day: dt.date) -> bool:
    return trading_days(day, day) == [day]


def trading_day_after(day: dt.date, count: int) -> dt.date:
    """The `count`-th trading day after `day` (count 0: `day` itself if it is a trading day,
    else the next one). Campaign step delays count this way."""
    if count < 0:
        raise ValueError("count must be 0 or more")
    window = 2 * count + 30  # even the Spring Festival closes fewer than 10 weekdays in a row
    while True:
        days = trading_days(day + dt.timedelta(days=1 if count else 0),
                            day + dt.timedelta(days=window))
        if len(days) > max(count - 1, 0):
            return days[max(count - 1, 0)]
        window *= 2


# The holidays a greeting follows (shared/DOMAIN.md "Scenarios": holiday).
GREETING_HOLIDAYS = (chinese_calendar.Holiday.spring_festival.value,
                     chinese_calendar.Holiday.mid_autumn_festival.value,
                     chinese_calendar.Holiday.national_day.value)


def greeting_holiday_ahead(day: dt.date) -> str | None:
    """The greeting holiday (Spring Festival, Mid-Autumn, National Day) that falls between
    `day` and the next trading day -- so `day` is the last trading day before it -- by the
    official schedule; None otherwise, or when the year's schedule is not published."""
    following = trading_day_after(day, 1)
    current = day + dt.timedelta(days=1)
    while current < following:
        try:
            on_holiday, name = chinese_calendar.get_holiday_detail(current)
        except NotImplementedError:
            return None
        if on_holiday and name in GREETING_HOLIDAYS:
            return name
        current += dt.timedelta(days=1)
    return None
