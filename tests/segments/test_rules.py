"""The rule language: every field and operator selects the right clients; bad rules name their
node. Ages are computed against a fixed `today` (including birthdays today and tomorrow)."""

import datetime as dt
from decimal import Decimal

import pytest

from clients.models import Client, CurrentScore
from clients.scoring.models import ClientScore, ScoringCurrent, ScoringScheme
from segments.rules import FIELDS, RuleError, rule_compile, rule_validate
from tests.factories import (
    BranchFactory,
    ClientFactory,
    HoldingFactory,
    ProductFactory,
    UserFactory,
)

TODAY = dt.date(2026, 11, 21)


def cond(field, op, value):
    return {"field": field, "op": op, "value": value}


def members(rule, today=TODAY) -> set[str]:
    return set(Client.objects.filter(rule_compile(rule, today=today))
               .values_list("client_no", flat=True))


def born(years_ago: int, days: int = 0) -> dt.date:
    return TODAY.replace(year=TODAY.year - years_ago) + dt.timedelta(days=days)


@pytest.fixture
def ages(db):
    """Clients aged exactly 59/60/69/70 with birthdays today and tomorrow around the edges."""
    return {
        "turns60today": ClientFactory(client_no="turns60today", birth_date=born(60)),
        "turns60tomorrow": ClientFactory(client_no="turns60tomorrow", birth_date=born(60, 1)),
        "turns70today": ClientFactory(client_no="turns70today", birth_date=born(70)),
        "turns70tomorrow": ClientFactory(client_no="turns70tomorrow", birth_date=born(70, 1)),
        "nobirth": ClientFactory(client_no="nobirth", birth_date=None),
    }


def test_age_between_is_inclusive_and_counts_birthdays_today_not_tomorrow(ages):
    assert members(cond("age", "between", [60, 69])) == {"turns60today", "turns70tomorrow"}


@pytest.mark.parametrize(("op", "value", "expected"), [
    ("eq", 60, {"turns60today"}),
    ("ne", 60, {"turns60tomorrow", "turns70today", "turns70tomorrow"}),
    ("gte", 70, {"turns70today"}),
    ("gt", 69, {"turns70today"}),
    ("lt", 60, {"turns60tomorrow"}),
    ("lte", 59, {"turns60tomorrow"}),
    ("in", [59, 70], {"turns60tomorrow", "turns70today"}),
    ("not_in", [59, 70], {"turns60today", "turns70tomorrow"}),
    ("is_null", True, {"nobirth"}),
])
def test_age_operators(ages, op, value, expected):
    assert members(cond("age", op, value)) == expected


def test_age_of_a_leap_day_birthday_in_a_common_year(db):
    ClientFactory(client_no="leap", birth_date=dt.date(2000, 2, 29))
    assert members(cond("age", "eq", 26), today=dt.date(2026, 2, 28)) == set()
    assert members(cond("age", "eq", 26), today=dt.date(2026, 3, 1)) == {"leap"}


def test_the_age_rule_agrees_with_the_model_on_every_day_of_a_year(db):
    births = [dt.date(1960, 1, 1) + dt.timedelta(days=37 * i) for i in range(60)]
    clients = [ClientFactory(birth_date=b) for b in births]
    for today in (dt.date(2026, 1, 1), dt.date(2026, 2, 28), dt.date(2028, 2, 29),
                  dt.date(2026, 12, 31)):
        expected = {c.client_no for c in clients if 60 <= c.age_on(today) <= 65}
        assert members(cond("age", "between", [60, 65]), today=today) == expected


def test_birth_year(db):
    ClientFactory(client_no="y1994", birth_date=dt.date(1994, 12, 31))
    ClientFactory(client_no="y1995", birth_date=dt.date(1995, 1, 1))
    ClientFactory(client_no="y2009", birth_date=dt.date(2009, 12, 31))
    ClientFactory(client_no="y2010", birth_date=dt.date(2010, 1, 1))
    assert members(cond("birth_year", "between", [1995, 2009])) == {"y1995", "y2009"}
    assert members(cond("birth_year", "eq", 1994)) == {"y1994"}
    assert members(cond("birth_year", "gt", 2009)) == {"y2010"}
    assert members(cond("birth_year", "lte", 1995)) == {"y1994", "y1995"}
    assert members(cond("birth_year", "in", [1994, 2010])) == {"y1994", "y2010"}
    assert members(cond("birth_year", "ne", 1994)) == {"y1995", "y2009", "y2010"}


def test_choice_fields_and_blank_is_null(db):
    ClientFactory(client_no="f", gender="F", occupation="homemaker", industry="finance")
    ClientFactory(client_no="m", gender="M", occupation="student", industry="technology")
    ClientFactory(client_no="u", gender="", occupation="", industry="")
    assert members(cond("gender", "eq", "F")) == {"f"}
    assert members(cond("gender", "ne", "F")) == {"m"}
    assert members(cond("gender", "is_null", True)) == {"u"}
    assert members(cond("gender", "is_null", False)) == {"f", "m"}
    assert members(cond("occupation", "in", ["homemaker", "student"])) == {"f", "m"}
    assert members(cond("occupation", "not_in", ["homemaker"])) == {"m"}
    assert members(cond("industry", "eq", "technology")) == {"m"}
    assert members({"not": cond("gender", "eq", "F")}) == {"m", "u"}


def test_risk_level_in_and_order(db):
    for level in ("C1", "C2", "C3", "C5", ""):
        ClientFactory(client_no=f"r{level or 'none'}", risk_level=level)
    assert members(cond("risk_level", "in", ["C1", "C2"])) == {"rC1", "rC2"}
    assert members(cond("risk_level", "lte", "C2")) == {"rC1", "rC2"}
    assert members(cond("risk_level", "gt", "C2")) == {"rC3", "rC5"}
    assert members(cond("risk_level", "lt", "C1")) == set()
    assert members(cond("risk_level", "is_null", True)) == {"rnone"}


def test_booleans_status_investor_type_consent(db):
    ClientFactory(client_no="kids", has_children=True, consent_email=True, status="active",
                  investor_type="professional")
    ClientFactory(client_no="nokids", has_children=False, consent_email=False, status="dormant")
    ClientFactory(client_no="unknown", has_children=None, consent_email=False, status="closed")
    assert members(cond("has_children", "eq", True)) == {"kids"}
    assert members(cond("has_children", "ne", True)) == {"nokids"}
    assert members(cond("has_children", "is_null", True)) == {"unknown"}
    assert members(cond("consent_email", "eq", False)) == {"nokids", "unknown"}
    assert members(cond("status", "in", ["dormant", "closed"])) == {"nokids", "unknown"}
    assert members(cond("investor_type", "eq", "professional")) == {"kids"}


def test_city_branch_rm(db):
    sh, bj = BranchFactory(code="SH01"), BranchFactory(code="BJ01")
    rm = UserFactory(username="rm_x", branch=sh)
    ClientFactory(client_no="a", city="上海市", branch=sh, rm=rm)
    ClientFactory(client_no="b", city="北京", branch=bj, rm=None)
    assert members(cond("city", "contains", "上海")) == {"a"}
    assert members(cond("city", "eq", "北京")) == {"b"}
    assert members(cond("branch", "eq", "SH01")) == {"a"}
    assert members(cond("branch", "not_in", ["SH01"])) == {"b"}
    assert members(cond("branch", "eq", "NOPE")) == set()
    assert members(cond("rm", "eq", "rm_x")) == {"a"}
    assert members(cond("rm", "is_null", True)) == {"b"}


def test_opened_on_and_aum_and_service_level(db):
    ClientFactory(client_no="small", opened_on=dt.date(2020, 1, 1), aum=Decimal("499999.99"))
    ClientFactory(client_no="mid", opened_on=dt.date(2024, 6, 1), aum=Decimal("500000"))
    ClientFactory(client_no="big", opened_on=None, aum=Decimal("5000000"))
    assert members(cond("opened_on", "between", ["2020-01-01", "2023-12-31"])) == {"small"}
    assert members(cond("opened_on", "gt", "2020-01-01")) == {"mid"}
    assert members(cond("opened_on", "is_null", True)) == {"big"}
    assert members(cond("aum", "gte", 500000)) == {"mid", "big"}
    assert members(cond("aum", "between", [0, 500000.5])) == {"small", "mid"}
    assert members(cond("service_level", "eq", "affluent")) == {"mid"}
    assert members(cond("service_level", "in", ["mass", "hnw"])) == {"small", "big"}
    assert members(cond("service_level", "ne", "mass")) == {"mid", "big"}


@pytest.fixture
def scored(db):
    scheme = ScoringScheme.objects.order_by("-version").first()
    out = {}
    for no, tier, (a, f, b) in (("g", "guiding", (2, 5, 3)), ("d", "development", (5, 1, 2)),
                                ("l", "long_tail", (1, 1, 1))):
        client = ClientFactory(client_no=no)
        ClientScore.objects.create(
            client=client, scheme=scheme, as_of=TODAY, amount=0, purchases=0, frequency=0,
            benefit=0, amount_score=a, frequency_score=f, benefit_score=b,
            total_score=a + f + b, tier=tier)
        out[no] = client
    # CurrentScore is a view over the scores of the (as_of, scheme) this pointer names.
    ScoringCurrent.objects.update_or_create(id=1, defaults={"as_of": TODAY, "scheme": scheme})
    assert CurrentScore.objects.count() == 3
    ClientFactory(client_no="never")
    return out


def test_score_fields_use_the_current_score(scored):
    assert members(cond("tier", "eq", "guiding")) == {"g"}
    assert members(cond("tier", "ne", "guiding")) == {"d", "l"}
    assert members(cond("tier", "is_null", True)) == {"never"}
    assert members(cond("total_score", "gte", 8)) == {"g", "d"}
    assert members(cond("amount_score", "gte", 4)) == {"d"}
    assert members(cond("frequency_score", "eq", 5)) == {"g"}
    assert members(cond("benefit_score", "between", [2, 3])) == {"g", "d"}
    assert members({"not": cond("tier", "eq", "guiding")}) == {"d", "l", "never"}


def test_holdings_count_only_the_clients_latest_snapshot(db):
    bond = ProductFactory(product_code="BOND", product_type="fixed_income")
    fund = ProductFactory(product_code="FUND", product_type="fund")
    now_bond, sold_bond, none = (ClientFactory(client_no=n) for n in ("now", "sold", "none"))
    HoldingFactory(client=now_bond, product=bond, as_of=dt.date(2026, 10, 31))
    HoldingFactory(client=sold_bond, product=bond, as_of=dt.date(2026, 9, 30))
    HoldingFactory(client=sold_bond, product=fund, as_of=dt.date(2026, 10, 31))
    assert none.holdings.count() == 0
    assert members(cond("holds_product_type", "eq", "fixed_income")) == {"now"}
    assert members(cond("holds_product_type", "ne", "fixed_income")) == {"sold", "none"}
    assert members(cond("holds_product_type", "in", ["fund", "stock"])) == {"sold"}
    assert members(cond("holds_product", "eq", "FUND")) == {"sold"}
    assert members(cond("holds_product", "not_in", ["BOND"])) == {"sold", "none"}
    assert members(cond("holds_product_type", "eq", "private_fund")) == set()
    assert members(cond("holds_product_type", "ne", "private_fund")) == {"now", "sold", "none"}


def test_days_since_last_purchase(db):
    ClientFactory(client_no="d90", last_purchase_on=TODAY - dt.timedelta(days=90))
    ClientFactory(client_no="d91", last_purchase_on=TODAY - dt.timedelta(days=91))
    ClientFactory(client_no="never", last_purchase_on=None)
    assert members(cond("days_since_last_purchase", "gt", 90)) == {"d91"}
    assert members(cond("days_since_last_purchase", "gte", 90)) == {"d90", "d91"}
    assert members(cond("days_since_last_purchase", "lte", 90)) == {"d90"}
    assert members(cond("days_since_last_purchase", "eq", 91)) == {"d91"}
    assert members(cond("days_since_last_purchase", "is_null", True)) == {"never"}
    assert members(cond("days_since_last_purchase", "between", [0, 90])) == {"d90"}


def test_segment_membership_field(db):
    from segments.models import Segment, SegmentMembership

    a = ClientFactory(client_no="a")
    ClientFactory(client_no="b")
    seg = Segment.objects.create(code="vip", kind="static", name_en="VIP")
    SegmentMembership.objects.create(segment=seg, client=a)
    assert members(cond("segment", "eq", "vip")) == {"a"}
    assert members(cond("segment", "ne", "vip")) == {"b"}


def test_the_example_of_the_issue_selects_exactly_the_expected_clients(db):
    bond = ProductFactory(product_code="BOND", product_type="fixed_income")
    stock = ProductFactory(product_code="STK", product_type="stock")
    old = TODAY - dt.timedelta(days=120)
    recent = TODAY - dt.timedelta(days=10)

    def make(no, *, age=65, risk="C2", product=bond, last=old):
        client = ClientFactory(client_no=no, birth_date=born(age), risk_level=risk,
                               last_purchase_on=last)
        if product is not None:
            HoldingFactory(client=client, product=product, as_of=dt.date(2026, 10, 31))
        return client

    make("yes_c2_old")
    make("yes_c1_never", risk="C1", last=None)
    make("yes_69", age=69)
    make("no_70", age=70)
    make("no_59", age=59)
    make("no_c3", risk="C3")
    make("no_recent", last=recent)
    make("no_stock_only", product=stock)
    make("no_holdings", product=None)
    rule = {"all": [cond("age", "between", [60, 69]), cond("risk_level", "in", ["C1", "C2"]),
                    cond("holds_product_type", "eq", "fixed_income"),
                    {"any": [cond("days_since_last_purchase", "gt", 90),
                             cond("days_since_last_purchase", "is_null", True)]}]}
    assert members(rule) == {"yes_c2_old", "yes_c1_never", "yes_69"}


def test_every_field_compiles_with_each_of_its_operators(db):
    ClientFactory()
    samples = {"integer": 3, "number": 1000, "boolean": True, "date": "2026-01-01",
               "string": "x"}
    for spec in FIELDS.values():
        for op in spec.ops:
            scalar = spec.choices[0] if spec.choices else samples[spec.type]
            if spec.type == "integer" and spec.minimum is not None:
                scalar = max(int(spec.minimum), 3) if spec.maximum is None or \
                    spec.maximum >= 3 else int(spec.minimum)
            if spec.name == "segment":
                scalar = "silver_haired"
            value = {"is_null": True, "between": [scalar, scalar], "in": [scalar],
                     "not_in": [scalar]}.get(op, scalar)
            members(cond(spec.name, op, value))  # compiles and runs


@pytest.mark.parametrize(("rule", "node"), [
    ("age", "/"),
    ({}, "/"),
    ({"all": []}, "/all"),
    ({"any": "x"}, "/any"),
    ({"all": [cond("age", "gt", 1), cond("nope", "eq", 1)]}, "/all/1/field"),
    ({"all": [cond("age", "contains", "1")]}, "/all/0/op"),
    ({"all": [cond("age", "gt", "60")]}, "/all/0/value"),
    (cond("age", "gt", True), "/value"),
    (cond("age", "gt", 60.5), "/value"),
    (cond("gender", "eq", "X"), "/value"),
    (cond("occupation", "in", ["student", "astronaut"]), "/value/1"),
    (cond("occupation", "in", []), "/value"),
    (cond("occupation", "in", ["student"] * 1001), "/value"),
    (cond("age", "between", [69, 60]), "/value"),
    (cond("age", "between", [60]), "/value"),
    (cond("opened_on", "gt", "2026-13-01"), "/value"),
    (cond("opened_on", "gt", "21/11/2026"), "/value"),
    (cond("has_children", "eq", 1), "/value"),
    (cond("city", "eq", 5), "/value"),
    (cond("city", "eq", "a\x00b"), "/value"),
    (cond("age", "is_null", "yes"), "/value"),
    ({"field": "age", "op": "gt"}, "/"),
    ({"field": "age", "op": "gt", "value": 1, "extra": 1}, "/"),
    ({"all": [cond("age", "gt", 1)], "any": []}, "/"),
    ({"not": {"not": {"all": [{"any": ["x"]}]}}}, "/not/not/all/0/any/0"),
    (cond("segment", "eq", "no_such_segment"), "/value"),
])
def test_invalid_rules_name_the_offending_node(db, rule, node):
    with pytest.raises(RuleError) as err:
        rule_validate(rule)
    assert err.value.node == node
    assert err.value.code == "invalid_rule"
    assert err.value.message


def test_nesting_and_size_limits(db):
    deep = cond("age", "gt", 1)
    for _ in range(10):
        deep = {"not": deep}
    with pytest.raises(RuleError) as err:
        rule_validate(deep)
    assert err.value.node == "/not" * 10
    rule_validate({"not": {"not": cond("age", "gt", 1)}})
    with pytest.raises(RuleError) as err:
        rule_validate({"all": [cond("age", "gt", 1)] * 200})
    assert err.value.node == "/all/199"
