"""Reads of segments: one rule for inactive segments, shared by the list page, a segment's page
and the API; and the client 360 page built without clients importing the apps above it."""

import ast
from pathlib import Path

import pytest

from segments.models import Segment, SegmentMembership
from segments.selectors import (
    client_segment_groups,
    segment_choices,
    segment_get,
    segment_list,
    static_lists,
)
from segments.services import segment_create
from tests.factories import ClientFactory

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def retired_list(rm_a):
    """A static list with one client of rm_a, switched off."""
    member = ClientFactory(client_no="R0000001", rm=rm_a, branch=rm_a.branch)
    segment = segment_create(code="retired_list", name_en="Retired list", name_zh="停用名单",
                             kind="static", client_nos=[member.client_no])
    Segment.objects.filter(pk=segment.pk).update(is_active=False)
    segment.refresh_from_db()
    return segment


def test_an_inactive_segment_is_listed_and_found_by_its_code(retired_list):
    assert retired_list in segment_list()
    assert segment_get(code="retired_list") == retired_list


def test_an_inactive_segment_is_on_the_list_page_flagged_and_its_page_answers(
        logged_in, ops_user, retired_list):
    web = logged_in(ops_user)
    listing = web.get("/segments/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    row = listing[listing.index('data-code="retired_list"'):]
    row = row[:row.index("</tr>")]
    assert "segment-inactive" in row
    page = web.get("/segments/retired_list/", HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200
    assert 'id="segment-inactive"' in page.content.decode()
    assert [c.client_no for c in page.context["page"].rows] == ["R0000001"]


def test_the_list_page_and_the_api_list_the_same_segments_inactive_ones_included(
        logged_in, api_as, ops_user, retired_list):
    listing = logged_in(ops_user).get("/segments/")
    on_page = {row["segment"].code for group in listing.context["groups"]
               for row in group["rows"]}
    api = api_as(ops_user)
    listed = {s["code"]: s for s in api.get("/api/v1/segments/").json()}
    assert on_page == set(listed) and "retired_list" in on_page
    assert listed["retired_list"]["is_active"] is False
    detail = api.get("/api/v1/segments/retired_list/")
    assert detail.status_code == 200 and detail.json()["is_active"] is False
    members = api.get("/api/v1/segments/retired_list/members/").json()
    assert [m["client_no"] for m in members["results"]] == ["R0000001"]


def test_an_inactive_segment_is_offered_nowhere_and_left_off_the_client_card(retired_list):
    client = SegmentMembership.objects.get(segment=retired_list).client
    assert "retired_list" not in [code for code, _label in segment_choices()]
    assert retired_list not in static_lists()
    shown = [s for g in client_segment_groups(client=client)["segment_groups"]
             for s in g["segments"]]
    assert retired_list not in shown


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at module level or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module)
    return names


ABOVE_CLIENTS = ("segments", "outreach", "newsletters", "campaigns", "analytics")


@pytest.mark.parametrize("module", ["clients/views.py", "clients/templatetags/crm_tags.py"])
def test_the_client_pages_import_no_app_above_clients(module):
    above = {m for m in imported_modules(ROOT / module)
             if m.split(".")[0] in ABOVE_CLIENTS}
    assert above == set()


def test_the_client_360_page_shows_the_cards_of_the_apps_above(logged_in, rm_a, retired_list):
    """The cards come from each app's template tag: segments, newsletters, outreach."""
    member = SegmentMembership.objects.get(segment=retired_list).client
    segment_create(code="current_list", name_en="Current list", kind="static",
                   client_nos=[member.client_no])
    body = logged_in(rm_a).get(f"/clients/{member.client_no}/",
                               HTTP_ACCEPT_LANGUAGE="en").content.decode()
    for card in ('id="segments"', 'id="email-consent"', 'id="follow-ups"'):
        assert card in body
    assert 'data-code="current_list"' in body and 'data-code="retired_list"' not in body


def queries_of(web, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert web.get(url).status_code == 200
    return len(captured)


def static_list_of(code: str, clients) -> Segment:
    return segment_create(code=code, name_en=code, kind="static",
                          client_nos=[c.client_no for c in clients])


def test_a_segments_page_costs_the_same_queries_for_3_members_and_for_25(
        logged_in, rm_a, ops_user):
    """An N+1 over the members table (RM, branch, score) fails here."""
    static_list_of("small_list", ClientFactory.create_batch(3, rm=rm_a, branch=rm_a.branch))
    static_list_of("big_list", ClientFactory.create_batch(25, rm=rm_a, branch=rm_a.branch))
    web = logged_in(ops_user)
    queries_of(web, "/segments/small_list/")  # warm: content types, sessions
    assert queries_of(web, "/segments/small_list/") == queries_of(web, "/segments/big_list/")


def test_the_segment_list_costs_the_same_queries_for_2_lists_and_for_12(logged_in, rm_a):
    member = ClientFactory(rm=rm_a, branch=rm_a.branch)
    for n in range(2):
        static_list_of(f"list_{n}", [member])
    web = logged_in(rm_a)
    queries_of(web, "/segments/")
    few = queries_of(web, "/segments/")
    for n in range(2, 12):
        static_list_of(f"list_{n}", [member])
    assert queries_of(web, "/segments/") == few


def test_the_client_360_page_costs_the_same_queries_in_1_segment_and_in_8(logged_in, rm_a):
    member = ClientFactory(rm=rm_a, branch=rm_a.branch)
    static_list_of("list_0", [member])
    web = logged_in(rm_a)
    url = f"/clients/{member.client_no}/"
    queries_of(web, url)
    few = queries_of(web, url)
    for n in range(1, 8):
        static_list_of(f"list_{n}", [member])
    assert queries_of(web, url) == few
