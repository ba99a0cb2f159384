"""The one suitability check (clients/suitability.py): every C x R pair, lapsed assessments."""

import datetime as dt

import pytest

from clients.suitability import suitability_check, suitable_products
from tests.factories import ClientFactory, ProductFactory

TODAY = dt.date(2026, 11, 20)
CLIENT_LEVELS = ["C1", "C2", "C3", "C4", "C5"]
PRODUCT_LEVELS = ["R1", "R2", "R3", "R4", "R5"]


def a_client(level="C3", expires=TODAY + dt.timedelta(days=30), investor_type="ordinary"):
    return ClientFactory.build(risk_level=level, risk_expires_on=expires,
                               investor_type=investor_type)


def a_product(level):
    return ProductFactory.build(risk_level=level)


@pytest.mark.parametrize("client_level", CLIENT_LEVELS)
@pytest.mark.parametrize("product_level", PRODUCT_LEVELS)
def test_a_product_is_suitable_exactly_when_its_level_does_not_exceed_the_clients(
        client_level, product_level):
    ok, reason = suitability_check(client=a_client(client_level), product=a_product(product_level),
                                   today=TODAY)
    expected = int(product_level[1]) <= int(client_level[1])
    assert ok is expected
    assert reason == ("" if expected else "above_risk_level")


def test_c1_never_gets_more_than_r1():
    allowed, skipped = suitable_products(client=a_client("C1"),
                                         products=[a_product(r) for r in PRODUCT_LEVELS],
                                         today=TODAY)
    assert [p.risk_level for p in allowed] == ["R1"]
    assert [(p.risk_level, reason) for p, reason in skipped] == [
        ("R2", "above_risk_level"), ("R3", "above_risk_level"), ("R4", "above_risk_level"),
        ("R5", "above_risk_level")]


@pytest.mark.parametrize("product_level", PRODUCT_LEVELS)
def test_an_expired_assessment_allows_nothing_not_even_r1(product_level):
    client = a_client("C5", expires=TODAY - dt.timedelta(days=1))
    assert suitability_check(client=client, product=a_product(product_level), today=TODAY) == (
        False, "assessment_expired")


def test_an_assessment_expiring_today_is_still_valid():
    client = a_client("C2", expires=TODAY)
    assert suitability_check(client=client, product=a_product("R2"), today=TODAY) == (True, "")


@pytest.mark.parametrize("level, expires", [("", TODAY + dt.timedelta(days=30)), ("C4", None)])
def test_a_missing_assessment_allows_nothing(level, expires):
    client = a_client(level, expires=expires)
    for product_level in PRODUCT_LEVELS:
        assert suitability_check(client=client, product=a_product(product_level),
                                 today=TODAY) == (False, "assessment_missing")


def test_professional_investors_are_held_to_their_own_level_too():
    client = a_client("C3", investor_type="professional")
    assert suitability_check(client=client, product=a_product("R3"), today=TODAY)[0] is True
    assert suitability_check(client=client, product=a_product("R4"), today=TODAY) == (
        False, "above_risk_level")
    expired = a_client("C5", expires=TODAY - dt.timedelta(days=1), investor_type="professional")
    assert suitability_check(client=expired, product=a_product("R1"), today=TODAY) == (
        False, "assessment_expired")


def test_today_defaults_to_the_local_date():
    client = ClientFactory.build(risk_level="C2")  # the factory's assessment is current
    assert suitability_check(client=client, product=a_product("R2")) == (True, "")
