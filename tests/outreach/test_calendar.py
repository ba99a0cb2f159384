"""The trading calendar (outreach.calendar): weekdays that are not official holidays, never
weekends (not even 调休 working Saturdays and Sundays), admin corrections winning, and the API
GET /api/v1/calendar/trading-days/."""

import datetime as dt

import pytest
from rest_framework.test import APIClient

from core.models import AuditLog
from outreach.calendar import calendar_known, is_trading_day, trading_day_after, trading_days
from outreach.models import TradingDayOverride
from outreach.services import trading_day_override_delete, trading_day_override_set
from tests.clients.test_api import assert_error

D = dt.date


@pytest.mark.parametrize("day, trading", [
    (D(2026, 12, 1), True),    # an ordinary Tuesday
    (D(2026, 12, 5), False),   # Saturday
    (D(2026, 1, 1), False),    # New Year's Day, a Thursday
    (D(2026, 10, 1), False),   # National Day, a Thursday
    (D(2026, 10, 7), False),   # the last day of the National Day holiday, a Wednesday
    (D(2026, 10, 8), True),    # the Thursday after
    (D(2026, 2, 16), False),   # Spring Festival holiday, a Monday
    (D(2026, 9, 25), False),   # Mid-Autumn Festival, a Friday
])
def test_trading_days_follow_the_official_holidays_and_skip_every_weekend(db, day, trading):
    assert is_trading_day(day) is trading


def test_a_weekend_working_day_is_not_a_trading_day(db):
    import chinese_calendar

    # the official schedule's 调休 days in 2026: weekend days people work; exchanges stay shut
    shifted = [day for day in (D(2026, 1, 1) + dt.timedelta(days=i) for i in range(365))
               if day.weekday() >= 5 and chinese_calendar.is_workday(day)]
    assert shifted, "the 2026 schedule has weekend working days"
    assert not any(is_trading_day(day) for day in shifted)


def test_delays_count_trading_days_across_a_holiday(db):
    assert trading_day_after(D(2026, 9, 30), 1) == D(2026, 10, 8)  # across National Day
    assert trading_day_after(D(2026, 9, 30), 0) == D(2026, 9, 30)
    assert trading_day_after(D(2026, 10, 3), 0) == D(2026, 10, 8)
    assert trading_day_after(D(2026, 12, 4), 1) == D(2026, 12, 7)  # Friday -> Monday
    assert trading_day_after(D(2026, 12, 1), 5) == D(2026, 12, 8)
    with pytest.raises(ValueError):
        trading_day_after(D(2026, 12, 1), -1)


def test_an_admin_correction_wins_and_is_audited(db, admin_user_):
    trading_day_override_set(day=D(2026, 12, 1), is_trading_day=False,
                             note="exchange systems upgrade", actor=admin_user_)
    assert not is_trading_day(D(2026, 12, 1))
    assert trading_day_after(D(2026, 11, 30), 1) == D(2026, 12, 2)
    row = AuditLog.objects.get(object_type="trading_day", object_id="2026-12-01")
    assert row.action == "settings_changed" and row.actor == admin_user_
    assert row.detail == {"trading_day": False, "note": "exchange systems upgrade"}
    trading_day_override_delete(override=TradingDayOverride.objects.get(day=D(2026, 12, 1)),
                                actor=admin_user_)
    assert is_trading_day(D(2026, 12, 1))
    assert AuditLog.objects.filter(object_type="trading_day").count() == 2


def test_a_year_without_a_published_schedule_counts_weekdays_until_corrected(db):
    far = D(2099, 1, 1)  # no library knows 2099's holidays
    assert not calendar_known(far) and calendar_known(D(2026, 6, 1))
    assert is_trading_day(far) is (far.weekday() < 5)
    trading_day_override_set(day=far, is_trading_day=False, note="New Year's Day")
    assert not is_trading_day(far)


def test_trading_days_in_a_range_use_one_query(db, django_assert_num_queries):
    trading_day_override_set(day=D(2026, 12, 2), is_trading_day=False)
    with django_assert_num_queries(1):
        days = trading_days(D(2026, 11, 30), D(2026, 12, 6))
    assert days == [D(2026, 11, 30), D(2026, 12, 1), D(2026, 12, 3), D(2026, 12, 4)]


# API ---------------------------------------------------------------------------------------

def api_as(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def test_the_api_lists_the_trading_days_of_a_range(rm_a):
    body = api_as(rm_a).get("/api/v1/calendar/trading-days/",
                            {"from": "2026-09-28", "to": "2026-10-09"}).json()
    assert body == {"from": "2026-09-28", "to": "2026-10-09", "count": 5,
                    "trading_days": ["2026-09-28", "2026-09-29", "2026-09-30", "2026-10-08",
                                     "2026-10-09"],
                    "official_schedule_known": True}
    later = api_as(rm_a).get("/api/v1/calendar/trading-days/",
                             {"from": "2026-12-28", "to": "2027-01-08"}).json()
    assert later["official_schedule_known"] is False  # 2027 is not published in the library


@pytest.mark.parametrize("params, field", [
    ({}, "from"),
    ({"from": "2026-12-01"}, "to"),
    ({"from": "yesterday", "to": "2026-12-01"}, "from"),
    ({"from": "2026-12-01", "to": "2026-11-01"}, "to"),
    ({"from": "2026-01-01", "to": "2030-01-01"}, "to"),
    ({"from": "0001-01-01", "to": "2026-01-01"}, "from"),
    ({"from": "2026-02-30", "to": "2026-03-01"}, "from"),
])
def test_bad_ranges_are_a_400_naming_the_field(rm_a, params, field):
    response = api_as(rm_a).get("/api/v1/calendar/trading-days/", params)
    body = assert_error(response, 400)
    assert field in body["error"]["fields"], body


def test_the_calendar_needs_a_login(db):
    assert_error(APIClient().get("/api/v1/calendar/trading-days/",
                                 {"from": "2026-12-01", "to": "2026-12-31"}), 401)


def test_the_admin_corrects_a_day_through_the_audited_service(logged_in, admin_user_):
    web = logged_in(admin_user_)
    response = web.post("/admin/outreach/tradingdayoverride/add/",
                        {"day": "2026-12-03", "is_trading_day": "", "note": "typhoon closure"})
    assert response.status_code == 302, response.content[:500]
    row = TradingDayOverride.objects.get(day=D(2026, 12, 3))
    assert row.changed_by == admin_user_ and not is_trading_day(D(2026, 12, 3))
    assert AuditLog.objects.filter(object_type="trading_day", object_id="2026-12-03",
                                   actor=admin_user_).count() == 1
    listing = web.get("/admin/outreach/tradingdayoverride/")
    assert listing.status_code == 200 and "typhoon closure" in listing.content.decode()


def test_the_demo_enters_new_years_day_of_the_first_unpublished_year_once(db):
    from outreach.demo import demo_extend

    demo_extend(log=lambda _line: None)
    demo_extend(log=lambda _line: None)
    row = TradingDayOverride.objects.get()
    assert (row.day.month, row.day.day) == (1, 1) and not row.is_trading_day
    assert not calendar_known(row.day) and row.day.year > dt.date.today().year
