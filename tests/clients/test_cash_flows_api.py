"""POST /api/v1/cash-flows/bulk/ (API.md "Scenario data"): atomic, idempotent on flow_id,
every bad row named by index and field; deposits fund the account."""

import datetime as dt
from decimal import Decimal

import pytest

from clients.models import CashFlow, Client
from core.models import AuditAction, AuditLog
from tests.factories import ClientFactory

URL = "/api/v1/cash-flows/bulk/"


def flow(i: int, client_no: str = "A0000001", **kw) -> dict:
    row = {"flow_id": f"CF{i:08d}", "client_no": client_no, "at": "2026-10-09T10:30:00+08:00",
           "amount": "50000.00", "kind": "deposit"}
    row.update(kw)
    return row


def row_errors(response) -> list[tuple[int | None, str]]:
    assert response.status_code == 400, (response.status_code, response.content[:500])
    body = response.json()
    assert set(body["error"]) == {"code", "message", "fields"}, body
    return [(e["index"], e["field"]) for e in body["errors"]]


def request_error(response) -> dict:
    assert response.status_code == 400, (response.status_code, response.content[:500])
    body = response.json()
    assert "errors" not in body, body
    return body["error"]["fields"]


# writes ------------------------------------------------------------------------------------

def test_a_batch_creates_its_flows_with_their_signs(client_of_a, core_system):
    rows = [flow(0), flow(1, amount="-2000.50", kind="withdrawal"),
            flow(2, amount="-300", kind="transfer"), flow(3, amount=700, kind="transfer")]

    response = core_system.post(URL, rows, format="json")

    assert response.status_code == 200, response.json()
    assert response.json() == {"created": 4, "updated": 0, "unchanged": 0}
    stored = dict(CashFlow.objects.values_list("flow_id", "amount"))
    assert stored == {"CF00000000": Decimal("50000.00"), "CF00000001": Decimal("-2000.50"),
                      "CF00000002": Decimal("-300.00"), "CF00000003": Decimal("700.00")}
    first = CashFlow.objects.get(flow_id="CF00000000")
    assert first.client == client_of_a and first.kind == "deposit"
    assert first.at == dt.datetime(2026, 10, 9, 2, 30, tzinfo=dt.UTC)


def test_a_resent_batch_counts_unchanged_and_a_changed_row_updates(client_of_a, core_system):
    rows = [flow(i) for i in range(4)]
    assert core_system.post(URL, rows, format="json").json() == {
        "created": 4, "updated": 0, "unchanged": 0}

    again = core_system.post(URL, rows, format="json")
    rows[1]["amount"] = "-10.00"
    rows[1]["kind"] = "withdrawal"
    changed = core_system.post(URL, [*rows, flow(9)], format="json")

    assert again.json() == {"created": 0, "updated": 0, "unchanged": 4}
    assert changed.json() == {"created": 1, "updated": 1, "unchanged": 3}
    assert CashFlow.objects.count() == 5
    assert CashFlow.objects.get(flow_id="CF00000001").amount == Decimal("-10.00")
    audited = AuditLog.objects.filter(action=AuditAction.IMPORT, object_type="cash_flows")
    assert audited.count() == 3


def test_the_same_amount_written_differently_is_unchanged(client_of_a, core_system):
    core_system.post(URL, [flow(0, amount="1200.5")], format="json")

    response = core_system.post(URL, [flow(0, amount=1200.50, at="2026-10-09 10:30:00")],
                                format="json")

    assert response.json() == {"created": 0, "updated": 0, "unchanged": 1}


def test_an_empty_batch_writes_nothing(core_system):
    response = core_system.post(URL, [], format="json")
    assert response.json() == {"created": 0, "updated": 0, "unchanged": 0}


# atomicity and row errors ------------------------------------------------------------------

def test_one_bad_row_rejects_the_batch_and_writes_nothing(client_of_a, core_system):
    core_system.post(URL, [flow(0)], format="json")
    rows = [flow(0, amount="99.00"), flow(1), flow(2, amount="lots"), flow(3)]

    errors = row_errors(core_system.post(URL, rows, format="json"))

    assert errors == [(2, "amount")]
    assert list(CashFlow.objects.values_list("flow_id", "amount")) == [
        ("CF00000000", Decimal("50000.00"))]


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"client_no": "GHOST"}, "client_no", "Unknown client_no"),
    ({"kind": "dividend"}, "kind", "Unknown value; one of: deposit, withdrawal, transfer"),
    ({"kind": ""}, "kind", "A value is required"),
    ({"amount": "0"}, "amount", "Must not be zero"),
    ({"amount": "0.001", "kind": "transfer"}, "amount", "Must not be zero"),
    ({"amount": "abc"}, "amount", "Not a number"),
    ({"amount": "1_000"}, "amount", "Not a number"),
    ({"amount": None}, "amount", "A value is required"),
    ({"amount": "1e20"}, "amount", "Too large"),
    ({"amount": "-500"}, "amount", "A deposit is money in"),
    ({"amount": "500", "kind": "withdrawal"}, "amount", "A withdrawal is money out"),
    ({"at": "2026-13-01 10:00"}, "at", "Not a date and time"),
    ({"at": "yesterday"}, "at", "Not a date and time"),
    ({"at": "0001-01-01T00:00:00Z"}, "at", "Must be between"),
    ({"flow_id": ""}, "flow_id", "A value is required"),
    ({"flow_id": "F" * 41}, "flow_id", "Too long"),
])
def test_every_bad_value_is_a_400_naming_its_index_and_field(change, field, message,
                                                              client_of_a, core_system):
    rows = [flow(0), flow(1), {**flow(2), **change}]

    response = core_system.post(URL, rows, format="json", HTTP_ACCEPT_LANGUAGE="en")

    assert row_errors(response) == [(2, field)]
    assert response.json()["errors"][0]["message"].startswith(message)
    assert CashFlow.objects.count() == 0


def test_a_flow_id_twice_in_one_batch_names_both_rows(client_of_a, core_system):
    rows = [flow(0), flow(1), flow(0, amount="1.00")]

    assert row_errors(core_system.post(URL, rows, format="json")) == [
        (0, "flow_id"), (2, "flow_id")]
    assert CashFlow.objects.count() == 0


def test_a_missing_or_unknown_field_is_an_error_of_the_request(client_of_a, core_system):
    no_kind = {k: v for k, v in flow(0).items() if k != "kind"}
    assert row_errors(core_system.post(URL, [no_kind], format="json")) == [(0, "kind")]
    assert row_errors(core_system.post(URL, [flow(0, currency="CNY")], format="json")) == [
        (None, "currency")]
    assert CashFlow.objects.count() == 0


def test_more_than_ten_thousand_rows_is_a_400_naming_rows(core_system):
    fields = request_error(core_system.post(URL, [flow(i) for i in range(10_001)],
                                            format="json"))
    assert list(fields) == ["rows"]
    assert CashFlow.objects.count() == 0


@pytest.mark.parametrize("raw", ['{"flow_id": "x"}', "[1, 2]", '"rows"', "[[]]", "null"])
def test_a_body_that_is_not_a_list_of_objects_is_a_400_naming_rows(raw, core_system):
    response = core_system.post(URL, raw, content_type="application/json")
    assert list(request_error(response)) == ["rows"]


def test_malformed_json_is_a_400(core_system):
    response = core_system.post(URL, "[", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


# who may write -----------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["rm_a", "branch_manager", "compliance_user"])
def test_only_writing_roles_may_post_cash_flows(who, request, client_of_a, api_as):
    response = api_as(request.getfixturevalue(who)).post(URL, [flow(0)], format="json")
    assert response.status_code == 403
    assert CashFlow.objects.count() == 0


def test_anonymous_callers_are_refused(client_of_a):
    from rest_framework.test import APIClient

    assert APIClient().post(URL, [flow(0)], format="json").status_code == 401


# funding -----------------------------------------------------------------------------------

def test_the_earliest_deposit_sets_first_funded_on_in_beijing_time(client_of_a, core_system):
    assert client_of_a.first_funded_on is None
    rows = [flow(0, at="2026-10-09T10:00:00+08:00"),
            # 2026-10-08 17:30 UTC is already 2026-10-09 in Beijing
            flow(1, at="2026-10-08T17:30:00Z", amount="5.00"),
            flow(2, at="2026-09-01 09:00:00", amount="-5.00", kind="withdrawal"),
            flow(3, at="2026-08-01 09:00:00", amount="-5.00", kind="transfer")]

    core_system.post(URL, rows, format="json")

    client_of_a.refresh_from_db()
    assert client_of_a.first_funded_on == dt.date(2026, 10, 9)


def test_an_earlier_deposit_moves_first_funded_on_back_and_a_later_one_does_not(
        client_of_a, core_system):
    Client.objects.filter(pk=client_of_a.pk).update(first_funded_on=dt.date(2026, 5, 1))

    core_system.post(URL, [flow(0, at="2026-06-01 09:00:00")], format="json")
    client_of_a.refresh_from_db()
    after_later = client_of_a.first_funded_on
    core_system.post(URL, [flow(1, at="2026-03-02 09:00:00")], format="json")
    client_of_a.refresh_from_db()

    assert after_later == dt.date(2026, 5, 1)
    assert client_of_a.first_funded_on == dt.date(2026, 3, 2)


def test_funding_is_set_per_client_in_one_batch(client_of_a, clients_of_b, core_system):
    other = clients_of_b[0]
    rows = [flow(0, at="2026-10-01 09:00:00"),
            flow(1, client_no=other.client_no, at="2026-07-15 09:00:00"),
            flow(2, client_no=other.client_no, at="2026-07-10 09:00:00", amount="-1",
                 kind="withdrawal")]

    core_system.post(URL, rows, format="json")

    funded = dict(Client.objects.filter(first_funded_on__isnull=False)
                  .values_list("client_no", "first_funded_on"))
    assert funded == {"A0000001": dt.date(2026, 10, 1), other.client_no: dt.date(2026, 7, 15)}


def test_a_rejected_batch_funds_nobody(client_of_a, core_system):
    rows = [flow(0), flow(1, client_no="GHOST")]

    core_system.post(URL, rows, format="json")

    client_of_a.refresh_from_db()
    assert client_of_a.first_funded_on is None


def test_a_full_batch_of_ten_thousand_rows_is_accepted(core_system, branch):
    clients = ClientFactory.create_batch(20, branch=branch)
    rows = [flow(i, client_no=clients[i % 20].client_no,
                 at=f"2026-{1 + i % 12:02d}-{1 + i % 28:02d} 10:00:00",
                 amount=str(100 + i) if i % 3 else f"-{100 + i}",
                 kind="deposit" if i % 3 else "withdrawal")
            for i in range(10_000)]

    response = core_system.post(URL, rows, format="json")

    assert response.json() == {"created": 10_000, "updated": 0, "unchanged": 0}
    expected: dict[str, dt.date] = {}
    for row in rows:
        if row["kind"] == "deposit":
            day = dt.date.fromisoformat(row["at"][:10])
            no = row["client_no"]
            expected[no] = min(expected.get(no, day), day)
    assert dict(Client.objects.values_list("client_no", "first_funded_on")) == expected


# the back office ---------------------------------------------------------------------------

def test_the_admin_lists_and_shows_cash_flows_but_does_not_edit_them(
        logged_in, admin_user_, client_of_a, core_system):
    core_system.post(URL, [flow(0), flow(1, amount="-20.00", kind="withdrawal")], format="json")
    web = logged_in(admin_user_)
    pk = CashFlow.objects.get(flow_id="CF00000001").pk

    listed = web.get("/admin/clients/cashflow/", {"q": "A0000001"})
    shown = web.get(f"/admin/clients/cashflow/{pk}/change/")
    changed = web.post(f"/admin/clients/cashflow/{pk}/change/",
                       {"flow_id": "X", "amount": "5", "kind": "deposit"})

    assert listed.status_code == 200 and "CF00000001" in listed.content.decode()
    assert shown.status_code == 200 and "CF00000001" in shown.content.decode()
    assert changed.status_code == 403
    assert web.get("/admin/clients/cashflow/add/").status_code == 403
    assert CashFlow.objects.get(pk=pk).amount == Decimal("-20.00")
