"""The client book pages: "My clients" and the client 360 view."""

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from clients.models import Interaction
from core.models import AuditAction, AuditLog
from tests.factories import (
    ClientFactory,
    HoldingFactory,
    InteractionFactory,
    ProductFactory,
    TransactionFactory,
)

LIST = reverse("clients:client_list")


def detail_url(client):
    return reverse("clients:client_detail", args=[client.client_no])


def client_nos(response):
    return [c.client_no for c in response.context["page"].rows]


# --- My clients ------------------------------------------------------------------------------

def test_an_rm_sees_only_their_book(logged_in, rm_a, client_of_a, clients_of_b):
    response = logged_in(rm_a).get(LIST)
    assert response.status_code == 200
    assert client_nos(response) == ["A0000001"]
    body = response.content.decode()
    assert all(c.client_no not in body for c in clients_of_b)


def test_ops_see_everyone_with_phones_masked(logged_in, ops_user, client_of_a, clients_of_b):
    response = logged_in(ops_user).get(LIST)
    assert len(client_nos(response)) == 4
    body = response.content.decode()
    assert "138****5678" in body and "13812345678" not in body


def test_the_own_rm_list_is_masked_too(logged_in, rm_a, client_of_a):
    body = logged_in(rm_a).get(LIST).content.decode()
    assert "138****5678" in body and "13812345678" not in body


@pytest.mark.parametrize("q", ["5678", "13812345678", "张", "A00000"])
def test_search_by_phone_tail_name_or_client_number(logged_in, rm_a, client_of_a, q):
    ClientFactory(client_no="X0000009", name="李四", rm=rm_a, branch=rm_a.branch,
                  phone="13900001111")
    assert client_nos(logged_in(rm_a).get(LIST, {"q": q})) == ["A0000001"]


def test_filters_by_risk_service_level_status_and_expiry(logged_in, rm_a, client_of_a):
    today = timezone.localdate()
    client_of_a.last_purchase_on = today
    client_of_a.save()
    hnw = ClientFactory(rm=rm_a, risk_level="C5", aum=Decimal("8000000"), last_purchase_on=today)
    expired = ClientFactory(rm=rm_a, risk_expires_on=today - dt.timedelta(days=1),
                            last_purchase_on=today)
    dormant = ClientFactory(rm=rm_a, last_purchase_on=today - dt.timedelta(days=400),
                            opened_on=today - dt.timedelta(days=900))
    web = logged_in(rm_a)
    assert client_nos(web.get(LIST, {"risk_level": "C5"})) == [hnw.client_no]
    assert client_nos(web.get(LIST, {"service_level": "hnw"})) == [hnw.client_no]
    assert client_nos(web.get(LIST, {"expired": "yes"})) == [expired.client_no]
    assert expired.client_no not in client_nos(web.get(LIST, {"expired": "no"}))
    assert client_nos(web.get(LIST, {"status": "dormant_derived"})) == [dormant.client_no]


def test_sorting_uses_a_whitelist_and_ignores_anything_else(logged_in, ops_user, clients_of_b,
                                                            client_of_a):
    web = logged_in(ops_user)
    ClientFactory(client_no="Z0000001", aum=Decimal("9999999"))
    assert client_nos(web.get(LIST, {"sort": "-aum"}))[0] == "Z0000001"
    assert client_nos(web.get(LIST, {"sort": "client_no"}))[0] == "A0000001"
    for bad in ("phone", "-id_number", "name; DROP TABLE", "__class__"):
        response = web.get(LIST, {"sort": bad, "page": "x", "per_page": "999", "status": "?"})
        assert response.status_code == 200
        assert len(client_nos(response)) == 5


def test_pagination_in_pages_of_25_or_50(logged_in, rm_a):
    ClientFactory.create_batch(60, rm=rm_a, branch=rm_a.branch)
    web = logged_in(rm_a)
    first = web.get(LIST)
    assert len(client_nos(first)) == 25 and first.context["page"].has_next
    third = web.get(LIST, {"page": 3})
    assert len(client_nos(third)) == 10 and not third.context["page"].has_next
    assert len(client_nos(web.get(LIST, {"per_page": 50}))) == 50
    assert set(client_nos(first)).isdisjoint(client_nos(web.get(LIST, {"page": 2})))
    assert first.context["page"].total == 60
    assert "Page 1 of 3" in first.content.decode() or "第 1 / 3 页" in first.content.decode()


def test_the_list_query_count_does_not_grow_with_the_page(logged_in, ops_user,
                                                          django_assert_max_num_queries):
    ClientFactory.create_batch(50)
    web = logged_in(ops_user)
    # session + user + role + rows + (planner estimate on PostgreSQL) + capped count + the
    # session write (SESSION_SAVE_EVERY_REQUEST: savepoint, update, release) - no query per row.
    # (Sorting by score reads the ScoringCurrent pointer first: one more, pinned in
    # test_scoring_pages.test_the_score_sort_costs_one_query_more_than_other_sorts.)
    with django_assert_max_num_queries(9):
        response = web.get(LIST, {"per_page": 50})
    assert len(client_nos(response)) == 50


def test_htmx_requests_get_only_the_table(logged_in, rm_a, client_of_a):
    response = logged_in(rm_a).get(LIST, {"q": "张"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert "<html" not in body and "A0000001" in body
    assert "HX-Request" in response["Vary"]


# --- Client 360 ------------------------------------------------------------------------------

@pytest.fixture
def client_with_history(client_of_a, rm_a):
    fund = ProductFactory(product_code="F001", name="成长混合基金", product_type="fund",
                          risk_level="R3")
    bond = ProductFactory(product_code="B001", name="稳健债券1号", product_type="fixed_income")
    day = dt.date(2026, 10, 31)
    HoldingFactory(client=client_of_a, product=fund, as_of=day, market_value=Decimal("60000"))
    HoldingFactory(client=client_of_a, product=bond, as_of=day, market_value=Decimal("40000"))
    HoldingFactory(client=client_of_a, product=bond, as_of=day - dt.timedelta(days=1),
                   market_value=Decimal("1"))
    TransactionFactory(client=client_of_a, product=fund, revenue=Decimal("300"))
    TransactionFactory(client=client_of_a, product=bond, revenue=Decimal("200"),
                       traded_at=timezone.now() - dt.timedelta(days=500))
    InteractionFactory(client=client_of_a, author=rm_a, note="讨论了养老规划")
    return client_of_a


def test_the_360_page_shows_holdings_chart_data_purchases_and_interactions(
        logged_in, rm_a, client_with_history):
    response = logged_in(rm_a).get(detail_url(client_with_history))
    body = response.content.decode()
    assert response.status_code == 200
    assert "成长混合基金" in body and "稳健债券1号" in body
    assert len(response.context["holdings"]) == 2  # only the latest as-of date
    chart = re.search(r'<script id="allocation-data" type="application/json">(.*?)</script>',
                      body).group(1)
    assert sorted(d["value"] for d in json.loads(chart)) == [40000.0, 60000.0]
    assert len(response.context["purchases"]) == 2
    assert response.context["contribution"] == {"total": Decimal("500"),
                                                "last_12m": Decimal("300")}
    assert "讨论了养老规划" in body
    assert "js/client_detail.js" in body


def test_personal_data_is_in_full_for_the_own_rm_and_recorded(logged_in, rm_a, client_of_a):
    body = logged_in(rm_a).get(detail_url(client_of_a)).content.decode()
    assert "13812345678" in body
    entry = AuditLog.objects.get(action=AuditAction.PII_VIEWED)
    assert (entry.actor, entry.object_type, entry.object_id) == (rm_a, "client", "A0000001")


def test_personal_data_is_masked_for_ops_and_not_recorded(logged_in, ops_user, client_of_a):
    body = logged_in(ops_user).get(detail_url(client_of_a)).content.decode()
    assert "138****5678" in body and "13812345678" not in body
    assert client_of_a.email not in body
    assert not AuditLog.objects.filter(action=AuditAction.PII_VIEWED).exists()


def test_another_rms_client_is_not_found_and_audited(logged_in, rm_a, clients_of_b):
    response = logged_in(rm_a).get(detail_url(clients_of_b[0]))
    assert response.status_code == 404
    assert AuditLog.objects.filter(action=AuditAction.ACCESS_DENIED,
                                   object_id=clients_of_b[0].client_no).exists()


def test_risk_assessment_warnings(logged_in, rm_a):
    today = timezone.localdate()
    expired = ClientFactory(rm=rm_a, risk_expires_on=today - dt.timedelta(days=3))
    soon = ClientFactory(rm=rm_a, risk_expires_on=today + dt.timedelta(days=5))
    web = logged_in(rm_a)
    body = web.get(detail_url(expired), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "alert-danger" in body and "no risky products may be recommended" in body
    assert "alert-warning" in web.get(detail_url(soon)).content.decode()


def test_logging_a_call_appears_in_the_list(logged_in, rm_a, client_of_a):
    web = logged_in(rm_a)
    url = reverse("clients:interaction_create", args=[client_of_a.client_no])
    response = web.post(url, {"kind": "call", "outcome": "interested", "note": "约了下周面谈"},
                        follow=True)
    assert response.redirect_chain[-1][0] == detail_url(client_of_a)
    assert "约了下周面谈" in response.content.decode()
    assert Interaction.objects.get().author == rm_a


def test_logging_with_htmx_swaps_the_interaction_list(logged_in, rm_a, client_of_a):
    url = reverse("clients:interaction_create", args=[client_of_a.client_no])
    response = logged_in(rm_a).post(url, {"kind": "meeting", "outcome": "reached",
                                          "note": "面谈"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body and "面谈" in body


def test_a_bad_interaction_shows_errors_and_writes_nothing(logged_in, rm_a, client_of_a):
    url = reverse("clients:interaction_create", args=[client_of_a.client_no])
    web = logged_in(rm_a)
    response = web.post(url, {"kind": "note", "outcome": "none", "note": "  "})
    assert response.status_code == 400
    assert "is-invalid" in response.content.decode()
    response = web.post(url, {"kind": "fax", "outcome": "none"})
    assert response.status_code == 400
    assert not Interaction.objects.exists()


def test_an_rm_cannot_log_for_another_rms_client(logged_in, rm_a, clients_of_b):
    url = reverse("clients:interaction_create", args=[clients_of_b[0].client_no])
    assert logged_in(rm_a).post(url, {"kind": "call", "outcome": "reached"}).status_code == 404
    assert not Interaction.objects.exists()


# --- Both languages --------------------------------------------------------------------------

def test_the_list_speaks_chinese_by_default_and_english_on_request(logged_in, rm_a, client_of_a):
    web = logged_in(rm_a)
    assert "我的客户" in web.get(LIST).content.decode()
    web.post(reverse("set_language"), {"language": "en", "next": LIST})
    body = web.get(LIST).content.decode()
    assert "My clients" in body and "我的客户" not in body
    web.post(reverse("set_language"), {"language": "zh-hans", "next": LIST})
    assert "客户" in web.get(LIST).content.decode()


def test_the_login_page_has_the_language_switch(client):
    body = client.get(reverse("login")).content.decode()
    assert 'name="language"' in body and reverse("set_language") in body
    client.cookies["django_language"] = "en"
    assert "Log in" in client.get(reverse("login")).content.decode()


def test_long_lists_are_counted_only_up_to_a_cap(logged_in, rm_a, monkeypatch):
    monkeypatch.setattr("core.pagination.COUNT_CAP", 3)
    ClientFactory.create_batch(5, rm=rm_a)
    response = logged_in(rm_a).get(LIST, HTTP_ACCEPT_LANGUAGE="en")
    assert response.context["page"].total_kind == "capped"
    assert "More than 3 clients" in response.content.decode()


def test_the_whole_book_of_ops_shows_the_planner_estimate_on_postgresql(
        logged_in, ops_user, client_of_a, monkeypatch):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("pg_class.reltuples is PostgreSQL's")
    monkeypatch.setattr("core.pagination.table_estimate", lambda model: 1_000_000)
    web = logged_in(ops_user)
    assert web.get(LIST).context["page"].total_kind == "estimate"
    assert web.get(LIST, {"q": "张"}).context["page"].total_kind == "exact"  # filtered: counted


def test_a_list_pages_only_through_its_first_ten_thousand_rows(logged_in, ops_user, monkeypatch):
    import core.pagination as views
    from tests.factories import ClientFactory

    monkeypatch.setattr(views, "MAX_ROWS_PAGED", 50)
    ClientFactory.create_batch(60)
    http = logged_in(ops_user)
    response = http.get("/clients/", {"page": 999, "per_page": 25, "sort": "client_no"},
                        HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    page = response.context["page"]
    assert page.number == 2 and not page.has_next and page.at_depth_limit
    assert 'id="depth-limit"' in response.content.decode()


# --- Client 360: cash flows ------------------------------------------------------------------

def test_the_360_shows_the_latest_ten_cash_flows_newest_first(logged_in, rm_a, client_of_a,
                                                              clients_of_b):
    from clients.models import CashFlow

    start = dt.datetime(2026, 9, 1, 2, 0, tzinfo=dt.UTC)
    CashFlow.objects.bulk_create(
        [CashFlow(flow_id=f"CF{i:02d}", client=client_of_a, at=start + dt.timedelta(days=i),
                  amount=Decimal(1000 + i) if i % 2 else Decimal(-(1000 + i)),
                  kind="deposit" if i % 2 else "withdrawal") for i in range(12)]
        + [CashFlow(flow_id="OTHER", client=clients_of_b[0], at=start, amount=Decimal("777777"),
                    kind="deposit")])

    body = logged_in(rm_a).get(detail_url(client_of_a)).content.decode()

    card = body[body.index('id="cash-flows"'):]
    card = card[:card.index("</section>")]
    days = re.findall(r"2026-09-\d\d", card)
    assert days == [f"2026-09-{d:02d}" for d in range(12, 2, -1)]
    assert "+¥1,011.00" in card and "−¥1,010.00" in card and "777,777" not in card


def test_the_360_says_when_there_are_no_cash_flows(logged_in, rm_a, client_of_a):
    body = logged_in(rm_a).get(detail_url(client_of_a)).content.decode()

    card = body[body.index('id="cash-flows"'):]
    assert "No cash flows on record." in card or "暂无资金流水" in card
