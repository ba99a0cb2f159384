"""Business events in the audit log (outside newsletters): segment saves and deletes, scoring
schemes published, scoring runs started by hand."""

import datetime as dt

from django.urls import reverse

from clients.scoring.models import ScoringScheme
from clients.scoring.schemes import scheme_publish
from clients.scoring.services import scoring_run_start
from core.models import AuditAction, AuditLog
from segments.services import segment_create, segment_delete, segment_update
from tests.clients.test_scoring import V1, ensure_scheme_v1
from tests.factories import ClientFactory


def rows(action):
    return list(AuditLog.objects.filter(action=action).order_by("id"))


def city(name):
    return {"field": "city", "op": "eq", "value": name}


def test_each_rule_save_is_audited_with_code_kind_version_and_rule(ops_user):
    segment = segment_create(code="sh", name_en="Shanghai", rule=city("上海"), actor=ops_user,
                             refresh=False)
    segment_update(segment=segment, rule=city("北京"), actor=ops_user, refresh=False)
    segment_update(segment=segment, name_en="Beijing", actor=ops_user, refresh=False)
    first, second = rows(AuditAction.SEGMENT_SAVED)
    assert first.actor == ops_user and first.object_type == "segment" and first.object_id == "sh"
    assert first.detail == {"code": "sh", "kind": "rule", "version": 1, "rule": city("上海")}
    assert second.detail["version"] == 2 and second.detail["rule"] == city("北京")


def test_a_static_list_save_is_audited_with_its_size(ops_user):
    ClientFactory(client_no="S1")
    ClientFactory(client_no="S2")
    segment_create(code="vip", name_en="VIP", kind="static", client_nos=["S1", "S2"],
                   actor=ops_user)
    [saved] = rows(AuditAction.SEGMENT_SAVED)
    assert saved.detail == {"code": "vip", "kind": "static", "rows": 2}


def test_a_segment_delete_is_audited_and_a_refused_one_is_not(ops_user):
    base = segment_create(code="base", name_en="Base", rule=city("上海"), actor=ops_user,
                          refresh=False)
    user = segment_create(code="user", name_en="User", actor=ops_user, refresh=False,
                          rule={"field": "segment", "op": "in", "value": ["base"]})
    try:
        segment_delete(segment=base, actor=ops_user)
    except Exception:  # noqa: BLE001 - in use by "user": refused
        pass
    assert rows(AuditAction.SEGMENT_DELETED) == []
    segment_delete(segment=user, actor=ops_user)
    [deleted] = rows(AuditAction.SEGMENT_DELETED)
    assert deleted.actor == ops_user and deleted.object_id == "user"
    assert deleted.detail["code"] == "user" and deleted.detail["kind"] == "rule"


def test_the_segment_api_records_the_caller(ops_user):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=ops_user).key}")
    response = api.post("/api/v1/segments/", {"code": "api-seg", "name_en": "Api",
                                               "kind": "rule", "rule": city("上海")},
                        format="json")
    assert response.status_code == 201, response.content
    assert api.delete("/api/v1/segments/api-seg/").status_code == 204
    saved, deleted = (rows(AuditAction.SEGMENT_SAVED)[0], rows(AuditAction.SEGMENT_DELETED)[0])
    assert saved.actor == deleted.actor == ops_user
    assert deleted.path == "/api/v1/segments/api-seg/"


def test_publishing_a_scheme_is_audited_with_its_version(ops_user):
    ensure_scheme_v1()
    scheme = scheme_publish(data={**V1, "note": "wider window"}, actor=ops_user)
    [published] = rows(AuditAction.SCHEME_PUBLISHED)
    assert published.actor == ops_user and published.object_type == "scoring_scheme"
    assert published.object_id == str(scheme.version) == "2"
    assert published.detail == {"version": 2, "note": "wider window"}


def test_a_refused_scheme_is_not_audited(ops_user):
    try:
        scheme_publish(data={**V1, "window_months": 0}, actor=ops_user)
    except Exception:  # noqa: BLE001 - invalid: refused
        pass
    assert rows(AuditAction.SCHEME_PUBLISHED) == []


def test_a_scoring_run_started_by_hand_is_audited_and_the_nightly_one_is_not(
        ops_user, logged_in):
    ensure_scheme_v1()
    ClientFactory()
    as_of = dt.date.today() - dt.timedelta(days=1)
    response = logged_in(ops_user).post(reverse("scoring:run_start"),
                                        {"as_of": as_of.isoformat()})
    assert response.status_code in (200, 302)
    scoring_run_start(as_of=as_of - dt.timedelta(days=1), trigger="beat")
    [started] = rows(AuditAction.SCORING_STARTED)
    assert started.actor == ops_user and started.object_type == "scoring_run"
    assert started.detail == {"as_of": as_of.isoformat(), "scheme": 1, "trigger": "page"}
    assert ScoringScheme.objects.count() == 1
