"""Demo data of the outreach app: a trading-calendar correction, so the admin page is not empty.

The published holiday schedule (chinese_calendar) ends with 2026; New Year's Day is a public
holiday every year, so the demo enters 1 January of the next unknown year as an admin would
until the State Council's schedule arrives. Called by `demo_setup` (every app's
`demo.demo_extend`); run again, it adds nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from .calendar import calendar_known
from .models import TradingDayOverride
from .services import trading_day_override_set


def demo_extend(*, log: Callable[[str], None] = print) -> None:
    year = dt.date.today().year + 1
    while calendar_known(dt.date(year, 1, 1)):
        year += 1
    day = dt.date(year, 1, 1)
    if TradingDayOverride.objects.filter(day=day).exists():
        return
    trading_day_override_set(day=day, is_trading_day=False,
                             note=f"元旦 / New Year's Day {year} (schedule not yet in the library)")
    log(f"outreach: trading calendar correction for {day.isoformat()}")
