"""Fixtures of the segments tests: token API clients and a runner for queued refreshes."""

import pytest
from rest_framework.test import APIClient


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
def refreshed(django_capture_on_commit_callbacks):
    """`refreshed(segment)` -> the succeeded SegmentRefresh of a refresh run eagerly now."""
    from segments.services import segment_refresh_start

    def _refresh(segment, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            refresh = segment_refresh_start(segment=segment, trigger="page", **kwargs)
        refresh.refresh_from_db()
        segment.refresh_from_db()
        return refresh

    return _refresh
