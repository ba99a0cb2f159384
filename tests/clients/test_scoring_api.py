"""The value-scoring API: runs, a client's score history, schemes, list filter and ordering."""

import datetime as dt

import pytest
from django.utils import timezone

from clients.scoring.models import ScoringChunk, ScoringRun, ScoringScheme
from tests.clients.test_scoring_pages import buy, run_scoring, yesterday
from tests.factories import ClientFactory

RUNS = "/api/v1/scoring/runs/"
SCHEMES = "/api/v1/scoring/schemes/"


def assert_error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body["error"]) == {"code", "message", "fields"}
    return body["error"]


@pytest.fixture
def development_client(client_of_a):
    buy(client_of_a, amount="100000", days_ago=10, times=2)
    return client_of_a


# --- runs -----------------------------------------------------------------------------------
def test_starting_a_run_answers_202_with_the_run(api_as, ops_user, development_client,
                                                django_capture_on_commit_callbacks):
    api = api_as(ops_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(RUNS, {"as_of": yesterday().isoformat()}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["as_of"] == yesterday().isoformat()
    assert body["scheme_version"] == 1 and body["trigger"] == "api"
    assert body["created_by"] == ops_user.username
    detail = api.get(f"{RUNS}{body['id']}/").json()
    assert detail["status"] == "succeeded"
    assert detail["progress"] == {"done": 1, "total": 1}
    assert detail["tier_counts"] == {"development": 1}
    assert {"aggregate", "band", "write"} <= set(detail["timings"])
    assert detail["error"] == ""
    listed = api.get(RUNS).json()["results"]
    assert [r["id"] for r in listed] == [body["id"]]


def test_the_default_as_of_is_yesterday(api_as, ops_user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api_as(ops_user).post(RUNS, {}, format="json")
    assert response.status_code == 202
    assert response.json()["as_of"] == yesterday().isoformat()


@pytest.mark.parametrize("body", [{"as_of": "2026-02-30"}, {"as_of": "tomorrow"}, {"as_of": 5},
                                  [1, 2], "x", {"as_of": None}])
def test_bad_run_input_is_a_400(api_as, ops_user, body):
    assert_error(api_as(ops_user).post(RUNS, body, format="json"), 400)
    assert ScoringRun.objects.count() == 0


def test_a_future_as_of_is_a_400(api_as, ops_user):
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    error = assert_error(api_as(ops_user).post(RUNS, {"as_of": tomorrow.isoformat()},
                                               format="json"), 400)
    assert "as_of" in error["fields"]


def test_a_date_already_running_is_a_409(api_as, ops_user):
    ScoringRun.objects.create(as_of=yesterday(), scheme=ScoringScheme.objects.get(version=1),
                              status="running")
    error = assert_error(api_as(ops_user).post(RUNS, {"as_of": yesterday().isoformat()},
                                               format="json"), 409)
    assert error["code"] == "run_active"


@pytest.mark.parametrize("who", ["rm_a", "branch_manager", "compliance_user"])
def test_only_ops_and_admin_start_or_resume_runs(db, request, api_as, who):
    api = api_as(request.getfixturevalue(who))
    assert_error(api.post(RUNS, {}, format="json"), 403)
    assert_error(api.post(f"{RUNS}1/resume/", format="json"), 403)
    assert_error(api.post(SCHEMES, {}, format="json"), 403)
    assert ScoringRun.objects.count() == 0


def test_an_unknown_run_is_a_404(api_as, ops_user):
    assert_error(api_as(ops_user).get(f"{RUNS}999999/"), 404)
    assert_error(api_as(ops_user).post(f"{RUNS}999999/resume/"), 404)


def test_resume_completes_a_failed_run_and_refuses_a_succeeded_one(
        api_as, ops_user, development_client, django_capture_on_commit_callbacks):
    run = run_scoring(django_capture_on_commit_callbacks)
    ScoringRun.objects.filter(pk=run.pk).update(status="failed", progress_done=0, chunks_done=0)
    ScoringChunk.objects.filter(run=run).update(done=False)
    api = api_as(ops_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"{RUNS}{run.pk}/resume/")
    assert response.status_code == 202
    assert api.get(f"{RUNS}{run.pk}/").json()["status"] == "succeeded"
    assert assert_error(api.post(f"{RUNS}{run.pk}/resume/"), 409)["code"] == "run_finished"


# --- a client's scores ------------------------------------------------------------------------
def test_a_clients_score_history_is_newest_first_with_the_contract_names(
        api_as, rm_a, development_client, django_capture_on_commit_callbacks):
    older = yesterday() - dt.timedelta(days=400)
    run_scoring(django_capture_on_commit_callbacks, older)
    run_scoring(django_capture_on_commit_callbacks)
    history = api_as(rm_a).get(f"/api/v1/clients/{development_client.client_no}/scores/").json()
    assert [h["as_of"] for h in history] == [yesterday().isoformat(), older.isoformat()]
    latest = history[0]
    assert {"as_of", "scheme_version", "amount", "frequency", "benefit", "recency_days",
            "amount_score", "frequency_score", "benefit_score", "total_score",
            "tier"} <= set(latest)
    assert latest["amount"] == "200000.00" and latest["amount_score"] == 4
    assert latest["tier"] == "development" and latest["total_score"] == 6
    assert latest["recency_days"] is not None
    assert history[1]["tier"] == "long_tail" and history[1]["recency_days"] is None


def test_another_rms_client_has_no_scores_for_you(api_as, rm_b, development_client):
    assert_error(api_as(rm_b).get(f"/api/v1/clients/{development_client.client_no}/scores/"),
                 404)


def test_the_client_detail_carries_the_latest_score_or_null(
        api_as, rm_a, development_client, django_capture_on_commit_callbacks):
    url = f"/api/v1/clients/{development_client.client_no}/"
    assert api_as(rm_a).get(url).json()["score"] is None
    run_scoring(django_capture_on_commit_callbacks)
    score = api_as(rm_a).get(url).json()["score"]
    assert score["tier"] == "development" and score["scheme_version"] == 1


# --- list filter and ordering ----------------------------------------------------------------
@pytest.fixture
def scored_book(rm_a, development_client, django_capture_on_commit_callbacks):
    guiding = ClientFactory(client_no="A0000010", rm=rm_a, branch=rm_a.branch)
    buy(guiding, amount="1000", days_ago=5, times=130)
    run_scoring(django_capture_on_commit_callbacks)
    never = ClientFactory(client_no="A0000011", rm=rm_a, branch=rm_a.branch)
    return guiding, development_client, never


def nos(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["client_no"] for row in response.json()["results"]]


def test_the_client_list_filters_by_tier(api_as, rm_a, scored_book):
    api = api_as(rm_a)
    assert nos(api.get("/api/v1/clients/", {"tier": "guiding"})) == ["A0000010"]
    assert nos(api.get("/api/v1/clients/", {"tier": "development"})) == ["A0000001"]
    assert_error(api.get("/api/v1/clients/", {"tier": "vip"}), 400)


def test_the_client_list_orders_by_total_score_unscored_last_and_pages_through(api_as, rm_a,
                                                                              scored_book):
    api = api_as(rm_a)
    assert nos(api.get("/api/v1/clients/", {"ordering": "-total_score"})) == [
        "A0000010", "A0000001", "A0000011"]
    assert nos(api.get("/api/v1/clients/", {"ordering": "total_score"})) == [
        "A0000001", "A0000010", "A0000011"]
    seen, url = [], "/api/v1/clients/?ordering=-total_score&page_size=1"
    while url:
        page = api.get(url).json()
        seen += [row["client_no"] for row in page["results"]]
        url = page["next"]
    assert seen == ["A0000010", "A0000001", "A0000011"]
    assert_error(api.get("/api/v1/clients/", {"ordering": "name; drop"}), 400)


@pytest.mark.parametrize("who", ["rm_a", "ops_user"])
@pytest.mark.parametrize("ordering", ["-total_score", "total_score"])
def test_the_score_keyset_pages_scored_then_unscored_both_ways(db, request, api_as, monkeypatch,
                                                              who, ordering):
    """next links walk scored clients by (score, id) then the unscored by id, pages crossing
    the boundary; previous links walk back to the start. Ops walk the score index (as at a
    million: more clients than the in-memory limit), the RM's book is sorted in memory."""
    from tests.clients.test_scoring_pages import scored_and_unscored

    rm = request.getfixturevalue("rm_a")
    if who == "ops_user":
        monkeypatch.setattr("clients.selectors.SCORE_SORT_IN_MEMORY_MAX", 5)
    descending, ascending = scored_and_unscored(rm, scored=20, unscored=12)
    expected = descending if ordering == "-total_score" else ascending
    api = api_as(request.getfixturevalue(who))
    pages, url = [], f"/api/v1/clients/?ordering={ordering}&page_size=7"
    while url:
        body = api.get(url).json()
        pages.append(([r["client_no"] for r in body["results"]], body["previous"]))
        url = body["next"]
    assert [no for rows, _ in pages for no in rows] == expected
    assert pages[0][1] is None
    # Back from the last page: each previous link gives the page before it.
    back, url = [], pages[-1][1]
    while url:
        body = api.get(url).json()
        back.insert(0, [r["client_no"] for r in body["results"]])
        url = body["previous"]
    assert back == [rows for rows, _ in pages[:-1]]


def test_a_forged_score_cursor_is_a_404(api_as, rm_a, scored_book):
    from rest_framework.pagination import Cursor

    from clients.api.clients import ClientPagination

    pager = ClientPagination()
    pager.base_url = "http://testserver/api/v1/clients/?ordering=-total_score"
    url = pager.encode_cursor(Cursor(offset=0, reverse=False, position="x.1"))
    assert api_as(rm_a).get(url.replace("http://testserver", "")).status_code == 404


# --- schemes -----------------------------------------------------------------------------------
def scheme_body(**changes) -> dict:
    body = {"window_months": 12, "amount_bounds": [10000, 50000, 100000, 500000, 2000000],
            "frequency_bounds": [2, 5, 10, 50, 100],
            "benefit_bounds": [10000, 30000, 100000, 300000, 500000], "high_score": 4,
            "recent_days": 30,
            "tier_precedence": ["guiding", "development", "potential", "long_tail"]}
    body.update(changes)
    return body


def test_schemes_are_listed_and_a_new_version_is_published(api_as, ops_user, rm_a):
    assert [s["version"] for s in api_as(rm_a).get(SCHEMES).json()] == [1]
    response = api_as(ops_user).post(SCHEMES, scheme_body(frequency_bounds=[1.5, 5, 10, 50, 100]),
                                     format="json")
    assert response.status_code == 201, response.content
    assert response.json()["version"] == 2
    assert response.json()["published_by"] == ops_user.username
    assert ScoringScheme.objects.get(version=2).frequency_bounds == [1.5, 5, 10, 50, 100]
    assert [s["version"] for s in api_as(rm_a).get(SCHEMES).json()] == [2, 1]


@pytest.mark.parametrize("changes, field, words", [
    ({"amount_bounds": [10000, 5000, 100000, 500000, 1000000]}, "amount_bounds", "band 3"),
    ({"benefit_bounds": [10000, 30000]}, "benefit_bounds", "five bounds"),
    ({"frequency_bounds": [-1, 5, 10, 50, 100]}, "frequency_bounds", "band 2"),
    ({"tier_precedence": ["guiding", "vip", "potential", "long_tail"]}, "tier_precedence", "vip"),
    ({"window_months": 0}, "window_months", "window"),
    ({"amount_bounds": "lots"}, "amount_bounds", ""),
    ({"high_score": "x"}, "high_score", ""),
])
def test_an_invalid_scheme_is_a_400_naming_the_band(api_as, ops_user, changes, field, words):
    error = assert_error(api_as(ops_user).post(SCHEMES, scheme_body(**changes), format="json",
                                               HTTP_ACCEPT_LANGUAGE="en"), 400)
    assert field in error["fields"]
    assert words in " ".join(error["fields"][field]) + error["message"]
    assert not ScoringScheme.objects.filter(version=2).exists()


def test_the_message_is_in_the_callers_language(api_as, ops_user):
    body = scheme_body(amount_bounds=[10000, 5000, 100000, 500000, 1000000])
    error = assert_error(api_as(ops_user).post(SCHEMES, body, format="json",
                                               HTTP_ACCEPT_LANGUAGE="zh-hans"), 400)
    assert "第 3 档" in error["message"]


def test_a_scheme_body_that_is_not_an_object_is_a_400(api_as, ops_user):
    assert_error(api_as(ops_user).post(SCHEMES, [1, 2], format="json"), 400)
