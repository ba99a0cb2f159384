"""Fixtures for the clients tests: API clients authenticated by token, products."""

import pytest
from rest_framework.test import APIClient

from core.services import api_token_issue
from tests.factories import ProductFactory


@pytest.fixture
def api_as():
    """`api_as(user)` -> DRF APIClient sending `Authorization: Token <key>` for user."""

    def _as(user) -> APIClient:
        from rest_framework.authtoken.models import Token

        token, _ = Token.objects.get_or_create(user=user)
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return api

    return _as


@pytest.fixture
def core_system(db):
    """An internal system's service account with the ops role, as issue_api_token makes it."""
    token = api_token_issue(username="core-system", role="ops")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    api.user = token.user
    return api


@pytest.fixture
def product(db):
    return ProductFactory(product_code="F000001", name="稳健债券1号", product_type="fixed_income",
                          risk_level="R2")


@pytest.fixture
def other_product(db):
    return ProductFactory(product_code="F000002", name="货币基金A", product_type="money_market",
                          risk_level="R1")
