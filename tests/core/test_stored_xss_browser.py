"""Stored script, probed in Chromium: markup stored in every text field a user or a system can
set is shown as text on every main page, to every role that can see it, and the pages work
under the Content-Security-Policy (no violation at all, the charts render).

Issue 9, item 1: the persona overview's overlap heatmap printed segment names as HTML in its
tooltip, so a persona renamed to `<img src=x onerror=…>` ran script for whoever hovered it."""

import importlib
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import Client as HttpClient
from django.urls import reverse

from clients.models import Interaction
from clients.scoring.models import ScoringScheme
from core.models import Role
from outreach.models import RMTask
from segments.models import Segment, SegmentKind, SegmentMembership
from tests.factories import (
    BranchFactory,
    ClientFactory,
    HoldingFactory,
    InteractionFactory,
    ProductFactory,
    staff,
)

PAYLOADS = [
    '<img src=x onerror="window.__xss=1">',
    '"><svg onload=window.__xss=1>',
    "</script><script>window.__xss=1</script>",
    "{{7*7}}",
    "javascript:window.__xss=1",
    "'><iframe srcdoc=\"<script>parent.__xss=1</script>\">",
    "<a href=javascript:window.__xss=1 id=xsslink>x</a>",
    "${7*7}<style>body{display:none}</style>",
]
ALL = " | ".join(PAYLOADS)
ROLES = ["rm", "branch_manager", "ops", "compliance", "admin"]

# Recorded in the page before any of its own scripts runs (Playwright's init scripts are not
# subject to the page's policy): every CSP violation the browser reports.
WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "") + " " +
                    (e.sourceFile || "") + ":" + e.lineNumber + ":" + e.columnNumber + " " +
                    (e.sample || ""));
});
"""

# Show every chart item's tooltip through ECharts itself (the same formatter a mouse reaches),
# and return how many tooltips were shown and how many charts the page has.
SHOW_EVERY_TOOLTIP = """
() => {
  var shown = 0, charts = 0;
  if (typeof echarts === "undefined") { return [0, 0]; }
  document.querySelectorAll("[_echarts_instance_]").forEach(function (dom) {
    var chart = echarts.getInstanceByDom(dom);
    if (!chart) { return; }
    charts += 1;
    (chart.getOption().series || []).forEach(function (series, s) {
      (series.data || []).forEach(function (_, i) {
        chart.dispatchAction({ type: "showTip", seriesIndex: s, dataIndex: i });
        shown += 1;
      });
    });
  });
  return [shown, charts];
}
"""


def _seed_segments():
    """A transactional test's flush removes the seeded personas; seed them again."""
    if not Segment.objects.filter(kind=SegmentKind.PERSONA).exists():
        importlib.import_module("segments.migrations.0002_seed_segments").seed(apps, None)


@pytest.fixture
def poisoned(transactional_db):
    """Payloads in every user-editable text field, and the users of every role."""
    _seed_segments()
    if not ScoringScheme.objects.exists():
        from clients.scoring.schemes import scheme_publish
        from tests.clients.test_scoring_browser import V1
        scheme_publish(data=V1)
    branch = BranchFactory(code="XSS01", name=PAYLOADS[0], city=PAYLOADS[1][:50])
    users = {
        "rm": staff(Role.RM, username="rm_x", display_name=PAYLOADS[2], branch=branch),
        "branch_manager": staff(Role.BRANCH_MANAGER, username="bm_x", display_name=PAYLOADS[0],
                                branch=branch),
        "ops": staff(Role.OPS, username="ops_x", display_name=PAYLOADS[1], branch=None),
        "compliance": staff(Role.COMPLIANCE, username="co_x", display_name=PAYLOADS[4],
                            branch=None),
        "admin": staff(Role.ADMIN, username="ad_x", display_name=PAYLOADS[3], branch=None),
    }
    products = [ProductFactory(product_code=f"XP{i:03d}", name=p[:100],
                               product_type=kind, risk_level="R2")
                for i, (p, kind) in enumerate(zip(PAYLOADS, ["fund", "fixed_income", "stock",
                                                             "money_market", "fund", "stock",
                                                             "fixed_income", "fund"],
                                                  strict=True))]
    clients = []
    for i, payload in enumerate(PAYLOADS):
        client = ClientFactory(client_no=f"X{i:07d}", name=payload[:100], rm=users["rm"],
                               branch=branch, city=payload[:50], employer=payload[:100],
                               occupation=payload[:20], aum=Decimal("6000000"))
        for j, product in enumerate(products):
            HoldingFactory(client=client, product=product, market_value=Decimal(10000 * (j + 1)))
        InteractionFactory(client=client, author=users["rm"], note=ALL)
        RMTask.objects.create(client=client, assignee=users["rm"], source="newsletter_comment",
                              title=payload, detail=ALL, origin_type="xss", origin_id=str(i))
        clients.append(client)
    # The personas: every name and description a payload; every client in two of them, so the
    # overlap heatmap has a cell for each pair.
    personas = list(Segment.objects.filter(kind=SegmentKind.PERSONA).order_by("code"))
    for i, persona in enumerate(personas):
        persona.name_zh = persona.name_en = PAYLOADS[i % len(PAYLOADS)][:100]
        persona.description_zh = persona.description_en = ALL
        persona.save()
        for k, client in enumerate(clients):
            if k % len(personas) in (i, (i + 1) % len(personas)) or k == i:
                SegmentMembership.objects.get_or_create(segment=persona, client=client)
    from segments.services import segment_create

    rule_segment = segment_create(code="xss_rule", name_zh=PAYLOADS[0], name_en=PAYLOADS[1],
                                  description_zh=ALL, description_en=ALL, kind="rule",
                                  rule={"all": [{"field": "aum", "op": "gte", "value": 1}]},
                                  actor=users["ops"], refresh=False)
    from segments.services import segment_refresh_run, segment_refresh_start

    run = segment_refresh_start(segment=rule_segment, trigger="command", queue=False)
    segment_refresh_run(refresh_id=run.pk)
    from newsletters import services as newsletters

    publication = newsletters.publication_create(
        actor=users["ops"], name=PAYLOADS[0], slug="xss-weekly", audience=rule_segment,
        from_name=PAYLOADS[1], from_email="research@example.com", description=ALL)
    edition = newsletters.edition_create(
        publication=publication, subject=PAYLOADS[2], preheader=PAYLOADS[4],
        author=users["ops"],
        sections=[{"kind": "editorial", "title": PAYLOADS[0], "body": ALL, "data": {}},
                  {"kind": "picks", "title": PAYLOADS[1], "body": ALL,
                   "data": {"product_codes": [p.product_code for p in products[:2]],
                            "notes": {products[0].product_code: ALL}}}])
    return {"users": users, "clients": clients, "rule_segment": rule_segment,
            "publication": publication, "edition": edition, "personas": personas}


def _pages(data) -> list[str]:
    client = data["clients"][0]
    edition = data["edition"]
    code = data["rule_segment"].code
    pages = [
        "/clients/", f"/clients/{client.client_no}/", "/clients/?q=x",
        "/segments/", f"/segments/{code}/", f"/segments/{code}/edit/", "/segments/new/",
        "/segments/personas/", f"/segments/{data['personas'][0].code}/",
        "/scoring/", "/imports/",
        "/newsletters/", f"/newsletters/publications/{data['publication'].slug}/",
        f"/newsletters/publications/{data['publication'].slug}/edit/",
        f"/newsletters/editions/{edition.pk}/", f"/newsletters/editions/{edition.pk}/edit/",
        f"/newsletters/editions/{edition.pk}/preview/?client={client.client_no}",
        f"/newsletters/editions/{edition.pk}/stats/", "/newsletters/approvals/",
        "/newsletters/phrases/",
        "/tasks/", "/accounts/audit/", "/api/docs/",
        "/", "/campaigns/", "/analytics/", f"/analytics/?compare={code}",
        f"/analytics/?compare={data['personas'][0].code}", "/analytics/retention/",
        "/analytics/funnel/", "/analytics/channels/", "/analytics/campaigns/",
        f"/analytics/drill/?metric=segment&c_code={data['personas'][0].code}",
    ]
    for model in admin.site._registry:
        meta = model._meta
        pages.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
    pages.append(reverse("admin:clients_client_change", args=[client.pk]))
    pages.append(reverse("admin:segments_segment_change", args=[data["personas"][0].pk]))
    return pages


def _log_in(browser, live_server, user):
    http = HttpClient()
    http.force_login(user)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies([{"name": "sessionid", "value": http.cookies["sessionid"].value,
                          "url": live_server.url}])
    context.add_init_script(WATCH)
    page = context.new_page()
    page.set_default_timeout(15000)
    return context, page


class Probe:
    """One role's browser: what it saw go wrong."""

    def __init__(self, page):
        self.dialogs, self.console, self.errors = [], [], []
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.on("console", lambda m: self.console.append(m.text)
                if "Content Security Policy" in m.text or "Refused to" in m.text else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))


@pytest.mark.browser
def test_stored_markup_never_runs_and_every_page_works_under_the_policy(
        browser, live_server, poisoned):
    from analytics.services import refresh_run, refresh_start

    # The analytics pages read the rollups: built over the poisoned clients and segments.
    refresh_run(refresh_id=refresh_start(full=True, trigger="test", queue=False).pk)
    pages = _pages(poisoned)
    tried = seen = tooltips = 0
    for role in ROLES:
        context, page = _log_in(browser, live_server, poisoned["users"][role])
        probe = Probe(page)
        try:
            for path in pages:
                response = page.goto(live_server.url + path)
                tried += 1
                status = response.status if response else 0
                assert status < 500, (role, path, status)
                page.wait_for_load_state("load")
                if status == 200:
                    seen += 1
                    shown, charts = page.evaluate(SHOW_EVERY_TOOLTIP)
                    tooltips += shown
                    if charts:  # the charts rendered (ECharts draws SVG here)
                        assert page.locator("[_echarts_instance_] svg").count() >= charts, path
                    if path == "/api/docs/":
                        page.locator(".swagger-ui .info").wait_for()
                    # A hovered link or a clicked payload link must not run either.
                    for link in page.locator("#xsslink").all()[:1]:
                        link.hover()
                assert page.evaluate("window.__xss") is None, (role, path)
                violations = page.evaluate("window.__csp")
                assert violations == [], (role, path, violations)
                assert probe.dialogs == [], (role, path, probe.dialogs)
                assert probe.console == [], (role, path, probe.console)
                assert probe.errors == [], (role, path, probe.errors)
                if status == 200 and path.startswith("/clients/X"):
                    assert page.locator("h1").inner_text() == PAYLOADS[0]  # text, as stored
        finally:
            context.close()
    assert seen >= 60, (seen, tried)
    assert tooltips >= 100, tooltips
    print(f"stored-XSS probe: {len(PAYLOADS)} payloads, {tried} page views by {len(ROLES)} roles "
          f"({seen} answered 200), {tooltips} chart tooltips shown, 0 ran")


@pytest.mark.browser
def test_the_overlap_heatmap_tooltip_shows_a_persona_name_as_text(browser, live_server,
                                                                   poisoned):
    context, page = _log_in(browser, live_server, poisoned["users"]["compliance"])
    try:
        page.goto(f"{live_server.url}/segments/personas/")
        chart = page.locator("#persona-overlap-chart")
        chart.locator("svg").wait_for()
        # The mouse, over a cell: the one of persona 0 with itself (top left).
        box = chart.bounding_box()
        cell = page.evaluate("""() => {
          var c = echarts.getInstanceByDom(document.getElementById("persona-overlap-chart"));
          return c.convertToPixel({seriesIndex: 0}, [0, 0]);
        }""")
        page.mouse.move(box["x"] + cell[0], box["y"] + cell[1])
        tip = chart.locator("div", has_text="×").last
        tip.wait_for()
        text = tip.inner_text()
        assert PAYLOADS[0] in text, text  # the name, as the characters it is made of
        assert tip.locator("img, svg, script, iframe").count() == 0
        assert page.evaluate("window.__xss") is None
        assert page.evaluate("window.__csp") == []
    finally:
        context.close()


def test_the_fixture_put_payloads_where_the_pages_read_them(poisoned):
    assert Interaction.objects.filter(note=ALL).count() == len(PAYLOADS)
    assert set(Segment.objects.filter(kind=SegmentKind.PERSONA).values_list(
        "name_en", flat=True)) <= {p[:100] for p in PAYLOADS}
