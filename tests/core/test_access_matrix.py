"""The access matrix, generated from the URL configuration.

Every route that takes a `client_no` is client-scoped: RM A asking for any of RM B's clients gets
a 404 (a write: 403/404 and nothing changes). Every list route without arguments shows none of
B's rows to A. A new route is covered the day it is added.
"""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from clients.models import Client, Interaction
from core.models import AuditAction, AuditLog

SKIP_PREFIXES = ("admin/", "api/schema", "api/docs", "i18n/", "accounts/logout")


def _walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p


def _routes():
    for route, pattern in _walk(get_resolver().url_patterns):
        if route.startswith(SKIP_PREFIXES):
            continue
        yield route, pattern


def _fill(route: str, client_no: str) -> str | None:
    """Turn a route into a path for client `client_no`; None if it takes other arguments."""
    import re

    path = route.replace("<str:client_no>", client_no).replace("<client_no>", client_no)
    path = path.replace("^", "").replace("$", "")
    if re.search(r"<[^>]+>|\(\?P", path):
        return None
    return "/" + path


def client_scoped_routes():
    return sorted({r for r, _ in _routes() if "client_no" in r})


def list_routes():
    return sorted({r for r, _ in _routes() if "<" not in r and "(?P" not in r})


def test_the_matrix_found_the_client_routes():
    routes = client_scoped_routes()
    assert any(r.startswith("clients/") for r in routes), routes
    assert any(r.startswith("api/v1/clients/") for r in routes), routes


@pytest.mark.parametrize("route", client_scoped_routes())
def test_rm_a_gets_404_for_each_of_rm_bs_clients(route, logged_in, rm_a, clients_of_b, client_of_a):
    http = logged_in(rm_a)
    before = (Client.objects.count(), Interaction.objects.count(),
              list(Client.objects.order_by("pk").values()))
    for other in clients_of_b:
        path = _fill(route, other.client_no)
        assert path is not None
        response = http.get(path)
        assert response.status_code == 404, (path, response.status_code)
        assert other.name not in response.content.decode(errors="replace")
        for method in ("post", "put", "patch", "delete"):
            response = getattr(http, method)(path, data={}, content_type="application/json")
            assert response.status_code in (403, 404, 405), (method, path, response.status_code)
    after = (Client.objects.count(), Interaction.objects.count(),
             list(Client.objects.order_by("pk").values()))
    assert after == before
    assert AuditLog.objects.filter(action=AuditAction.ACCESS_DENIED, actor=rm_a).exists()


@pytest.mark.parametrize("route", list_routes())
def test_no_row_of_rm_bs_appears_in_any_list_rm_a_opens(route, logged_in, rm_a, clients_of_b,
                                                        client_of_a):
    http = logged_in(rm_a)
    response = http.get("/" + route, follow=True)
    assert response.status_code < 500, (route, response.status_code)
    body = response.content.decode(errors="replace")
    for other in clients_of_b:
        assert other.client_no not in body, route
        assert other.name not in body, route
