"""Where people see value scores: the client 360 card, the client list, the scoring page."""

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from django.utils import timezone

from clients.scoring.models import ScoringChunk, ScoringRun, ScoringScheme
from clients.scoring.services import scoring_run_start
from core.models import AuditAction, AuditLog
from tests.factories import ClientFactory, ProductFactory, TransactionFactory

SCORING = "/scoring/"
LIST = "/clients/"


def yesterday() -> dt.date:
    return timezone.localdate() - dt.timedelta(days=1)


def run_scoring(capture, as_of: dt.date | None = None) -> ScoringRun:
    """A run as the page starts it; with no broker its chunks run eagerly after commit."""
    with capture(execute=True):
        run = scoring_run_start(as_of=as_of or yesterday(), trigger="command")
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    return run


def buy(client, *, amount: str, days_ago: int, revenue: str = "500", times: int = 1) -> None:
    product = ProductFactory()
    for _ in range(times):
        TransactionFactory(client=client, product=product, amount=Decimal(amount),
                           revenue=Decimal(revenue),
                           traded_at=timezone.now() - dt.timedelta(days=days_ago))


@pytest.fixture
def development_client(client_of_a):
    """Two purchases of 100,000 ten days ago: amount band 4, low frequency -> development."""
    buy(client_of_a, amount="100000", days_ago=10, times=2)
    return client_of_a


@pytest.fixture
def scored(development_client, django_capture_on_commit_callbacks):
    return run_scoring(django_capture_on_commit_callbacks)


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


# --- client 360 -----------------------------------------------------------------------------
def test_the_360_card_explains_why_a_client_is_key_development(logged_in, rm_a,
                                                              development_client, scored):
    response = logged_in(rm_a).get(f"/clients/{development_client.client_no}/",
                                   HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    card = text(response).split('id="value-score"')[1].split("</section>")[0]
    assert 'data-tier="development"' in card
    assert 'data-score="amount">4<' in card
    assert 'data-score="frequency">1<' in card
    assert 'id="score-total">6<' in card
    assert "200,000" in card  # the raw amount bought
    assert "100,000 – 500,000 → <strong>4</strong>" in card  # the band it fell in
    assert "2 purchases in 12 months" in card
    assert "Key development: amount score 4 ≥ 4" in card
    assert f"as of {yesterday():%Y-%m-%d} · scheme v1" in card


def test_the_card_is_translated(logged_in, rm_a, development_client, scored):
    http = logged_in(rm_a)
    http.cookies["django_language"] = "zh-hans"
    body = text(http.get(f"/clients/{development_client.client_no}/"))
    assert "重要发展客户" in body
    assert "价值评分" in body


def test_a_client_never_scored_says_so(logged_in, rm_a, client_of_a):
    response = logged_in(rm_a).get(f"/clients/{client_of_a.client_no}/",
                                   HTTP_ACCEPT_LANGUAGE="en")
    assert 'id="score-none"' in response.content.decode()
    assert "Not scored yet" in response.content.decode()


def test_the_history_chart_gets_every_score_oldest_first(logged_in, rm_a, development_client,
                                                        django_capture_on_commit_callbacks):
    older = yesterday() - dt.timedelta(days=400)  # the purchases are outside its window
    run_scoring(django_capture_on_commit_callbacks, older)
    run_scoring(django_capture_on_commit_callbacks)
    response = logged_in(rm_a).get(f"/clients/{development_client.client_no}/")
    data = json.loads(re.search(r'id="score-history-data"[^>]*>(.*?)</script>',
                                response.content.decode(), re.S).group(1))
    assert [(p["as_of"], p["total"], p["tier"]) for p in data] == [
        (older.isoformat(), 3, "long_tail"), (yesterday().isoformat(), 6, "development")]


# --- client list ------------------------------------------------------------------------------
@pytest.fixture
def three_scored(rm_a, development_client, django_capture_on_commit_callbacks):
    guiding = ClientFactory(client_no="A0000010", name="钱多", rm=rm_a, branch=rm_a.branch)
    buy(guiding, amount="1000", days_ago=5, times=130)  # >10 a month: frequency band 4
    run_scoring(django_capture_on_commit_callbacks)
    never = ClientFactory(client_no="A0000011", name="新开", rm=rm_a, branch=rm_a.branch)
    return guiding, development_client, never


def client_nos(response) -> list[str]:
    return re.findall(r'font-monospace"><a href="/clients/([^/]+)/"', response.content.decode())


def test_the_list_filters_by_tier(logged_in, rm_a, three_scored):
    guiding, development, never = three_scored
    http = logged_in(rm_a)
    assert client_nos(http.get(LIST, {"tier": "development"})) == [development.client_no]
    assert client_nos(http.get(LIST, {"tier": "guiding"})) == [guiding.client_no]
    assert client_nos(http.get(LIST, {"tier": "potential"})) == []
    assert len(client_nos(http.get(LIST, {"tier": "bogus"}))) == 3  # invalid: dropped


def test_the_list_sorts_by_total_score_with_unscored_clients_last(logged_in, rm_a,
                                                                  three_scored):
    guiding, development, never = three_scored
    http = logged_in(rm_a)
    assert client_nos(http.get(LIST, {"sort": "-total_score"})) == [
        guiding.client_no, development.client_no, never.client_no]
    assert client_nos(http.get(LIST, {"sort": "total_score"})) == [
        development.client_no, guiding.client_no, never.client_no]
    body = http.get(LIST, {"sort": "-total_score"}).content.decode()
    assert 'data-tier="guiding"' in body and 'data-total-score="6"' in body


def scored_and_unscored(rm, *, scored: int = 30, unscored: int = 30):
    """`scored` clients with current scores (ties included: 3..8 cycling) and `unscored` ones
    created after the run; returns the expected client_no order for -total_score and
    total_score: scored by score then id, unscored after by id (same direction)."""
    from clients.scoring.models import ClientScore, ScoringCurrent

    scheme = ScoringScheme.objects.get(version=1)
    as_of = yesterday()
    old = as_of - dt.timedelta(days=30)  # an older run's rows must not count
    ScoringCurrent.objects.update_or_create(pk=1, defaults={"as_of": as_of, "scheme": scheme})
    scores = {}
    for i in range(scored):
        c = ClientFactory(rm=rm, branch=rm.branch)
        total = 3 + (i * 7) % 6
        scores[c.pk] = (c.client_no, total)
        for day, value in ((as_of, total), (old, 18 - total)):
            ClientScore.objects.create(client=c, scheme=scheme, as_of=day, amount=0, purchases=0,
                                       frequency=0, benefit=0, amount_score=1,
                                       frequency_score=1, benefit_score=1, total_score=value,
                                       tier="long_tail")
    fresh = [(c.pk, c.client_no) for c in ClientFactory.create_batch(unscored, rm=rm,
                                                                     branch=rm.branch)]
    by_score = sorted(scores.items(), key=lambda kv: (kv[1][1], kv[0]))
    ascending = [no for _, (no, _) in by_score] + [no for _, no in sorted(fresh)]
    descending = ([no for _, (no, _) in reversed(by_score)]
                  + [no for _, no in sorted(fresh, reverse=True)])
    return descending, ascending


@pytest.mark.parametrize("who", ["rm_a", "ops_user", "ops_filtered"])
def test_the_score_sort_pages_scored_clients_first_then_unscored(db, request, logged_in,
                                                                 monkeypatch, who):
    """Across page boundaries: a page inside the scored part, one that crosses into the
    unscored part, one entirely beyond it. The RM's short list sorts its rows; for ops the
    count is capped (as at a million), so the scored part walks the score index (the whole
    table through the score index alone, a filtered list through the join)."""
    rm = request.getfixturevalue("rm_a")
    extra = {"risk_level": "C3"} if who == "ops_filtered" else {}
    if who != "rm_a":
        monkeypatch.setattr("core.pagination.COUNT_CAP", 20)
    user = request.getfixturevalue("ops_user" if who == "ops_filtered" else who)
    descending, ascending = scored_and_unscored(rm)
    http = logged_in(user)
    for sort, expected in (("-total_score", descending), ("total_score", ascending)):
        seen = []
        for number in (1, 2, 3):
            response = http.get(LIST, {"sort": sort, "page": number, "per_page": 25, **extra})
            page = response.context["page"]
            seen += [c.client_no for c in page.rows]
            assert page.has_next == (number < 3)
        assert seen == expected, sort


def test_the_score_sort_without_any_run_is_by_id(logged_in, rm_a):
    clients = ClientFactory.create_batch(3, rm=rm_a, branch=rm_a.branch)
    http = logged_in(rm_a)
    nos = [c.client_no for c in sorted(clients, key=lambda c: c.pk)]
    assert client_nos(http.get(LIST, {"sort": "total_score"})) == nos
    assert client_nos(http.get(LIST, {"sort": "-total_score"})) == nos[::-1]


def test_the_score_sort_costs_one_query_more_than_other_sorts(logged_in, ops_user,
                                                              django_assert_max_num_queries):
    scored_and_unscored(ops_user, scored=30, unscored=30)
    http = logged_in(ops_user)
    # As test_pages' pin (9) plus the ScoringCurrent pointer read before the rows; the page
    # crossing into the unscored part reads those too (one more).
    with django_assert_max_num_queries(10):
        assert len(http.get(LIST, {"sort": "-total_score", "per_page": 25}).context[
            "page"].rows) == 25
    with django_assert_max_num_queries(11):
        assert len(http.get(LIST, {"sort": "-total_score", "per_page": 50}).context[
            "page"].rows) == 50


# --- the scoring page ---------------------------------------------------------------------------
@pytest.mark.parametrize("who", ["rm_a", "branch_manager", "compliance_user"])
def test_only_ops_and_admin_open_the_scoring_page(db, request, logged_in, who):
    user = request.getfixturevalue(who)
    http = logged_in(user)
    for path, method in ((SCORING, "get"), ("/scoring/runs/", "get"),
                         ("/scoring/runs/start/", "post"), ("/scoring/schemes/publish/", "post")):
        assert getattr(http, method)(path).status_code == 403
    assert AuditLog.objects.filter(action=AuditAction.ACCESS_DENIED, actor=user).exists()
    assert ScoringRun.objects.count() == 0


@pytest.mark.parametrize("who", ["ops_user", "admin_user_"])
def test_ops_and_admin_see_the_scoring_page_and_its_nav_link(db, request, logged_in, who):
    http = logged_in(request.getfixturevalue(who))
    response = http.get(SCORING, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    assert 'href="/scoring/"' in response.content.decode()
    assert 'data-version="1"' in response.content.decode()


def test_an_rm_has_no_scoring_link(logged_in, rm_a):
    assert 'href="/scoring/"' not in logged_in(rm_a).get(LIST).content.decode()


def test_ops_start_a_run_from_the_page_and_see_its_tier_counts(
        logged_in, ops_user, development_client, django_capture_on_commit_callbacks):
    http = logged_in(ops_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = http.post("/scoring/runs/start/", {"as_of": yesterday().isoformat()})
    assert response.status_code == 302
    run = ScoringRun.objects.get()
    assert (run.status, run.trigger, run.created_by) == ("succeeded", "page", ops_user)
    page = text(http.get(response["Location"], HTTP_ACCEPT_LANGUAGE="en"))
    assert f'data-run="{run.pk}" data-status="succeeded"' in page
    assert 'data-tier-count="development" title="Key development client">' \
           'Key development client 1' in page
    assert 'id="scoring-charts-data"' in page
    charts = json.loads(re.search(r'id="scoring-charts-data"[^>]*>(.*?)</script>', page).group(1))
    assert charts["series"][0]["data"] == [0, 0, 0, 1, 0, 0]  # amount score 4
    assert {t["key"]: t["value"] for t in charts["tiers"]}["development"] == 1
    assert 'data-polling="false"' in page  # finished: the table no longer polls


def test_an_active_run_is_polled_and_shows_its_progress(logged_in, ops_user):
    scheme = ScoringScheme.objects.get(version=1)
    ScoringRun.objects.create(as_of=yesterday(), scheme=scheme, status="running",
                              progress_done=30, progress_total=120)
    body = text(logged_in(ops_user).get("/scoring/runs/"))
    assert 'hx-trigger="every 1s"' in body
    assert 'aria-valuenow="25"' in body


def test_a_future_date_is_refused_with_a_form_error(logged_in, ops_user):
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    response = logged_in(ops_user).post("/scoring/runs/start/", {"as_of": tomorrow.isoformat()},
                                        HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert "cannot be in the future" in response.content.decode()
    assert ScoringRun.objects.count() == 0


@pytest.mark.parametrize("value", ["", "not-a-date", "2026-13-45"])
def test_a_bad_date_is_a_form_error_not_a_500(logged_in, ops_user, value):
    response = logged_in(ops_user).post("/scoring/runs/start/", {"as_of": value})
    assert response.status_code == 400
    assert "is-invalid" in response.content.decode()


def test_a_date_already_running_is_refused_with_the_services_message(logged_in, ops_user):
    scheme = ScoringScheme.objects.get(version=1)
    ScoringRun.objects.create(as_of=yesterday(), scheme=scheme, status="queued")
    response = logged_in(ops_user).post("/scoring/runs/start/",
                                        {"as_of": yesterday().isoformat()},
                                        HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    assert "already queued or running" in response.content.decode()
    assert ScoringRun.objects.count() == 1


def test_a_failed_run_offers_resume_and_resuming_completes_it(
        logged_in, ops_user, development_client, scored, django_capture_on_commit_callbacks):
    ScoringRun.objects.filter(pk=scored.pk).update(status="failed", error="worker lost",
                                                   progress_done=0, chunks_done=0)
    ScoringChunk.objects.filter(run=scored).update(done=False)
    http = logged_in(ops_user)
    assert f'action="/scoring/runs/{scored.pk}/resume/"' in http.get(SCORING).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = http.post(f"/scoring/runs/{scored.pk}/resume/")
    assert response.status_code == 302
    scored.refresh_from_db()
    assert scored.status == "succeeded"
    response = http.post(f"/scoring/runs/{scored.pk}/resume/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400  # a succeeded run: the service's message, not a 500
    assert "already succeeded" in response.content.decode()


def publish_data(**changes) -> dict:
    data = {"window_months": "12", "amount_bounds": "10000, 50000, 100000, 500000, 2000000",
            "frequency_bounds": "2, 5, 10, 50, 100",
            "benefit_bounds": "10000, 30000, 100000, 300000, 500000", "high_score": "4",
            "recent_days": "30", "tier_precedence": "guiding, development, potential, long_tail",
            "note": "raise band 6"}
    data.update(changes)
    return data


def test_the_publish_form_is_prefilled_from_the_current_version(logged_in, ops_user):
    body = logged_in(ops_user).get(SCORING).content.decode()
    assert 'value="10000, 50000, 100000, 500000, 1000000"' in body
    assert 'value="guiding, development, potential, long_tail"' in body


def test_ops_publish_a_new_scheme_version_from_the_page(logged_in, ops_user):
    response = logged_in(ops_user).post("/scoring/schemes/publish/", publish_data())
    assert response.status_code == 302
    scheme = ScoringScheme.objects.get(version=2)
    assert scheme.amount_bounds == [10000, 50000, 100000, 500000, 2000000]
    assert scheme.published_by == ops_user


@pytest.mark.parametrize("changes, field, message", [
    ({"amount_bounds": "10000, 50000, 40000, 500000, 1000000"}, "amount_bounds",
     "Amount bands: the lower bound of band 4 (40000) must be greater than that of band 3"),
    ({"benefit_bounds": "1, 2, 3"}, "benefit_bounds", "Benefit bands: give exactly five bounds"),
    ({"frequency_bounds": "2, five, 10, 50, 100"}, "frequency_bounds", "“five” is not a number"),
    ({"tier_precedence": "guiding, vip, potential, long_tail"}, "tier_precedence",
     "Unknown tier rule: vip"),
])
def test_an_invalid_scheme_shows_the_message_next_to_its_field(logged_in, ops_user, changes,
                                                               field, message):
    response = logged_in(ops_user).post("/scoring/schemes/publish/", publish_data(**changes),
                                        HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    body = response.content.decode().replace("&quot;", '"').replace("&#x27;", "'")
    assert re.search(rf'data-field="{field}">[^<]*{re.escape(message)}', body), body[-3000:]
    assert not ScoringScheme.objects.filter(version=2).exists()


# --- tier migration ---------------------------------------------------------------------------
@pytest.fixture
def two_runs(development_client, clients_of_b, django_capture_on_commit_callbacks):
    """Run 1 before the purchases counted (all long-tail), run 2 after: one client moved."""
    first = run_scoring(django_capture_on_commit_callbacks, yesterday() - dt.timedelta(days=400))
    second = run_scoring(django_capture_on_commit_callbacks)
    return first, second


def test_the_migration_matrix_counts_who_moved(logged_in, ops_user, two_runs):
    first, second = two_runs
    body = text(logged_in(ops_user).get(SCORING, {"run_from": first.pk, "run_to": second.pk}))
    matrix = body.split('id="migration-matrix"')[1].split("</table>")[0]
    row = matrix.split('data-from="long_tail"')[1].split("</tr>")[0]
    assert re.search(r'data-to="development" class="table-warning"><a href="[^"]+">1</a>', row)
    assert re.search(r'data-to="long_tail" class="table-secondary fw-semibold"><a [^>]+>3</a>',
                     row)


def test_a_matrix_cell_lists_the_clients_who_moved(logged_in, ops_user, two_runs,
                                                   development_client):
    first, second = two_runs
    query = {"run_from": first.pk, "run_to": second.pk, "tier_from": "long_tail",
             "tier_to": "development"}
    body = text(logged_in(ops_user).get("/scoring/migration/", query))
    table = body.split('id="migration-clients"')[1]
    assert development_client.client_no in table and development_client.name in table
    assert "B0000000" not in table
    assert 'data-tier="long_tail"' in table and 'data-tier="development"' in table


def test_bad_migration_parameters_are_a_404_not_a_500(logged_in, ops_user, two_runs):
    http = logged_in(ops_user)
    assert http.get("/scoring/migration/").status_code == 404
    assert http.get("/scoring/migration/", {"run_from": "x", "run_to": 99999,
                                            "tier_from": "a", "tier_to": "b"}).status_code == 404
