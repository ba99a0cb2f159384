"""The analytics API (shared/API.md "Analytics"): the same figures as the selectors, filters,
errors that name the parameter, scoping, CSV/XLSX downloads (audited) and the refresh job."""

import io

import pytest
from openpyxl import load_workbook
from rest_framework.test import APIClient

from analytics.models import AnalyticsRefresh
from core.models import AuditAction, AuditLog
from tests.analytics import test_metrics as fixed
from tests.analytics.test_metrics import Dates, label

book, built, d = fixed.book, fixed.built, fixed.d  # the fixed book's fixtures

URL = "/api/v1/analytics/"


def api_as(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def window(dates: Dates) -> dict:
    return {"from": dates.M3.isoformat(), "to": dates.T.isoformat()}


def test_kpis(built, d, ops_user):
    answer = api_as(ops_user).get(URL + "kpis/", {**window(d), "interval": "month"})
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["as_of"] == d.T.isoformat() and body["interval"] == "month"
    assert [p["new_accounts"] for p in body["series"]] == [3, 2, 0, 0]
    assert set(body["series"][0]) == {"period", "clients", "active_clients", "aum", "revenue",
                                      "new_accounts", "funded_rate"}
    assert body["previous"]


def test_retention_funnel_channels_newsletters(built, d, ops_user):
    api = api_as(ops_user)
    retention = api.get(URL + "retention/", {**window(d), "months": "12"}).json()
    assert retention["cohorts"][0] == {"cohort": label(d.M3), "size": 3,
                                       "retention": [0.6667, 0.3333, 0.3333, 0.0]}
    funnel = api.get(URL + "funnel/", window(d)).json()
    assert [s["clients"] for s in funnel["steps"]] == [5, 4, 4, 3]
    channels = api.get(URL + "channels/", window(d)).json()
    assert isinstance(channels, list)
    assert [c["channel"] for c in channels] == ["email", "sms", "app_push", "wechat", "phone"]
    assert all(c["attempted"] == 0 for c in channels)
    assert api.get(URL + "newsletters/", window(d)).json()["editions"] == []


def test_filters_and_scope(built, d, rm_a, rm_b):
    mine = api_as(rm_b).get(URL + "funnel/", window(d)).json()
    assert mine["steps"][0]["clients"] == 1
    answer = api_as(rm_a).get(URL + "funnel/", {**window(d), "rm": "rm_b"})
    assert answer.status_code == 403
    assert set(answer.json()["error"]["fields"]) == {"rm"}
    answer = api_as(rm_a).get(URL + "kpis/", {"branch": "BJ01"})
    assert answer.status_code == 403
    assert set(answer.json()["error"]["fields"]) == {"branch"}


@pytest.mark.parametrize(("path", "params", "field"), [
    ("kpis/", {"interval": "year"}, "interval"),
    ("kpis/", {"from": "yesterday"}, "from"),
    ("kpis/", {"from": "2026-05-02", "to": "2026-05-01"}, "from"),
    ("retention/", {"months": "many"}, "months"),
    ("retention/", {"months": "30"}, "months"),
    ("funnel/", {"segment": "no_such_segment"}, "segment"),
    ("channels/", {"tier": "platinum"}, "tier"),
    ("newsletters/", {"branch": "XX99"}, "branch"),
    ("funnel/", {"format": "pdf"}, "format"),
])
def test_bad_input_is_a_400_naming_the_parameter(built, ops_user, path, params, field):
    answer = api_as(ops_user).get(URL + path, params)
    assert answer.status_code == 400, answer.content
    assert field in answer.json()["error"]["fields"]


def test_tables_download_as_csv_and_xlsx_and_are_audited(built, d, ops_user):
    api = api_as(ops_user)
    answer = api.get(URL + "funnel/", {**window(d), "format": "csv"})
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/csv")
    text = b"".join(answer.streaming_content).decode("utf-8-sig").splitlines()
    assert text[0] == "step,clients,conversion_from_previous,median_days_from_previous"
    assert text[2] == "funded,4,0.8,1.5"
    answer = api.get(URL + "retention/", {**window(d), "format": "xlsx"})
    assert answer.status_code == 200
    sheet = load_workbook(io.BytesIO(answer.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("cohort", "size", "m0")
    assert rows[1][:3] == (label(d.M3), 3, 0.6667)
    exports = AuditLog.objects.filter(action=AuditAction.EXPORT, object_type="analytics")
    assert sorted(exports.values_list("object_id", flat=True)) == ["funnel", "retention"]
    assert exports.get(object_id="funnel").detail["format"] == "csv"


def test_refresh_is_for_operations_and_answers_the_job(book, ops_user, rm_a,
                                                      django_capture_on_commit_callbacks):
    assert api_as(rm_a).post(URL + "refresh/", {}, format="json").status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        answer = api_as(ops_user).post(URL + "refresh/", {"full": True}, format="json")
    assert answer.status_code == 202, answer.content
    job = answer.json()
    assert job["kind"] == "full" and job["status"] in ("queued", "running", "succeeded")
    assert set(job["progress"]) == {"done", "total"}
    polled = api_as(ops_user).get(URL + f"refresh/{job['id']}/").json()
    assert polled["status"] == "succeeded"  # eager Celery in tests ran it after commit
    assert polled["as_of"] and polled["percent"] == 100
    assert api_as(ops_user).get(URL + "refresh/999999/").status_code == 404
    assert AnalyticsRefresh.objects.count() == 1


def test_bad_refresh_body_is_a_400(book, ops_user):
    answer = api_as(ops_user).post(URL + "refresh/", {"full": "perhaps"}, format="json")
    assert answer.status_code == 400
    assert "full" in answer.json()["error"]["fields"]
