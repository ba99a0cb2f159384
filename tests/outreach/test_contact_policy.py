"""GET/PUT /api/v1/contact-policy/ (shared/API.md; DOMAIN.md "Contact policy"): the domain's
defaults until ops save one, validated whole, audited, ops and admins only."""

import pytest
from rest_framework.test import APIClient

from core.models import AuditLog
from outreach.models import ContactPolicy
from outreach.selectors import contact_policy_get
from tests.clients.test_api import assert_error

URL = "/api/v1/contact-policy/"
GOOD = {"caps": [{"channel": "all", "max_contacts": 3, "window_days": 7},
                 {"channel": "sms", "max_contacts": 1, "window_days": 14}],
        "quiet_hours": {"start": "20:30", "end": "09:00", "channels": ["phone", "sms"]}}


def api_as(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def test_the_defaults_are_the_domains_until_someone_saves_one(ops_user):
    body = api_as(ops_user).get(URL).json()
    assert body["caps"] == [{"channel": "all", "max_contacts": 2, "window_days": 7},
                            {"channel": "sms", "max_contacts": 1, "window_days": 7},
                            {"channel": "phone", "max_contacts": 1, "window_days": 14}]
    assert body["quiet_hours"] == {"start": "21:00", "end": "08:30",
                                   "channels": ["sms", "app_push", "phone"],
                                   "timezone": "Asia/Shanghai"}
    assert body["updated_at"] is None


def test_ops_replace_the_policy_and_the_change_is_audited(ops_user):
    response = api_as(ops_user).put(URL, GOOD, format="json")
    assert response.status_code == 200, response.content
    body = api_as(ops_user).get(URL).json()
    assert body["caps"] == GOOD["caps"]
    assert body["quiet_hours"] == {"start": "20:30", "end": "09:00",
                                   "channels": ["sms", "phone"], "timezone": "Asia/Shanghai"}
    assert body["updated_at"]
    row = AuditLog.objects.get(object_type="contact_policy")
    assert row.actor == ops_user and row.action == "settings_changed"
    assert row.detail["before"]["caps"][0]["max_contacts"] == 2
    assert row.detail["after"]["caps"][0]["max_contacts"] == 3


@pytest.mark.parametrize("change, field", [
    ({"caps": "two a week"}, "caps"),
    ({"caps": [{"channel": "fax", "max_contacts": 1, "window_days": 7}]}, "caps[0].channel"),
    ({"caps": [{"channel": "sms", "max_contacts": -1, "window_days": 7}]},
     "caps[0].max_contacts"),
    ({"caps": [{"channel": "sms", "max_contacts": 1, "window_days": 0}]}, "caps[0].window_days"),
    ({"caps": [{"channel": "sms", "max_contacts": 1, "window_days": 400}]},
     "caps[0].window_days"),
    ({"caps": [{"channel": "sms", "max_contacts": True, "window_days": 7}]},
     "caps[0].max_contacts"),
    ({"caps": [{"channel": "sms", "max_contacts": 1, "window_days": 7},
               {"channel": "sms", "max_contacts": 2, "window_days": 7}]}, "caps[1].channel"),
    ({"caps": [{"channel": "sms", "max_contacts": 1}]}, "caps[0]"),
    ({"caps": [{"channel": {}, "max_contacts": 1, "window_days": 7}]}, "caps[0].channel"),
    ({"caps": [{"channel": ["sms"], "max_contacts": 1, "window_days": 7}]}, "caps[0].channel"),
    ({"quiet_hours": {"start": "25:00", "end": "08:30", "channels": []}}, "quiet_hours.start"),
    ({"quiet_hours": {"start": "21:00", "end": "8.30pm", "channels": []}}, "quiet_hours.end"),
    ({"quiet_hours": {"start": "21:00", "end": "08:30", "channels": ["carrier pigeon"]}},
     "quiet_hours.channels"),
    ({"quiet_hours": None}, "quiet_hours"),
    ({"extra": 1}, "extra"),
])
def test_a_bad_policy_is_a_400_naming_the_field_and_nothing_is_saved(ops_user, change, field):
    response = api_as(ops_user).put(URL, {**GOOD, **change}, format="json")
    assert field in assert_error(response, 400)["error"]["fields"]
    assert not ContactPolicy.objects.exists()
    assert not AuditLog.objects.filter(object_type="contact_policy").exists()


@pytest.mark.parametrize("who", ["rm_a", "branch_manager", "compliance_user"])
def test_only_ops_and_admins_read_or_change_it(request, who):
    user = request.getfixturevalue(who)
    assert_error(api_as(user).get(URL), 403)
    assert_error(api_as(user).put(URL, GOOD, format="json"), 403)
    assert not ContactPolicy.objects.exists()


def test_a_body_that_is_not_an_object_is_a_400(admin_user_):
    assert_error(api_as(admin_user_).put(URL, [GOOD], format="json"), 400)


def test_ops_edit_the_policy_on_its_page_and_a_mistake_keeps_the_old_one(ops_user, rm_a,
                                                                         logged_in):
    page = logged_in(ops_user)
    html = page.get("/contact-policy/").content.decode()
    assert 'name="cap-0-channel"' in html and 'value="21:00"' in html
    response = page.post("/contact-policy/", {
        "cap-0-channel": "all", "cap-0-max_contacts": "3", "cap-0-window_days": "7",
        "cap-1-channel": "sms", "cap-1-max_contacts": "1", "cap-1-window_days": "30",
        "quiet-start": "22:00", "quiet-end": "08:00", "quiet-channels": ["sms", "phone"]})
    assert response.status_code == 302
    policy = contact_policy_get()
    assert policy["caps"] == [{"channel": "all", "max_contacts": 3, "window_days": 7},
                              {"channel": "sms", "max_contacts": 1, "window_days": 30}]
    assert policy["quiet_hours"]["channels"] == ["sms", "phone"]
    bad = page.post("/contact-policy/", {"cap-0-channel": "all", "cap-0-max_contacts": "3",
                                         "cap-0-window_days": "400", "quiet-start": "22:00",
                                         "quiet-end": "08:00"})
    assert bad.status_code == 400
    assert "value=\"400\"" in bad.content.decode()  # what was typed stays
    assert contact_policy_get()["caps"][0]["window_days"] == 7
    assert logged_in(rm_a).get("/contact-policy/").status_code == 403
