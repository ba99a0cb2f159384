"""The campaign pages: designer with its live preview, review, workflow, target list, results
and their export, and who may open what."""

from html.parser import HTMLParser

import pytest

from campaigns.launch import campaign_launch_run, campaign_steps_run
from campaigns.models import Campaign, CampaignMember
from core.models import AuditLog
from tests.factories import ClientFactory

from .conftest import static_segment

pytestmark = pytest.mark.django_db


def designer_post(**overrides) -> dict:
    post = {
        "code": "page-made", "name": "页面创建的活动", "scenario": "ad_hoc",
        "goal_metric": "conversion", "goal_target": "0.05", "goal_window_days": "30",
        "include": ["spring_list"], "products": ["BOND01"], "priority": "4",
        "holdout_pct": "20", "step-0-channel": "phone", "step-0-delay": "0",
        "step-0-v0-code": "A", "step-0-v0-share": "60", "step-0-v0-subject": "问候",
        "step-0-v0-body": "{name}您好，我是{rm_name}。",
        "step-0-v1-code": "B", "step-0-v1-share": "40", "step-0-v1-subject": "推荐",
        "step-0-v1-body": "{姓名}您好，{产品}适合您。",
    }
    post.update(overrides)
    return post


def test_the_designer_saves_a_draft_in_the_apis_shape(audience, bond, ops_author, logged_in):
    response = logged_in(ops_author).post("/campaigns/new/", designer_post())
    assert response.status_code == 302
    campaign = Campaign.objects.get(code="page-made")
    assert campaign.steps[0]["variants"][1] == {"code": "B", "share": 40, "subject": "推荐",
                                                "body": "{姓名}您好，{产品}适合您。"}
    assert campaign.audience == {"include": ["spring_list"], "exclude": []}
    assert campaign.holdout_pct == 20


def test_the_designer_shows_what_is_wrong_and_keeps_what_was_typed(audience, bond, ops_author,
                                                                   logged_in):
    response = logged_in(ops_author).post("/campaigns/new/", designer_post(**{
        "step-0-v1-share": "30", "step-0-v0-body": "{name} 您的余额 {balance}"}))
    assert response.status_code == 400
    html = response.content.decode()
    assert "{balance}" in html  # the unknown placeholder is named
    assert "90" in html  # the shares' sum
    assert "页面创建的活动" in html  # nothing typed is lost
    assert not Campaign.objects.exclude(author__username="crm-system").exists()  # but seeded


def test_the_live_preview_counts_the_audience_after_each_exclusion(audience, bond, ops_author,
                                                                  logged_in, rm_a):
    static_segment("more", [ClientFactory(rm=rm_a, consent_phone=False)])
    post = designer_post(include=["spring_list", "more"])
    response = logged_in(ops_author).post("/campaigns/preview/", post)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="preview-audience">41<' in html
    assert 'data-reason="no_consent"' in html
    assert 'id="preview-eligible">40<' in html
    assert "preview-mde" in html


def test_review_shows_each_variant_rendered_for_sample_clients(draft, compliance_user,
                                                               logged_in, audience_clients):
    html = logged_in(compliance_user).get("/campaigns/spring-bond/").content.decode()
    first = audience_clients[0]
    assert f"{first.name}您好，稳健债券1号（R2）适合您。" in html
    assert 'id="approve-campaign"' not in html  # not submitted yet


def test_the_workflow_runs_from_the_pages(draft, ops_author, compliance_user, client):
    client.force_login(ops_author)
    client.post("/campaigns/spring-bond/submit/")
    client.force_login(compliance_user)
    page = client.get("/campaigns/spring-bond/").content.decode()
    assert 'id="approve-campaign"' in page
    client.post("/campaigns/spring-bond/approve/")
    client.force_login(ops_author)
    client.post("/campaigns/spring-bond/launch/")
    campaign = Campaign.objects.get(code="spring-bond")
    assert campaign.status == "scheduled"
    campaign_launch_run(launch_id=campaign.launch.pk)
    page = client.get("/campaigns/spring-bond/").content.decode()
    assert 'data-arm="control">control: 8<' in page


def test_an_rm_sees_only_their_clients_on_the_target_list(launched, rm_a, rm_b, logged_in):
    html = logged_in(rm_a).get("/campaigns/spring-bond/members/").content.decode()
    assert html.count("data-member=") == 40
    html = logged_in(rm_b).get("/campaigns/spring-bond/members/").content.decode()
    assert html.count("data-member=") == 0
    assert logged_in(rm_b).get("/api/v1/campaigns/spring-bond/members/").json()["results"] == []


def test_only_operations_design_campaigns(rm_a, logged_in):
    response = logged_in(rm_a).get("/campaigns/new/")
    assert response.status_code == 403
    assert AuditLog.objects.filter(action="access_denied", actor=rm_a).exists()


def test_results_page_and_its_export_which_is_audited(launched, ops_author, logged_in):
    campaign_steps_run(today=launched.launch_day)
    api = logged_in(ops_author)
    html = api.get("/campaigns/spring-bond/results/").content.decode()
    assert 'data-arm="control"' in html and 'data-arm="A"' in html
    assert "campaign-results-data" in html
    response = api.get("/campaigns/spring-bond/results/?format=csv")
    body = b"".join(response.streaming_content).decode()
    lines = body.lstrip("\ufeff").splitlines()
    assert len(lines[0].split(",")) == 13
    assert [line.split(",")[0] for line in lines[1:]] == ["A", "B", "control"]
    assert AuditLog.objects.filter(action="export", object_id="spring-bond").exists()
    xlsx = api.get("/campaigns/spring-bond/results/?format=xlsx")
    assert xlsx.content[:2] == b"PK"
    assert CampaignMember.objects.filter(campaign=launched).count() == 40


def test_the_review_page_names_each_steps_channel_in_the_users_language(draft, ops_author,
                                                                       client):
    from django.utils import translation

    from outreach.models import Channel

    client.force_login(ops_author)
    with translation.override("zh-hans"):
        html = client.get(f"/campaigns/{draft.code}/", HTTP_ACCEPT_LANGUAGE="zh-hans").content
        label = str(Channel.PHONE.label)
    assert f'data-channel="phone">{label}</span>'.encode() in html
    assert label != "phone"


class _FormValues(HTMLParser):
    """What a browser would post from the designer's form as rendered: inputs, checked boxes,
    selected options and textareas (no JavaScript involved)."""

    def __init__(self):
        super().__init__()
        self.values: dict[str, list[str]] = {}
        self._select = self._textarea = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "input" and a.get("name"):
            if a.get("type") == "checkbox":
                if "checked" in a:
                    self.values.setdefault(a["name"], []).append(a.get("value") or "on")
            else:
                self.values.setdefault(a["name"], []).append(a.get("value") or "")
        elif tag == "select":
            self._select = a.get("name")
        elif tag == "option" and self._select and "selected" in a:
            self.values.setdefault(self._select, []).append(a.get("value", ""))
        elif tag == "textarea":
            self._textarea = a.get("name")
            self.values.setdefault(self._textarea, []).append("")

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.values[self._textarea][-1] += data


def test_the_designer_builds_a_journey_with_a_cooldown_and_a_branch_on_no_response(
        audience, bond, ops_author, logged_in):
    response = logged_in(ops_author).post("/campaigns/new/", designer_post(**{
        "always_on": "on", "reentry_cooldown_days": "14",
        "step-0-channel": "sms", "step-1-channel": "phone", "step-1-delay": "3",
        "step-1-when": "no_response", "step-1-v0-code": "A", "step-1-v0-share": "60",
        "step-1-v0-body": "{name}您好，短信收到了吗？", "step-1-v1-code": "B",
        "step-1-v1-share": "40", "step-1-v1-body": "{name}您好，{产品}了解一下？"}))
    assert response.status_code == 302, response.content.decode()[:2000]
    campaign = Campaign.objects.get(code="page-made")
    assert campaign.always_on and campaign.reentry_cooldown_days == 14
    assert campaign.steps[1]["when"] == "no_response" and "when" not in campaign.steps[0]
    page = logged_in(ops_author).get("/campaigns/page-made/").content.decode()
    assert 'data-when="no_response"' in page and 'id="journey-summary"' in page


def test_the_designer_names_a_wrong_cooldown_and_saves_nothing(audience, bond, ops_author,
                                                              logged_in):
    response = logged_in(ops_author).post("/campaigns/new/", designer_post(**{
        "always_on": "on", "reentry_cooldown_days": "-3"}))
    assert response.status_code == 400
    assert 'id="reentry_cooldown_days"' in response.content.decode()
    assert "is-invalid" in response.content.decode().split('id="reentry_cooldown_days"')[0][-300:]
    assert not Campaign.objects.filter(code="page-made").exists()


@pytest.mark.parametrize("code", ["journey-zombie-reactivation", "journey-onboarding"])
def test_saving_a_seeded_journey_unchanged_from_the_designer_keeps_all_of_it(code, ops_author,
                                                                             logged_in):
    before = Campaign.objects.get(code=code)
    client = logged_in(ops_author)
    form = _FormValues()
    form.feed(client.get(f"/campaigns/{code}/edit/").content.decode())
    response = client.post(f"/campaigns/{code}/edit/", form.values)
    assert response.status_code == 302, response.content.decode()[:2000]
    after = Campaign.objects.get(code=code)
    assert after.always_on and after.reentry_cooldown_days == before.reentry_cooldown_days
    assert after.steps == before.steps
    assert after.audience == before.audience and after.goal == before.goal
    assert after.content_version == before.content_version  # nothing the client sees changed
