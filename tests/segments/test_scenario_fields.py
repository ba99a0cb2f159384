"""The rule fields added for scenarios (API.md "Scenario data") on fixed dates around the
trading calendar: the National Day closure of 2026 (1–7 October) and the 调休 Saturday
10 October 2026, a working day on which the exchanges stay closed."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from clients.models import CashFlow, Client
from segments.rules import inflow_window_start, rule_compile, trading_day_ahead
from tests.factories import ClientFactory, HoldingFactory, ProductFactory, TransactionFactory


def cond(field, op, value):
    return {"field": field, "op": op, "value": value}


def members(rule, today) -> set[str]:
    return set(Client.objects.filter(rule_compile(rule, today=today))
               .values_list("client_no", flat=True))


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour)))


def deposit(client, day, amount, *, kind="deposit"):
    return CashFlow.objects.create(flow_id=f"F{CashFlow.objects.count() + 1:06d}",
                                   client=client, at=at(day),
                                   amount=Decimal(amount), kind=kind)


def test_the_five_trading_days_skip_the_holiday_and_the_working_saturday(db):
    # Before Tuesday 13 October: 12 (Mon), 9 (Fri), 8 (Thu), then the holiday and the 调休
    # Saturday 10 October are skipped, then 30 and 29 September.
    assert inflow_window_start(dt.date(2026, 10, 13)) == dt.date(2026, 9, 29)
    assert trading_day_ahead(dt.date(2026, 9, 30), 1) == dt.date(2026, 10, 8)
    assert trading_day_ahead(dt.date(2026, 10, 9), 1) == dt.date(2026, 10, 12)


def test_inflow_5d_sums_deposits_of_the_window_only(db):
    today = dt.date(2026, 10, 13)
    big = ClientFactory(client_no="big", aum=Decimal("1000000"))
    deposit(big, dt.date(2026, 9, 29), "60000")
    deposit(big, dt.date(2026, 10, 10), "40000")  # a Saturday inside the window counts
    early = ClientFactory(client_no="early", aum=Decimal("1000000"))
    deposit(early, dt.date(2026, 9, 28), "500000")  # the day before the window
    deposit(early, dt.date(2026, 10, 12), "99999.99")
    withdrew = ClientFactory(client_no="withdrew", aum=Decimal("1000000"))
    deposit(withdrew, dt.date(2026, 10, 12), "150000")
    deposit(withdrew, dt.date(2026, 10, 12), "-150000", kind="withdrawal")
    ClientFactory(client_no="none", aum=Decimal("0"))

    assert members(cond("inflow_5d", "gte", 100000), today) == {"big", "withdrew"}
    assert members(cond("inflow_5d", "lt", 100000), today) == {"early", "none"}
    assert members(cond("inflow_5d", "lte", 0), today) == {"none"}
    assert members(cond("inflow_5d", "between", [0, 99999.99]), today) == {"early", "none"}
    assert members(cond("inflow_5d", "gt", 0), today) == {"big", "early", "withdrew"}


def test_inflow_as_a_share_of_aum(db):
    today = dt.date(2026, 10, 13)
    small = ClientFactory(client_no="small", aum=Decimal("20000"))
    deposit(small, dt.date(2026, 10, 12), "6000")  # exactly 30 %
    rich = ClientFactory(client_no="rich", aum=Decimal("10000000"))
    deposit(rich, dt.date(2026, 10, 12), "200000")  # 2 %
    empty = ClientFactory(client_no="empty", aum=Decimal("0"))
    deposit(empty, dt.date(2026, 10, 12), "100")
    assert members(cond("inflow_5d_pct_aum", "gte", 30), today) == {"small", "empty"}
    assert members(cond("inflow_5d_pct_aum", "gt", 30), today) == {"empty"}


def test_days_to_maturity_counts_trading_days_to_the_nearest_maturity(db):
    today = dt.date(2026, 9, 30)
    # The 10th trading day after 30 September 2026 is 21 October (21 calendar days away).
    assert trading_day_ahead(today, 10) == dt.date(2026, 10, 21)
    bond = ProductFactory(product_code="BOND", maturity_date=dt.date(2026, 10, 21))
    later = ProductFactory(product_code="LATER", maturity_date=dt.date(2026, 10, 22))
    open_ended = ProductFactory(product_code="FUND", product_type="fund")
    in_ten = ClientFactory(client_no="in_ten")
    HoldingFactory(client=in_ten, product=bond, as_of=today)
    in_eleven = ClientFactory(client_no="in_eleven")
    HoldingFactory(client=in_eleven, product=later, as_of=today)
    # The position's own maturity wins over the product's.
    own = ClientFactory(client_no="own")
    HoldingFactory(client=own, product=later, as_of=today, maturity_date=dt.date(2026, 10, 8))
    # Only the latest snapshot counts: the bond was sold before the latest one.
    sold = ClientFactory(client_no="sold")
    HoldingFactory(client=sold, product=bond, as_of=today - dt.timedelta(days=30))
    HoldingFactory(client=sold, product=open_ended, as_of=today)
    matured = ClientFactory(client_no="matured")
    HoldingFactory(client=matured, product=ProductFactory(
        product_code="OLD", maturity_date=dt.date(2026, 9, 29)), as_of=today)

    assert members(cond("days_to_maturity", "lte", 10), today) == {"in_ten", "own"}
    assert members(cond("days_to_maturity", "eq", 1), today) == {"own"}
    assert members(cond("days_to_maturity", "gte", 2), today) == {"in_ten", "in_eleven"}
    assert members(cond("days_to_maturity", "between", [10, 11]), today) == {
        "in_ten", "in_eleven"}
    assert members(cond("days_to_maturity", "is_null", True), today) == {"sold", "matured"}


def test_days_to_maturity_is_the_nearest_one(db):
    today = dt.date(2026, 9, 30)
    both = ClientFactory(client_no="both")
    HoldingFactory(client=both, product=ProductFactory(
        product_code="SOON", maturity_date=dt.date(2026, 10, 9)), as_of=today)
    HoldingFactory(client=both, product=ProductFactory(
        product_code="FAR", maturity_date=dt.date(2027, 1, 4)), as_of=today)
    assert members(cond("days_to_maturity", "eq", 2), today) == {"both"}
    assert members(cond("days_to_maturity", "gt", 2), today) == set()


def test_days_since_opened_funded_and_risk_expiry(db):
    today = dt.date(2026, 11, 21)
    ClientFactory(client_no="new", opened_on=today - dt.timedelta(days=30),
                  first_funded_on=None, risk_expires_on=today - dt.timedelta(days=1))
    ClientFactory(client_no="old", opened_on=today - dt.timedelta(days=31),
                  first_funded_on=today - dt.timedelta(days=20),
                  risk_expires_on=today + dt.timedelta(days=30))
    ClientFactory(client_no="unknown", opened_on=None, first_funded_on=None,
                  risk_expires_on=today + dt.timedelta(days=31))
    assert members(cond("days_since_opened", "lte", 30), today) == {"new"}
    assert members(cond("days_since_opened", "gte", 31), today) == {"old"}
    assert members(cond("days_since_opened", "is_null", True), today) == {"unknown"}
    assert members(cond("funded", "eq", False), today) == {"new", "unknown"}
    assert members(cond("funded", "ne", False), today) == {"old"}
    assert members(cond("days_to_risk_expiry", "lte", 30), today) == {"new", "old"}
    assert members(cond("days_to_risk_expiry", "lt", 0), today) == {"new"}
    assert members(cond("days_to_risk_expiry", "between", [0, 31]), today) == {
        "old", "unknown"}


@pytest.mark.parametrize(("today", "birth", "days"), [
    (dt.date(2026, 12, 28), dt.date(1980, 1, 2), 5),      # across the new year
    (dt.date(2026, 3, 1), dt.date(1980, 3, 1), 0),        # the day itself
    (dt.date(2026, 3, 2), dt.date(1980, 3, 1), 364),      # just missed
    (dt.date(2027, 2, 25), dt.date(1988, 2, 29), 3),      # 29 February: the 28th in 2027
    (dt.date(2028, 2, 25), dt.date(1988, 2, 29), 4),      # and the 29th in a leap year
])
def test_days_to_birthday(db, today, birth, days):
    ClientFactory(client_no="c", birth_date=birth)
    ClientFactory(client_no="nobody", birth_date=None)
    assert members(cond("days_to_birthday", "eq", days), today) == {"c"}
    assert members(cond("days_to_birthday", "ne", days), today) == set()
    assert members(cond("days_to_birthday", "lte", days), today) == {"c"}
    if days:
        assert members(cond("days_to_birthday", "lt", days), today) == set()


def test_purchases_total_counts_every_purchase(db):
    today = dt.date(2026, 11, 21)
    never = ClientFactory(client_no="never", last_purchase_on=None)
    once = ClientFactory(client_no="once", last_purchase_on=today)
    thrice = ClientFactory(client_no="thrice", last_purchase_on=today)
    TransactionFactory(client=once)
    for _ in range(3):
        TransactionFactory(client=thrice)
    assert never and members(cond("purchases_total", "eq", 0), today) == {"never"}
    assert members(cond("purchases_total", "eq", 1), today) == {"once"}
    assert members(cond("purchases_total", "gte", 2), today) == {"thrice"}
    assert members(cond("purchases_total", "between", [1, 3]), today) == {"once", "thrice"}
    assert members(cond("purchases_total", "lt", 3), today) == {"never", "once"}
    assert members(cond("purchases_total", "ne", 1), today) == {"never", "thrice"}
