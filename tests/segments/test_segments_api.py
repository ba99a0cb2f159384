"""The segments API: reads for every role, writes for ops/admin, rule errors naming the node,
scoped member lists, refresh jobs, and segments on the client API."""

import datetime as dt

import pytest
from django.utils import timezone

from segments.models import Segment, SegmentMembership


def cond(field, op, value):
    return {"field": field, "op": op, "value": value}


def born(age: int) -> dt.date:
    today = timezone.localdate()
    return today.replace(year=today.year - age) - dt.timedelta(days=30)


def test_list_and_detail_for_any_reading_role(db, api_as, rm_a):
    res = api_as(rm_a).get("/api/v1/segments/")
    assert res.status_code == 200
    rows = {r["code"]: r for r in res.json()}
    assert rows["silver_haired"]["kind"] == "persona"
    assert set(rows["silver_haired"]) >= {"code", "name", "name_zh", "name_en", "kind", "size",
                                          "refreshed_at", "rule_version"}
    detail = api_as(rm_a).get("/api/v1/segments/silver_haired/").json()
    assert detail["rule"] == cond("age", "between", [60, 69])
    assert detail["playbook"]["product_types"] == ["fixed_income", "money_market"]
    assert api_as(rm_a).get("/api/v1/segments/nope/").status_code == 404


def test_rms_cannot_write(db, api_as, rm_a):
    res = api_as(rm_a).post("/api/v1/segments/", {"code": "x", "name": "X", "kind": "rule",
                                                  "rule": cond("age", "gt", 1)}, format="json")
    assert res.status_code == 403
    assert api_as(rm_a).post("/api/v1/segments/gen_z/refresh/").status_code == 403


def test_create_rule_segment_refresh_and_members_scoped_to_the_caller(
        db, api_as, ops_user, rm_a, client_of_a, clients_of_b,
        django_capture_on_commit_callbacks):
    api = api_as(ops_user)
    with django_capture_on_commit_callbacks(execute=True):
        res = api.post("/api/v1/segments/", {"code": "shanghai", "name_zh": "上海",
                                             "name_en": "Shanghai", "kind": "rule",
                                             "rule": cond("city", "eq", "上海")}, format="json")
    assert res.status_code == 201, res.json()
    assert res.json()["rule_version"] == 1
    assert api.get("/api/v1/segments/shanghai/").json()["size"] == 4
    with django_capture_on_commit_callbacks(execute=True):
        res = api.post("/api/v1/segments/shanghai/refresh/")
    assert res.status_code == 202
    job = api.get(f"/api/v1/segments/refreshes/{res.json()['id']}/").json()
    assert job["status"] == "succeeded" and job["size"] == 4
    assert job["joined"] == 0 and job["left"] == 0 and job["segment"] == "shanghai"
    ops_members = api.get("/api/v1/segments/shanghai/members/").json()
    assert len(ops_members["results"]) == 4
    rm_members = api_as(rm_a).get("/api/v1/segments/shanghai/members/").json()
    assert rm_members["results"] == [{"client_no": "A0000001"}]


def test_patch_rule_makes_a_new_version(db, api_as, ops_user):
    api = api_as(ops_user)
    res = api.patch("/api/v1/segments/silver_haired/",
                    {"rule": cond("age", "between", [60, 70])}, format="json")
    assert res.status_code == 200 and res.json()["rule_version"] == 2
    res = api.patch("/api/v1/segments/tier_guiding/", {"rule": cond("tier", "eq", "potential")},
                    format="json")
    assert res.status_code == 400 and res.json()["error"]["code"] == "rule_fixed"


@pytest.mark.parametrize(("rule", "node"), [
    ({"all": [cond("age", "gt", 1), cond("shoe_size", "eq", 42)]}, "/all/1/field"),
    ({"all": [cond("age", "contains", "6")]}, "/all/0/op"),
    ({"any": [cond("age", "gt", "sixty")]}, "/any/0/value"),
    ({"all": []}, "/all"),
    ("age > 60; DROP TABLE clients_client", "/"),
])
def test_rule_errors_are_400_with_the_node(db, api_as, ops_user, rule, node):
    api = api_as(ops_user)
    for res in (api.post("/api/v1/segments/preview/", {"rule": rule}, format="json"),
                api.post("/api/v1/segments/", {"code": "bad", "name": "Bad", "kind": "rule",
                                               "rule": rule}, format="json")):
        assert res.status_code == 400
        error = res.json()["error"]
        assert error["code"] == "invalid_rule" and error["node"] == node
        assert error["fields"]["rule"] and error["message"]


def test_cycle_is_a_400_naming_the_node(db, api_as, ops_user):
    api = api_as(ops_user)
    api.post("/api/v1/segments/", {"code": "a", "name": "A", "rule": cond("age", "gt", 1)},
             format="json")
    api.post("/api/v1/segments/", {"code": "b", "name": "B",
                                   "rule": cond("segment", "eq", "a")}, format="json")
    res = api.patch("/api/v1/segments/a/", {"rule": {"not": cond("segment", "eq", "b")}},
                    format="json")
    assert res.status_code == 400 and res.json()["error"]["node"] == "/not/value"
    res = api.delete("/api/v1/segments/a/")
    assert res.status_code == 409 and res.json()["error"]["code"] == "segment_in_use"
    assert api.delete("/api/v1/segments/b/").status_code == 204


def test_preview_is_scoped(db, api_as, rm_a, client_of_a, clients_of_b):
    res = api_as(rm_a).post("/api/v1/segments/preview/", {"rule": cond("city", "eq", "上海")},
                            format="json")
    assert res.status_code == 200
    assert res.json() == {"count": 1, "sample": ["A0000001"]}


def test_static_list_over_the_api(db, api_as, ops_user, client_of_a):
    api = api_as(ops_user)
    res = api.post("/api/v1/segments/", {"code": "vip", "name": "VIP", "kind": "static",
                                         "client_nos": ["A0000001", "NOPE1"]}, format="json")
    assert res.status_code == 400 and res.json()["error"]["fields"]["client_nos"] == ["NOPE1"]
    res = api.post("/api/v1/segments/", {"code": "vip", "name": "VIP", "kind": "static",
                                         "client_nos": ["A0000001"]}, format="json")
    assert res.status_code == 201 and res.json()["size"] == 1


def test_client_detail_lists_segments_and_the_list_filters_by_segment(
        db, api_as, ops_user, client_of_a, clients_of_b):
    segment = Segment.objects.get(code="gen_z")
    SegmentMembership.objects.create(segment=segment, client=client_of_a)
    api = api_as(ops_user)
    assert api.get("/api/v1/clients/A0000001/").json()["segments"] == ["gen_z"]
    assert api.get("/api/v1/clients/B0000000/").json()["segments"] == []
    rows = api.get("/api/v1/clients/?segment=gen_z").json()["results"]
    assert [r["client_no"] for r in rows] == ["A0000001"]
    assert api.get("/api/v1/clients/?segment=nope").json()["results"] == []


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_the_preview_path_answers_other_methods_as_an_unknown_segment(db, api_as, ops_user,
                                                                     method):
    response = getattr(api_as(ops_user), method)("/api/v1/segments/preview/", {}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("code", ["preview", "new", "personas", "Static"])
def test_a_segment_code_that_names_a_page_is_refused(db, api_as, ops_user, code):
    rule = {"field": "age", "op": "gte", "value": 18}
    response = api_as(ops_user).post("/api/v1/segments/", {
        "code": code, "name": "X", "kind": "rule", "rule": rule}, format="json")
    assert response.status_code == 400
    assert "code" in response.json()["error"]["fields"]
