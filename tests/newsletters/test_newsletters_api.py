"""Newsletters over the API: publications, editions, approval actions, stats, deliveries."""

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from newsletters.models import Delivery, DeliveryStatus, EditionStatus, Feedback
from segments.models import Segment
from tests.factories import ClientFactory
from tests.newsletters import make_edition, standard_sections


@pytest.fixture
def api_as(db):
    def _as(user) -> APIClient:
        api = APIClient()
        api.force_authenticate(user)
        return api

    return _as


@pytest.fixture
def segment(db):
    return Segment.objects.create(code="hnw-api", kind="static", name_en="HNW")


def test_ops_create_a_publication_and_an_edition_then_compliance_approves(
        api_as, ops_user, compliance_user, segment):
    ops = api_as(ops_user)
    response = ops.post("/api/v1/publications/", {
        "name": "HNW Weekly", "slug": "hnw-weekly", "audience": "hnw-api",
        "from_name": "Desk", "from_email": "desk@broker.example"}, format="json")
    assert response.status_code == 201, response.json()
    publication = response.json()["id"]
    response = ops.post("/api/v1/editions/", {
        "publication": publication, "subject": "Issue one", "sections": standard_sections()},
        format="json")
    assert response.status_code == 201, response.json()
    edition = response.json()
    assert edition["number"] == 1 and edition["status"] == "draft"
    assert [s["kind"] for s in edition["sections"]] == [
        "editorial", "research", "holdings", "picks", "rm_note"]
    pk = edition["id"]
    assert ops.post(f"/api/v1/editions/{pk}/submit/").json()["status"] == "submitted"
    assert ops.post(f"/api/v1/editions/{pk}/approve/").status_code == 403  # ops cannot
    review = api_as(compliance_user)
    response = review.post(f"/api/v1/editions/{pk}/approve/", {"content_version": 1},
                           format="json")
    assert response.status_code == 200 and response.json()["status"] == "approved"
    at = (timezone.now() + dt.timedelta(days=1)).isoformat()
    response = ops.post(f"/api/v1/editions/{pk}/schedule/", {"at": at}, format="json")
    assert response.json()["status"] == "scheduled"
    assert [e["to_status"] for e in response.json()["events"]] == [
        "draft", "submitted", "approved", "scheduled"]


def test_a_blocked_submission_lists_the_phrases(api_as, ops_user):
    edition = make_edition(author=ops_user, sections=[{"kind": "editorial", "body": "零风险"}])
    response = api_as(ops_user).post(f"/api/v1/editions/{edition.pk}/submit/")
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["code"] == "forbidden_phrases"
    assert body["issues"] == [{"section_position": 1, "field": "body", "phrase": "零风险",
                               "start": 0, "end": 3}]


def test_errors_are_envelopes_never_500(api_as, ops_user, compliance_user):
    ops = api_as(ops_user)
    edition = make_edition(author=ops_user)
    cases = [
        (ops.post(f"/api/v1/editions/{edition.pk}/pause/"), 409, "invalid_transition"),
        (api_as(compliance_user).post(f"/api/v1/editions/{edition.pk}/reject/", {},
                                      format="json"), 409, "invalid_transition"),
        (ops.post("/api/v1/editions/", {"publication": 999, "subject": "x"}, format="json"),
         404, None),
        (ops.post("/api/v1/editions/", ["not", "an", "object"], format="json"), 400, "invalid"),
        (ops.post("/api/v1/editions/", {"publication": edition.publication_id, "subject": "x",
                                        "sections": [{"kind": "nope"}]}, format="json"),
         400, "invalid_section"),
        (ops.post("/api/v1/editions/", {"publication": edition.publication_id, "subject": "x",
                                        "sections": [{"kind": "research",
                                                      "data": {"url": "ftp://x"}}]},
                  format="json"), 400, "invalid_section"),
        (ops.patch(f"/api/v1/editions/{edition.pk}/", {"sections": "x"}, format="json"),
         400, "invalid"),
        (ops.get("/api/v1/editions/?status=bogus"), 400, "invalid"),
        (ops.get("/api/v1/editions/?publication=abc"), 400, "invalid"),
        (ops.get("/api/v1/editions/424242/"), 404, None),
        (ops.post(f"/api/v1/editions/{edition.pk}/schedule/", {"at": "tomorrow"},
                  format="json"), 400, "invalid"),
        (ops.delete(f"/api/v1/publications/{edition.publication_id}/"), 409, "in_use"),
        (ops.post(f"/api/v1/editions/{edition.pk}/test/", {"client_no": "NOPE"},
                  format="json"), 404, "not_found"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, (response.status_code, response.content)
        assert "error" in response.json()
        if code:
            assert response.json()["error"]["code"] == code


def test_reject_needs_a_comment(api_as, ops_user, compliance_user):
    edition = make_edition(author=ops_user)
    api_as(ops_user).post(f"/api/v1/editions/{edition.pk}/submit/")
    review = api_as(compliance_user)
    response = review.post(f"/api/v1/editions/{edition.pk}/reject/", {}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "comment_required"
    response = review.post(f"/api/v1/editions/{edition.pk}/reject/", {"comment": "Sources?"},
                           format="json")
    assert response.json()["status"] == "rejected"
    assert response.json()["review_comment"] == "Sources?"


def test_an_rm_neither_reads_nor_composes(api_as, rm_a, ops_user):
    edition = make_edition(author=ops_user)
    rm = api_as(rm_a)
    assert rm.get("/api/v1/editions/").status_code == 403  # as the pages (test_input_safety)
    assert rm.get(f"/api/v1/editions/{edition.pk}/").status_code == 403
    assert rm.post(f"/api/v1/editions/{edition.pk}/submit/").status_code == 403
    assert rm.patch(f"/api/v1/editions/{edition.pk}/", {"subject": "x"},
                    format="json").status_code == 403
    assert APIClient().get("/api/v1/editions/").status_code in (401, 403)


def test_detail_has_statistics_and_deliveries_are_for_newsletter_staff_only(
        api_as, ops_user, rm_a, rm_b):
    edition = make_edition(author=ops_user)
    edition.status = EditionStatus.SENDING
    edition.save()
    mine = ClientFactory(rm=rm_a, client_no="MINE1")
    theirs = ClientFactory(rm=rm_b, client_no="THEIRS1")
    rows = [
        (mine, DeliveryStatus.SENT, "", True),
        (theirs, DeliveryStatus.SENT, "", False),
        (ClientFactory(rm=rm_b), DeliveryStatus.EXCLUDED, "no_consent", False),
        (ClientFactory(rm=rm_b), DeliveryStatus.FAILED, "", False),
    ]
    for i, (client, status, reason, opened) in enumerate(rows):
        Delivery.objects.create(source="newsletter", source_id=edition.id,
                                client=client, status=status,
                                exclusion_reason=reason, message_id=f"<m{i}@x>", token=f"t{i}",
                                opened_at=timezone.now() if opened else None)
    Feedback.objects.create(delivery=Delivery.objects.get(client=mine), rating=4,
                            comment="Useful")
    Feedback.objects.create(delivery=Delivery.objects.get(client=theirs), rating=1)
    stats = api_as(ops_user).get(f"/api/v1/editions/{edition.pk}/").json()["stats"]
    assert stats["ratings"] == {"1": 1, "2": 0, "3": 0, "4": 1, "5": 0}
    Feedback.objects.filter(rating=1).delete()
    stats = api_as(ops_user).get(f"/api/v1/editions/{edition.pk}/").json()["stats"]
    assert (stats["audience"], stats["sent"], stats["failed"], stats["excluded_total"]) == (
        4, 2, 1, 1)
    assert stats["excluded"]["no_consent"] == 1
    assert (stats["opened"], stats["rated"], stats["comments"], stats["average_rating"]) == (
        1, 1, 1, 4.0)
    assert api_as(rm_a).get(f"/api/v1/editions/{edition.pk}/deliveries/").status_code == 403
    page = api_as(ops_user).get(f"/api/v1/editions/{edition.pk}/deliveries/").json()
    assert len(page["results"]) == 4


def test_the_schema_lists_the_newsletter_routes(db):
    import json

    schema = json.loads(APIClient().get("/api/schema/?format=json").content)
    for path in ("/api/v1/publications/", "/api/v1/editions/", "/api/v1/editions/{id}/",
                 "/api/v1/editions/{id}/approve/", "/api/v1/editions/{id}/deliveries/"):
        assert path in schema["paths"], path
