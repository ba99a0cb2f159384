"""The analytics pages (issue 13): each page for each role in its scope, an RM's figures are
their book's, bad filters explain themselves, tables download as CSV/XLSX (audited), a chart
cell's clients are listed (scoped, masked) and saved as a static segment by those who may."""

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from analytics.models import AnalyticsRefresh
from analytics.pages import kpi_cards
from analytics.services import refresh_run, refresh_start
from core.models import AuditAction, AuditLog, Role
from segments.models import Segment, SegmentKind, SegmentMembership
from segments.services import segment_create
from tests.campaigns.conftest import (  # noqa: F401 (fixtures)
    approved,
    audience,
    audience_clients,
    bond,
    draft,
    launched,
    ops_author,
)
from tests.factories import ClientFactory, ProductFactory, TransactionFactory

PAGES = ("/analytics/", "/analytics/retention/", "/analytics/funnel/", "/analytics/channels/",
         "/analytics/campaigns/")


def bought(client, day: dt.date, amount: str = "10000", revenue: str = "50") -> None:
    TransactionFactory(client=client, product=ProductFactory(product_code="PA001"),
                       traded_at=timezone.make_aware(dt.datetime.combine(day, dt.time(10))),
                       amount=Decimal(amount), revenue=Decimal(revenue))


@pytest.fixture
def opened(today):
    """The day the fixed book's accounts were opened: 60 days ago, inside the default range."""
    return today - dt.timedelta(days=60)


@pytest.fixture
def book(rm_a, rm_b, opened, today):
    """rm_a: A1 funded and bought twice, A2 funded and bought once, A3 neither — all opened 60
    days ago. rm_b: B1 opened then, funded, bought once; B2 opened 100 days ago, nothing else.
    Funnel of rm_a's book: opened 3, funded 2, first purchase 2, repeat 1; of all: 5, 3, 3, 1."""
    days = dt.timedelta
    a1 = ClientFactory(client_no="AN000001", name="安一", rm=rm_a, branch=rm_a.branch,
                       opened_on=opened, first_funded_on=opened + days(2), phone="13800000001")
    a2 = ClientFactory(client_no="AN000002", name="安二", rm=rm_a, branch=rm_a.branch,
                       opened_on=opened, first_funded_on=opened + days(5), phone="13800000002")
    a3 = ClientFactory(client_no="AN000003", name="安三", rm=rm_a, branch=rm_a.branch,
                       opened_on=opened, phone="13800000003")
    b1 = ClientFactory(client_no="BN000001", name="北一", rm=rm_b, branch=rm_b.branch,
                       opened_on=opened, first_funded_on=opened + days(1), phone="13900000001")
    b2 = ClientFactory(client_no="BN000002", name="北二", rm=rm_b, branch=rm_b.branch,
                       opened_on=today - days(100), phone="13900000002")
    bought(a1, opened + days(10))
    bought(a1, opened + days(40))
    bought(a2, opened + days(50))
    bought(b1, opened + days(55))
    return {"a1": a1, "a2": a2, "a3": a3, "b1": b1, "b2": b2}


@pytest.fixture
def rolled_up(book):
    """The rollups rebuilt in full (synchronously: the test's transaction never commits)."""
    refresh = refresh_run(refresh_id=refresh_start(full=True, trigger="test", queue=False).pk)
    assert refresh.status == "succeeded", refresh.error
    return refresh


@pytest.fixture
def users(rm_a, rm_b, branch_manager, ops_user, compliance_user, admin_user_):
    return {Role.RM: rm_a, Role.BRANCH_MANAGER: branch_manager, Role.OPS: ops_user,
            Role.COMPLIANCE: compliance_user, Role.ADMIN: admin_user_}


def table_rows(html: str, key: str) -> list[list[str]]:
    """The cells of the table `data-table="key"`, as the page shows them."""
    start = html.index(f'data-table="{key}"')
    body = html[html.index("<tbody>", start):html.index("</tbody>", start)]
    return [[re.sub(r"<[^>]+>", "", cell).strip()
             for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def get(client, path: str, language: str = "en", **params):
    return client.get(path, params, HTTP_ACCEPT_LANGUAGE=language)


# --- every page, every role, in its scope ------------------------------------------------------
@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("role", list(Role))
def test_every_role_opens_every_analytics_page_in_both_languages(logged_in, users, rolled_up,
                                                                  role, path):
    client = logged_in(users[role])
    response = get(client, path)
    body = response.content.decode()
    assert response.status_code == 200
    scope = {Role.RM: "Figures of your book", Role.BRANCH_MANAGER: "Figures of your branch"}
    assert scope.get(role, "Figures of all clients") in body
    assert 'id="analytics-data"' in body and "echarts.min.js" in body
    zh = get(client, path, "zh-hans")
    assert zh.status_code == 200 and 'lang="zh-hans"' in zh.content.decode()


def test_the_pickers_offer_only_the_users_scope(logged_in, users, rm_b, rolled_up):
    rm_page = get(logged_in(users[Role.RM]), "/analytics/").content.decode()
    assert 'id="filter-branch"' not in rm_page and 'id="filter-rm"' not in rm_page
    manager_page = get(logged_in(users[Role.BRANCH_MANAGER]), "/analytics/").content.decode()
    assert 'id="filter-branch"' not in manager_page
    assert '<option value="rm_a"' in manager_page and '<option value="rm_b"' not in manager_page
    ops_page = get(logged_in(users[Role.OPS]), "/analytics/").content.decode()
    assert '<option value="SH01"' in ops_page and '<option value="BJ01"' in ops_page
    assert '<option value="rm_a"' in ops_page and '<option value="rm_b"' in ops_page


@pytest.mark.parametrize("role, expected", [
    (Role.RM, [["Opened", "3", "—"], ["Funded", "2", "66.7%"], ["First purchase", "2", "100.0%"],
               ["Repeat purchase or advisory", "1", "50.0%"]]),
    (Role.BRANCH_MANAGER, [["Opened", "3", "—"], ["Funded", "2", "66.7%"],
                           ["First purchase", "2", "100.0%"],
                           ["Repeat purchase or advisory", "1", "50.0%"]]),
    (Role.OPS, [["Opened", "5", "—"], ["Funded", "3", "60.0%"], ["First purchase", "3", "100.0%"],
                ["Repeat purchase or advisory", "1", "33.3%"]]),
])
def test_the_funnel_counts_only_the_clients_in_the_users_scope(logged_in, users, rolled_up,
                                                                role, expected):
    html = get(logged_in(users[role]), "/analytics/funnel/").content.decode()
    assert [row[:3] for row in table_rows(html, "funnel")] == expected


def test_the_funnel_medians_are_the_days_between_steps(logged_in, users, rolled_up):
    """rm_a: funded after 2 and 5 days (median 3.5); first purchase 8 and 45 days after funding
    (median 26.5); the repeat 30 days after the first."""
    html = get(logged_in(users[Role.RM]), "/analytics/funnel/").content.decode()
    assert [row[3] for row in table_rows(html, "funnel")] == ["—", "3.5", "26.5", "30"]


def test_an_rms_overview_counts_their_new_accounts_and_ops_see_every_branch(
        logged_in, users, rolled_up):
    rm_html = get(logged_in(users[Role.RM]), "/analytics/").content.decode()
    ops_html = get(logged_in(users[Role.OPS]), "/analytics/").content.decode()

    def card(html, key):
        part = html[html.index(f'data-kpi="{key}"'):]
        return re.search(r"data-value>([^<]*)<", part).group(1)

    assert card(rm_html, "new_accounts") == "3" and card(ops_html, "new_accounts") == "5"
    assert card(rm_html, "clients") == "3" and card(ops_html, "clients") == "5"
    assert sum(int(r[5].replace(",", "")) for r in table_rows(rm_html, "kpis")) == 3


def test_a_branch_filter_narrows_ops_figures_to_that_branch(logged_in, users, rolled_up):
    html = get(logged_in(users[Role.OPS]), "/analytics/funnel/", branch="BJ01").content.decode()
    assert [row[1] for row in table_rows(html, "funnel")] == ["2", "1", "1", "0"]


def refresh_rollups():
    """An incremental refresh (the segment figures count the members as of the last one)."""
    refresh = refresh_run(refresh_id=refresh_start(trigger="test", queue=False).pk)
    assert refresh.status == "succeeded", refresh.error


def test_a_segment_filter_counts_only_its_members(logged_in, users, rolled_up):
    segment_create(code="two-new", kind=SegmentKind.STATIC, name_en="Two", name_zh="两位",
                   client_nos=["AN000001", "BN000001"])
    refresh_rollups()
    html = get(logged_in(users[Role.OPS]), "/analytics/funnel/", segment="two-new").content
    assert [row[1] for row in table_rows(html.decode(), "funnel")] == ["2", "2", "2", "1"]


def test_retention_shows_each_cohort_of_the_users_scope(logged_in, users, rolled_up, opened):
    html = get(logged_in(users[Role.RM]), "/analytics/retention/").content.decode()
    rows = table_rows(html, "retention")
    assert [(r[0], r[1]) for r in rows] == [(f"{opened:%Y-%m}", "3")]


# --- bad filters -------------------------------------------------------------------------------
@pytest.mark.parametrize("path, params, field", [
    ("/analytics/", {"from": "2026-13-01"}, "from"),
    ("/analytics/", {"branch": "NOPE"}, "branch"),
    ("/analytics/funnel/", {"tier": "gold"}, "tier"),
    ("/analytics/funnel/", {"segment": "no-such-segment"}, "segment"),
    ("/analytics/", {"interval": "year"}, "interval"),
    ("/analytics/retention/", {"months": "99"}, "months"),
    ("/analytics/retention/", {"months": "many"}, "months"),
])
def test_a_bad_filter_names_the_field_and_the_page_still_renders(logged_in, users, rolled_up,
                                                                  path, params, field):
    response = get(logged_in(users[Role.OPS]), path, **params)
    body = response.content.decode()
    assert response.status_code == 400
    assert 'id="analytics-error"' in body and f'data-field="{field}"' in body
    assert 'id="analytics-filters"' in body and 'id="analytics-data"' not in body


def test_an_rm_cannot_filter_on_another_rm_or_branch(logged_in, users, rolled_up):
    client = logged_in(users[Role.RM])
    for params, field in (({"rm": "rm_b"}, "rm"), ({"branch": "BJ01"}, "branch")):
        response = get(client, "/analytics/funnel/", **params)
        body = response.content.decode()
        assert response.status_code == 403
        assert f'data-field="{field}"' in body and 'data-table="funnel"' not in body


# --- exports -----------------------------------------------------------------------------------
def test_a_table_downloads_as_csv_with_the_pages_figures_and_is_audited(logged_in, users,
                                                                          rolled_up):
    response = get(logged_in(users[Role.RM]), "/analytics/funnel/", format="csv", table="funnel")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment;" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["Step", "Clients", "Conversion from previous step",
                       "Median days from previous step"]
    assert [r[:2] for r in rows[1:]] == [["Opened", "3"], ["Funded", "2"],
                                         ["First purchase", "2"],
                                         ["Repeat purchase or advisory", "1"]]
    log = AuditLog.objects.get(action=AuditAction.EXPORT)
    assert (log.actor, log.object_type, log.object_id) == (users[Role.RM], "analytics", "funnel")
    assert log.detail["format"] == "csv"


def test_the_overview_tables_download_as_xlsx(logged_in, users, rolled_up):
    from openpyxl import load_workbook

    response = get(logged_in(users[Role.OPS]), "/analytics/", format="xlsx", table="kpis")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "Period" and rows[0][5] == "New accounts"
    assert sum(r[5] or 0 for r in rows[1:]) == 5
    assert AuditLog.objects.filter(action=AuditAction.EXPORT, object_id="kpis").count() == 1


def test_an_unknown_table_is_a_400_not_a_download(logged_in, users, rolled_up):
    response = get(logged_in(users[Role.OPS]), "/analytics/", format="csv", table="nope")
    assert response.status_code == 400 and 'data-field="table"' in response.content.decode()
    assert not AuditLog.objects.filter(action=AuditAction.EXPORT).exists()


# --- drill-down --------------------------------------------------------------------------------
def drilled(html: str) -> list[str]:
    return re.findall(r'<td class="font-monospace"><a href="/clients/([^/]+)/"', html)


def test_a_funnel_steps_clients_are_listed_in_the_users_scope_with_phones_masked(
        logged_in, users, rolled_up):
    rm_html = get(logged_in(users[Role.RM]), "/analytics/drill/", metric="funnel",
                  c_step="funded").content.decode()
    assert drilled(rm_html) == ["AN000001", "AN000002"]
    ops_html = get(logged_in(users[Role.OPS]), "/analytics/drill/", metric="funnel",
                   c_step="funded").content.decode()
    assert drilled(ops_html) == ["AN000001", "AN000002", "BN000001"]
    assert "138****0001" in ops_html and "13800000001" not in ops_html
    assert 'id="drill-save-form"' in ops_html and 'id="drill-save-form"' not in rm_html


def test_a_segments_bar_lists_only_the_members_in_scope(logged_in, users, rolled_up, book):
    segment_create(code="vip-list", kind=SegmentKind.STATIC, name_en="VIP", name_zh="贵宾",
                   client_nos=["AN000003", "BN000002"])
    refresh_rollups()
    html = get(logged_in(users[Role.RM]), "/analytics/drill/", metric="segment",
               c_code="vip-list").content.decode()
    assert drilled(html) == ["AN000003"]


def test_a_bad_drill_down_names_the_metric_or_the_cell(logged_in, users, rolled_up):
    client = logged_in(users[Role.OPS])
    response = get(client, "/analytics/drill/", metric="nope")
    assert response.status_code == 400 and 'data-field="metric"' in response.content.decode()
    response = get(client, "/analytics/drill/", metric="funnel", c_step="bogus")
    assert response.status_code == 400 and 'data-field="step"' in response.content.decode()


def test_ops_save_a_drilled_list_as_a_static_segment_with_exactly_those_clients(
        logged_in, users, rolled_up):
    response = logged_in(users[Role.OPS]).post("/analytics/drill/save/", {
        "metric": "funnel", "c_step": "funded", "name": "已入金新客"})
    segment = Segment.objects.get(kind=SegmentKind.STATIC, name_zh="已入金新客")
    assert response.status_code == 302 and response["Location"] == f"/segments/{segment.code}/"
    members = SegmentMembership.objects.filter(segment=segment)
    assert sorted(members.values_list("client__client_no", flat=True)) == [
        "AN000001", "AN000002", "BN000001"]
    assert segment.size == 3
    assert AuditLog.objects.filter(action=AuditAction.SEGMENT_SAVED, object_id=segment.code,
                                   actor=users[Role.OPS]).exists()


def test_saving_keeps_the_filters_of_the_drill_down(logged_in, users, rolled_up):
    logged_in(users[Role.OPS]).post("/analytics/drill/save/", {
        "metric": "funnel", "c_step": "opened", "branch": "SH01", "name": "陆家嘴新开户"})
    segment = Segment.objects.get(name_zh="陆家嘴新开户")
    assert sorted(segment.memberships.values_list("client__client_no", flat=True)) == [
        "AN000001", "AN000002", "AN000003"]


@pytest.mark.parametrize("role", [Role.RM, Role.BRANCH_MANAGER, Role.COMPLIANCE])
def test_roles_without_segments_manage_cannot_save_a_drilled_list(logged_in, users, rolled_up,
                                                                    role):
    before = Segment.objects.count()
    response = logged_in(users[role]).post("/analytics/drill/save/", {
        "metric": "funnel", "c_step": "funded", "name": "不该保存"})
    assert response.status_code == 403 and Segment.objects.count() == before
    assert AuditLog.objects.filter(action=AuditAction.ACCESS_DENIED,
                                   actor=users[role]).exists()


# --- freshness and refresh ---------------------------------------------------------------------
def test_the_pages_say_how_fresh_the_figures_are(logged_in, users, rolled_up, today):
    html = get(logged_in(users[Role.RM]), "/analytics/retention/").content.decode()
    assert f"Figures as of {today:%Y-%m-%d}, refreshed" in html
    assert 'id="refresh-now"' not in html


def test_ops_refresh_now_queues_one_job_and_the_page_polls_its_progress(logged_in, users,
                                                                          rolled_up):
    client = logged_in(users[Role.OPS])
    assert 'id="refresh-now"' in get(client, "/analytics/").content.decode()
    response = client.post("/analytics/refresh/", HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200 and 'data-running="true"' in body
    assert 'hx-trigger="every 2s"' in body and "progress-bar" in body
    client.post("/analytics/refresh/", HTTP_HX_REQUEST="true")
    assert AnalyticsRefresh.objects.filter(status="queued").count() == 1


def test_the_progress_poll_reloads_the_page_once_the_refresh_is_done(logged_in, users,
                                                                      rolled_up):
    client = logged_in(users[Role.OPS])
    refresh_start(user=users[Role.OPS], trigger="test", queue=False)
    polling = client.get("/analytics/freshness/", {"was_running": "1"})
    assert 'data-running="true"' in polling.content.decode() and "HX-Refresh" not in polling
    AnalyticsRefresh.objects.filter(status="queued").update(status="succeeded",
                                                            finished_at=timezone.now())
    done = client.get("/analytics/freshness/", {"was_running": "1"})
    assert done["HX-Refresh"] == "true" and 'data-running="false"' in done.content.decode()


def test_an_rm_cannot_refresh(logged_in, users, rolled_up):
    response = logged_in(users[Role.RM]).post("/analytics/refresh/")
    assert response.status_code == 403
    assert not AnalyticsRefresh.objects.filter(status="queued").exists()


# --- the cards' period-on-period figures --------------------------------------------------------
def test_cards_compare_levels_at_the_last_period_and_flows_summed():
    def row(period, clients, active, aum, revenue, new, funded):
        return {"period": period, "clients": clients, "active_clients": active, "aum": aum,
                "revenue": revenue, "new_accounts": new, "funded_rate": funded}

    series = [row("2026-10", 10, 4, 1000.0, 20.0, 4, 0.5), row("2026-11", 12, 6, 1500.0, 30.0, 2,
                                                               1.0)]
    previous = [row("2026-08", 6, 2, 800.0, 5.0, 0, None), row("2026-09", 8, 3, 1000.0, 5.0, 4,
                                                               0.25)]
    cards = {c["key"]: c for c in kpi_cards(series, previous)}
    assert (cards["clients"]["value"], cards["clients"]["previous"]) == (12, 8)
    assert cards["clients"]["change"] == pytest.approx(0.5) and cards["clients"]["up"]
    assert (cards["revenue"]["value"], cards["revenue"]["previous"]) == (50.0, 10.0)
    assert (cards["new_accounts"]["value"], cards["new_accounts"]["previous"]) == (6, 4)
    # 4 × 0.5 + 2 × 1.0 funded of 6 opened, against 1 of 4
    assert (cards["funded_rate"]["value"], cards["funded_rate"]["previous"]) == (0.6667, 0.25)
    assert cards["aum"]["shown"] == "¥1,500" and cards["aum"]["change_shown"] == "50.0%"


# --- channels, and the other chart cells ------------------------------------------------------
def test_the_channels_page_counts_the_contacts_of_the_users_book(logged_in, users, book, today):
    from outreach.models import Contact

    for client, status in ((book["a1"], "delivered"), (book["a2"], "failed"),
                           (book["b1"], "responded")):
        Contact.objects.create(client=client, source="campaign", source_id=1, step=1,
                               channel="sms", status=status, planned_on=today - dt.timedelta(5),
                               at=timezone.now() - dt.timedelta(days=5))
    refresh_run(refresh_id=refresh_start(full=True, trigger="test", queue=False).pk)

    def sms(role):
        html = get(logged_in(users[role]), "/analytics/channels/").content.decode()
        return next(r for r in table_rows(html, "channels") if r[0] == "SMS")[1:]

    assert sms(Role.RM) == ["2", "1", "0", "0"]
    assert sms(Role.OPS) == ["3", "2", "1", "0"]


def month_of(day: dt.date, add: int = 0) -> str:
    index = day.year * 12 + day.month - 1 + add
    return f"{index // 12}-{index % 12 + 1:02d}"


def test_the_active_and_retention_cells_list_their_clients(logged_in, users, rolled_up, opened,
                                                           today):
    client = logged_in(users[Role.RM])
    # A1 bought 20 days ago and A2 10 days ago: both active today; A3 never bought.
    html = get(client, "/analytics/drill/", metric="active", c_period=month_of(today)).content
    assert drilled(html.decode()) == ["AN000001", "AN000002"]
    purchases = {"AN000001": [opened + dt.timedelta(10), opened + dt.timedelta(40)],
                 "AN000002": [opened + dt.timedelta(50)]}
    for k in range(3):
        month = month_of(opened, k)
        expected = sorted(n for n, days in purchases.items()
                          if any(month_of(d) == month for d in days))
        html = get(client, "/analytics/drill/", metric="retention", c_cohort=month_of(opened),
                   c_month=str(k)).content.decode()
        assert drilled(html) == expected, k


def test_a_tier_migration_cell_lists_the_clients_who_moved(logged_in, users, book, today):
    from clients.scoring.models import ScoringScheme
    from tests.analytics.conftest import score

    scheme = ScoringScheme.objects.get(version=1)
    long_ago, lately = today - dt.timedelta(days=400), today - dt.timedelta(days=1)
    for key, before, after in (("a1", "long_tail", "potential"), ("a2", "guiding", "guiding"),
                               ("b1", "long_tail", "potential")):
        score(book[key], as_of=long_ago, tier=before, scheme=scheme)
        score(book[key], as_of=lately, tier=after, scheme=scheme)
    refresh_run(refresh_id=refresh_start(full=True, trigger="test", queue=False).pk)
    client = logged_in(users[Role.RM])
    html = get(client, "/analytics/").content.decode()
    moved = next(r for r in table_rows(html, "tier_migration") if r[0] == "Long-tail client")
    assert moved == ["Long-tail client", "0", "0", "1", "0"]
    html = get(client, "/analytics/drill/", metric="tier_migration", c_from="long_tail",
               c_to="potential").content.decode()
    assert drilled(html) == ["AN000001"]


def test_the_campaigns_page_shows_a_launched_campaign_with_its_members(
        logged_in, users, launched):  # noqa: F811
    html = get(logged_in(users[Role.OPS]), "/analytics/campaigns/").content.decode()
    row = next(r for r in table_rows(html, "campaigns") if r[0] == "spring-bond")
    launched_at = timezone.localtime(launched.launched_at)
    assert row[:5] == ["spring-bond", "春季稳健理财", "Running", f"{launched_at:%Y-%m-%d %H:%M}",
                       "40"]
    rm_html = get(logged_in(users[Role.RM]), "/analytics/campaigns/").content.decode()
    mine = next(r for r in table_rows(rm_html, "campaigns") if r[0] == "spring-bond")
    assert mine[10:] == ["—", "—", "—", "—"]  # the uplift compares arms, not books


def test_the_drilled_list_reads_in_the_same_number_of_queries_for_3_or_30_clients(
        logged_in, users, book, opened):
    client = logged_in(users[Role.OPS])
    refresh_run(refresh_id=refresh_start(full=True, trigger="test", queue=False).pk)
    with CaptureQueriesContext(connection) as few:
        get(client, "/analytics/drill/", metric="funnel", c_step="opened", branch="SH01")
    for i in range(27):
        ClientFactory(client_no=f"AM{i:06d}", rm=users[Role.RM], branch=users[Role.RM].branch,
                      opened_on=opened)
    refresh_run(refresh_id=refresh_start(full=True, trigger="test", queue=False).pk)
    with CaptureQueriesContext(connection) as many:
        html = get(client, "/analytics/drill/", metric="funnel", c_step="opened",
                   branch="SH01").content.decode()
    assert len(drilled(html)) == 25 and "Page 1 of 2" in html
    assert len(many.captured_queries) == len(few.captured_queries)


def test_the_campaigns_overview_carries_the_first_variants_uplift(users, launched):  # noqa: F811
    from analytics.selectors import Filters, campaigns_overview
    from campaigns.selectors import campaign_results

    row = next(r for r in campaigns_overview(user=users[Role.OPS], filters=Filters())["campaigns"]
               if r["code"] == launched.code)
    first = campaign_results(campaign=launched)["uplift"][0]
    assert row["uplift"] == first["absolute"] is not None
    assert (row["ci_low"], row["ci_high"], row["p_value"]) == (
        first["ci_low"], first["ci_high"], first["p_value"])


# --- drill-down of the channel, newsletter and campaign figures ------------------------------
def listed(html: str) -> int:
    """The client count the drilled list says it holds."""
    return int(re.search(r'id="result-count">\s*([\d,]+) client', html).group(1).replace(",", ""))


@pytest.fixture
def sms_contacts(book, today):
    from outreach.models import Contact

    for client, status in ((book["a1"], "delivered"), (book["a2"], "failed"),
                           (book["b1"], "responded")):
        Contact.objects.create(client=client, source="campaign", source_id=1, step=1,
                               channel="sms", status=status, planned_on=today - dt.timedelta(5),
                               at=timezone.now() - dt.timedelta(days=5))
    return book


def test_a_channel_bar_lists_the_clients_of_the_users_scope_masked(logged_in, users,
                                                                     sms_contacts, rolled_up):
    rm_html = get(logged_in(users[Role.RM]), "/analytics/drill/", metric="channel",
                  c_channel="sms", c_outcome="attempted").content.decode()
    assert drilled(rm_html) == ["AN000001", "AN000002"] and listed(rm_html) == 2
    assert "SMS · Attempted" in rm_html
    ops = logged_in(users[Role.OPS])
    html = get(ops, "/analytics/drill/", metric="channel", c_channel="sms",
               c_outcome="delivered").content.decode()
    assert drilled(html) == ["AN000001", "BN000001"]
    assert "138****0001" in html and "13800000001" not in html
    page = get(ops, "/analytics/channels/").content.decode()
    sms = next(r for r in table_rows(page, "channels") if r[0] == "SMS")
    for i, outcome in enumerate(("attempted", "delivered", "responded", "converted"), 1):
        html = get(ops, "/analytics/drill/", metric="channel", c_channel="sms",
                   c_outcome=outcome).content.decode()
        assert len(drilled(html)) == int(sms[i]), outcome


def test_ops_save_a_channel_cell_as_a_static_segment(logged_in, users, sms_contacts, rolled_up):
    response = logged_in(users[Role.OPS]).post("/analytics/drill/save/", {
        "metric": "channel", "c_channel": "sms", "c_outcome": "attempted", "branch": "SH01",
        "name": "短信触达"})
    segment = Segment.objects.get(name_zh="短信触达")
    assert response.status_code == 302
    assert sorted(segment.memberships.values_list("client__client_no", flat=True)) == [
        "AN000001", "AN000002"]


def test_a_campaign_bar_lists_the_members_the_campaigns_table_counts(
        logged_in, users, rm_b, launched):  # noqa: F811
    """The 40 members are all rm_a's: ops, rm_a and their branch manager see them all (the
    whole-firm figures and the scoped ones agree), rm_b none."""
    for user in (users[Role.OPS], users[Role.RM], users[Role.BRANCH_MANAGER], rm_b):
        client = logged_in(user)
        page = get(client, "/analytics/campaigns/").content.decode()
        row = next(r for r in table_rows(page, "campaigns") if r[0] == "spring-bond")
        assert row[4] == ("0" if user == rm_b else "40")
        for column, outcome in ((4, "members"), (5, "contacted"), (7, "converted")):
            html = get(client, "/analytics/drill/", metric="campaign", c_code="spring-bond",
                       c_outcome=outcome).content.decode()
            assert listed(html) == int(row[column]), (user, outcome)


@pytest.mark.parametrize("params, field", [
    ({"metric": "channel", "c_channel": "fax", "c_outcome": "attempted"}, "channel"),
    ({"metric": "channel", "c_channel": "sms", "c_outcome": "bought"}, "outcome"),
    ({"metric": "channel", "c_outcome": "attempted"}, "channel"),
    ({"metric": "newsletter", "c_edition": "x1", "c_outcome": "opened"}, "edition"),
    ({"metric": "newsletter", "c_edition": "424242", "c_outcome": "opened"}, "edition"),
    ({"metric": "newsletter", "c_edition": "99999999999999999999", "c_outcome": "opened"},
     "edition"),
    ({"metric": "campaign", "c_code": "no-such-campaign", "c_outcome": "members"}, "code"),
    ({"metric": "campaign", "c_outcome": "members"}, "code"),
])
def test_a_bad_channel_newsletter_or_campaign_cell_is_a_400_naming_it(logged_in, users,
                                                                      rolled_up, params, field):
    for role in (Role.OPS, Role.RM):
        response = get(logged_in(users[role]), "/analytics/drill/", **params)
        assert response.status_code == 400, role
        assert f'data-field="{field}"' in response.content.decode()
        response = logged_in(users[Role.OPS]).post("/analytics/drill/save/",
                                                   {**params, "name": "x"})
        assert response.status_code == 302 and "/analytics/drill/" in response["Location"]
