"""Demo data of the outreach app: RM tasks (open, overdue and done ones in the books of `rm` and
`rm2`, each with a demo origin, so a rerun adds nothing) and a trading-calendar correction, so
the admin page is not empty.

The published holiday schedule (chinese_calendar) ends with 2026; New Year's Day is a public
holiday every year, so the demo enters 1 January of the next unknown year as an admin would
until the State Council's schedule arrives. Called by `demo_setup` (every app's
`demo.demo_extend`); run again, it adds nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from datetime import timedelta

from django.utils import timezone

from clients.models import Client
from core.models import User

from .calendar import calendar_known
from .models import RMTask, TaskOutcome, TaskSource, TaskStatus, TradingDayOverride
from .services import trading_day_override_set

DEMO_ORIGIN = "demo"
# title, days until due (negative: overdue), the outcome of a done one ("" = still open): the
# branch manager's completion and conversion then have something to show.
_TASKS = [
    ("到期提醒：国债逆回购到期，联系客户再投资", 3, ""),
    ("风险测评即将过期，请邀请客户重新测评", -5, ""),
    ("回访：上月新开户客户首次入金情况", -12, ""),
    ("季度资产检视：准备持仓报告", 10, ""),
    ("生日问候电话", 0, TaskOutcome.REACHED),
    ("确认客户对新发基金的认购意向", -2, TaskOutcome.BOUGHT),
    ("新发基金认购意向回访", -6, TaskOutcome.INTERESTED),
    ("稳健理财到期续作沟通", -9, TaskOutcome.BOUGHT),
]


def demo_extend(*, log: Callable[[str], None] = print) -> None:
    _tasks(log)
    _calendar(log)


def _calendar(log: Callable[[str], None]) -> None:
    year = dt.date.today().year + 1
    while calendar_known(dt.date(year, 1, 1)):
        year += 1
    day = dt.date(year, 1, 1)
    if TradingDayOverride.objects.filter(day=day).exists():
        return
    trading_day_override_set(day=day, is_trading_day=False,
                             note=f"元旦 / New Year's Day {year} (schedule not yet in the library)")
    log(f"outreach: trading calendar correction for {day.isoformat()}")


def _tasks(log: Callable[[str], None]) -> None:
    today = timezone.localdate()
    now = timezone.now()
    made = 0
    for rm in User.objects.filter(username__in=("rm", "rm2")).order_by("username"):
        clients = list(Client.objects.filter(rm=rm).order_by("-aum")[:len(_TASKS)])
        for client, (title, due_in, outcome) in zip(clients, _TASKS, strict=False):
            # A done task was done on its due day (or today, for one due later).
            done_at = now + timedelta(days=min(due_in, 0))
            _, created = RMTask.objects.get_or_create(
                origin_type=DEMO_ORIGIN, origin_id=f"{rm.username}-{client.client_no}",
                defaults={"client": client, "assignee": rm, "source": TaskSource.MANUAL,
                          "title": title, "due_on": today + timedelta(days=due_in),
                          "status": TaskStatus.DONE if outcome else TaskStatus.OPEN,
                          "done_at": done_at if outcome else None, "outcome": outcome,
                          "outcome_at": done_at if outcome else None})
            made += created
    if made:
        log(f"Created {made} demo RM tasks.")
