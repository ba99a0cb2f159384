"""The analytics pages (issue 13): overview, retention, funnel, channels, campaign results; the
client list behind a chart cell (and saving it as a static segment); exports; freshness and
"Refresh now".

Thin views: every figure comes from one analytics.selectors function (the API serves the same
dicts). A page's tables are built once here (`Table`) and serve both the HTML and the CSV/XLSX
export, so a download always holds what the page shows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext
from django.views.decorators.http import require_POST

from campaigns.models import CampaignStatus
from clients.forms import SCORE_SORTS, SORTS
from clients.scoring.models import Tier
from core.access import role_of
from core.errors import ApplicationError
from core.models import AuditAction, Role
from core.pagination import paginate
from core.permissions import capability_required, user_can
from core.services import audit_record
from core.spreadsheet import csv_lines, xlsx_bytes
from outreach.models import Channel
from segments.models import SegmentKind
from segments.services import segment_create

from . import selectors
from .filters import filter_choices, filter_params, filter_pickers, filter_query

EXPORT_TYPES = {"csv": "text/csv; charset=utf-8",
                "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
DRILL_PAGE_SIZE = 25
CELL_PREFIX = "c_"  # a drill-down's cell keys in a query string (c_from/c_to beside from/to)
INTERVALS = ("day", "week", "month")


# --- tables: one definition for the page and its export -----------------------------------------
@dataclass
class Column:
    label: str
    kind: str = "int"  # int | money | share | rate | days | text | date


@dataclass
class Table:
    key: str
    title: str
    columns: list[Column]
    rows: list[list] = field(default_factory=list)

    @property
    def display_rows(self) -> list[list[tuple[str, bool]]]:
        """Each cell as (text shown, is a number: right-aligned)."""
        return [[(_shown(c.kind, v), c.kind not in ("text", "date"))
                 for c, v in zip(self.columns, row, strict=False)] for row in self.rows]

    def export_rows(self) -> list[list]:
        return [[c.label for c in self.columns], *self.rows]


def _shown(kind: str, value) -> str:
    if value is None or value == "":
        return "—"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "money":
        return f"¥{float(value):,.2f}"
    if kind == "yuan":  # a card's big figure: whole yuan
        return f"¥{float(value):,.0f}"
    if kind == "share":
        return f"{float(value) * 100:.1f}%"
    if kind == "rate":
        return f"{float(value):.4f}"
    if kind == "days":
        return f"{float(value):g}"
    if kind == "date":
        try:
            at = dt.datetime.fromisoformat(str(value))
        except ValueError:
            return str(value)
        return f"{timezone.localtime(at) if timezone.is_aware(at) else at:%Y-%m-%d %H:%M}"
    return str(value)


def _tier_labels() -> dict[str, str]:
    return {value: str(label) for value, label in Tier.choices}


def _step_labels() -> dict[str, str]:
    return {"opened": pgettext("funnel step", "Opened"),
            "funded": pgettext("funnel step", "Funded"),
            "first_purchase": pgettext("funnel step", "First purchase"),
            "repeat_purchase": pgettext("funnel step", "Repeat purchase or advisory")}


def _channel_labels() -> dict[str, str]:
    return {value: str(label) for value, label in Channel.choices}


def _channel_outcome_labels() -> dict[str, str]:
    return {"attempted": pgettext("contact", "Attempted"),
            "delivered": pgettext("contact", "Delivered"),
            "responded": pgettext("contact", "Responded"),
            "converted": pgettext("contact", "Converted")}


def _newsletter_outcome_labels() -> dict[str, str]:
    return {"recipients": _("Recipients"), "opened": pgettext("email", "Opened"),
            "clicked": pgettext("email", "Clicked"), "rated": pgettext("feedback", "Rated"),
            "commented": _("Commented or replied"),
            "unsubscribed": pgettext("email", "Unsubscribed")}


def _campaign_outcome_labels() -> dict[str, str]:
    return {"members": pgettext("campaign", "Members"), "contacted": _("Contacted"),
            "converted": _("Converted")}


def _kpi_labels() -> dict[str, str]:
    return {"clients": _("Clients"), "active_clients": _("Active clients"),
            "aum": _("AUM (CNY)"), "revenue": _("Revenue (CNY)"),
            "new_accounts": _("New accounts"), "funded_rate": _("Funded rate")}


KPI_KINDS = {"clients": "int", "active_clients": "int", "aum": "money", "revenue": "money",
             "new_accounts": "int", "funded_rate": "share"}
# Level figures compare the last period; flows add up over the window.
KPI_LEVELS = ("clients", "active_clients", "aum")
KPI_FLOWS = ("revenue", "new_accounts")


def kpi_cards(series: list[dict], previous: list[dict]) -> list[dict]:
    """The figure of each KPI over the window against the window before it (环比): levels at the
    last period, flows summed, the funded rate weighted by the new accounts it is a share of."""
    labels = _kpi_labels()

    def value(rows: list[dict], key: str):
        if not rows:
            return None
        if key in KPI_LEVELS:
            return rows[-1][key]
        if key in KPI_FLOWS:
            return sum(r[key] or 0 for r in rows)
        opened = sum(r["new_accounts"] or 0 for r in rows)
        if not opened:
            return None
        return round(sum((r["funded_rate"] or 0) * (r["new_accounts"] or 0) for r in rows)
                     / opened, 4)

    cards = []
    for key, label in labels.items():
        now, before = value(series, key), value(previous, key)
        kind = "yuan" if KPI_KINDS[key] == "money" else KPI_KINDS[key]
        change = None
        if now is not None and before not in (None, 0):
            change = (now - before) / before
        cards.append({"key": key, "label": label, "value": now,
                      "shown": _shown(kind, now), "previous": before,
                      "previous_shown": _shown(kind, before),
                      "change": change, "change_shown": _shown("share", change)
                      if change is not None else "", "up": change is not None and change > 0,
                      "down": change is not None and change < 0})
    return cards


# --- pages -------------------------------------------------------------------------------------
@dataclass
class PageSpec:
    key: str
    title: Callable[[], str]
    template: str
    read: Callable  # (request, filters) -> figures dict
    tables: Callable  # (figures) -> list[Table]
    chart: Callable  # (figures) -> dict for the json_script
    extra: tuple[str, ...] = ()


def _overview_read(request, filters):
    interval = request.GET.get("interval") or "month"
    codes = [c for c in request.GET.getlist("compare") if c] or None
    return {"kpis": selectors.kpi_series(user=request.user, filters=filters, interval=interval),
            "tiers": selectors.tier_migration(user=request.user, filters=filters),
            "segments": selectors.segment_comparison(user=request.user, filters=filters,
                                                     codes=codes),
            "interval": interval}


def _overview_tables(figures) -> list[Table]:
    labels = _kpi_labels()
    kpis = Table("kpis", _("Figures by period"), [
        Column(pgettext("time", "Period"), "text"),
        *[Column(labels[k], KPI_KINDS[k]) for k in labels]],
        [[r["period"], *[r[k] for k in labels]] for r in figures["kpis"]["series"]])
    tiers = figures["tiers"]
    names = _tier_labels()
    cells = {(m["from"], m["to"]): m["clients"] for m in tiers["matrix"]}
    migration = Table("tier_migration", _("Value-tier migration"), [
        Column(_("From (rows) → to (columns)"), "text"),
        *[Column(names.get(t, t)) for t in tiers["tiers"]]],
        [[names.get(f, f), *[cells.get((f, t), 0) for t in tiers["tiers"]]]
         for f in tiers["tiers"]])
    segments = Table("segments", _("Persona and segment comparison"), [
        Column(pgettext("segment", "Code"), "text"), Column(pgettext("segment", "Name"), "text"),
        Column(_("Clients")), Column(_("Active clients")), Column(_("AUM (CNY)"), "money"),
        Column(_("Revenue (CNY)"), "money"), Column(_("Funded rate"), "share")],
        [[s["code"], s["name"], s["clients"], s["active_clients"], s["aum"], s["revenue"],
          s["funded_rate"]] for s in figures["segments"]["segments"]])
    return [kpis, migration, segments]


def _overview_chart(figures) -> dict:
    tiers = figures["tiers"]
    names = _tier_labels()
    return {"kpis": figures["kpis"], "kpi_labels": _kpi_labels(), "kpi_kinds": KPI_KINDS,
            "tiers": [{"code": t, "name": names.get(t, t)} for t in tiers["tiers"]],
            "matrix": tiers["matrix"], "segments": figures["segments"]["segments"],
            "labels": {"previous": _("Previous period"), "current": _("This period"),
                       "from_tier": _("Tier on %(date)s") % {"date": tiers.get("from_as_of")
                                                               or "—"},
                       "to_tier": _("Tier on %(date)s") % {"date": tiers.get("to_as_of") or "—"},
                       "clients": _("Clients"), "active_clients": _("Active clients")}}


def _retention_read(request, filters):
    months = request.GET.get("months") or "12"
    try:
        months = int(months)
    except ValueError:
        raise ApplicationError(_("Months is a whole number from 1 to 24."),
                               fields={"months": [_("A whole number from 1 to 24.")]}) from None
    return {"retention": selectors.retention(user=request.user, filters=filters, months=months),
            "months": months}


def _retention_tables(figures) -> list[Table]:
    cohorts = figures["retention"]["cohorts"]
    width = max((len(c["retention"]) for c in cohorts), default=0)
    return [Table("retention", _("Retention by opening month"), [
        Column(_("Opening month"), "text"), Column(_("Cohort size")),
        *[Column(_("Month %(n)s") % {"n": k}, "share") for k in range(width)]],
        [[c["cohort"], c["size"], *c["retention"], *[None] * (width - len(c["retention"]))]
         for c in cohorts])]


def _retention_chart(figures) -> dict:
    return {"cohorts": figures["retention"]["cohorts"],
            "labels": {"month": _("Months after opening"), "cohort": _("Opening month"),
                       "retention": _("Retention")}}


def _funnel_read(request, filters):
    return {"funnel": selectors.funnel(user=request.user, filters=filters)}


def _funnel_tables(figures) -> list[Table]:
    names = _step_labels()
    return [Table("funnel", _("Private-domain funnel"), [
        Column(pgettext("funnel", "Step"), "text"), Column(_("Clients")),
        Column(_("Conversion from previous step"), "share"),
        Column(_("Median days from previous step"), "days")],
        [[names.get(s["step"], s["step"]), s["clients"], s["conversion_from_previous"],
          s["median_days_from_previous"]] for s in figures["funnel"]["steps"]])]


def _funnel_chart(figures) -> dict:
    names = _step_labels()
    return {"steps": [{**s, "name": names.get(s["step"], s["step"])}
                      for s in figures["funnel"]["steps"]],
            "labels": {"clients": _("Clients"), "conversion": _("Conversion from previous step"),
                       "median_days": _("Median days from previous step")}}


def _channels_read(request, filters):
    return {"channels": selectors.channels(user=request.user, filters=filters),
            "newsletters": selectors.newsletters(user=request.user, filters=filters)}


def _channel_columns() -> list[Column]:
    return [Column(label) for label in _channel_outcome_labels().values()]


def _channels_tables(figures) -> list[Table]:
    names = _channel_labels()
    channels = Table("channels", _("Reach and response by channel"), [
        Column(pgettext("contact", "Channel"), "text"), *_channel_columns()],
        [[names.get(c["channel"], c["channel"]), c["attempted"], c["delivered"], c["responded"],
          c["converted"]] for c in figures["channels"]["channels"]])
    editions = Table("newsletters", _("Newsletter engagement by edition"), [
        Column(_("Edition"), "text"), Column(_("Publication"), "text"),
        Column(pgettext("edition", "Title"), "text"), Column(_("Sent at"), "date"),
        Column(_("Recipients")), Column(pgettext("email", "Opened")),
        Column(pgettext("email", "Clicked")), Column(pgettext("feedback", "Rated")),
        Column(_("Average rating"), "days"), Column(_("Comments and replies")),
        Column(_("Unsubscribes"))],
        [[e["edition_id"], e["publication"], e["title"], e["sent_at"], e["recipients"],
          e["opened"], e["clicked"], e["rated"], e["rating_avg"], e["comments"],
          e["unsubscribes"]] for e in figures["newsletters"]["editions"]])
    return [channels, editions]


def _channels_chart(figures) -> dict:
    names = _channel_labels()
    return {"channels": [{**c, "name": names.get(c["channel"], c["channel"])}
                         for c in figures["channels"]["channels"]],
            "editions": figures["newsletters"]["editions"],
            "labels": {**_channel_outcome_labels(), **_newsletter_outcome_labels()}}


def _campaigns_read(request, filters):
    return {"campaigns": selectors.campaigns_overview(user=request.user, filters=filters)}


def _campaigns_tables(figures) -> list[Table]:
    statuses = dict(CampaignStatus.choices)
    return [Table("campaigns", _("Campaign results"), [
        Column(pgettext("campaign", "Code"), "text"), Column(pgettext("campaign", "Name"), "text"),
        Column(_("Status"), "text"), Column(_("Launched at"), "date"),
        Column(pgettext("campaign", "Members")), Column(_("Contacted")),
        Column(_("Cost of contacts (CNY)"), "money"), Column(_("Converted")),
        Column(_("Revenue (CNY)"), "money"), Column(_("Net inflow (CNY)"), "money"),
        Column(_("Uplift vs holdout"), "rate"), Column(_("95% CI low"), "rate"),
        Column(_("95% CI high"), "rate"), Column(_("p-value"), "rate")],
        [[c["code"], c["name"], str(statuses.get(c["status"], c["status"])), c["launched_at"],
          c["members"], c["contacted"], c["contact_cost"], c["converted"], c["revenue"],
          c["net_inflow"], c["uplift"], c["ci_low"], c["ci_high"], c["p_value"]]
         for c in figures["campaigns"]["campaigns"]])]


def _campaigns_chart(figures) -> dict:
    return {"campaigns": figures["campaigns"]["campaigns"],
            "labels": {"uplift": _("Uplift vs holdout"), "ci": _("95% CI"),
                       "revenue": _("Revenue (CNY)"),
                       "cost": _("Cost of contacts (CNY)"), **_campaign_outcome_labels()}}


PAGES = {
    "overview": PageSpec("overview", lambda: _("Overview"), "analytics/overview.html",
                         _overview_read, _overview_tables, _overview_chart,
                         extra=("interval",)),
    "retention": PageSpec("retention", lambda: _("Retention"), "analytics/retention.html",
                          _retention_read, _retention_tables, _retention_chart,
                          extra=("months",)),
    "funnel": PageSpec("funnel", lambda: _("Private-domain funnel"), "analytics/funnel.html",
                       _funnel_read, _funnel_tables, _funnel_chart),
    "channels": PageSpec("channels", lambda: _("Channels"), "analytics/channels.html",
                         _channels_read, _channels_tables, _channels_chart),
    "campaigns": PageSpec("campaigns", lambda: _("Campaign results"),
                          "analytics/campaigns.html", _campaigns_read, _campaigns_tables,
                          _campaigns_chart),
}
NAV = (("overview", gettext_lazy("Overview")), ("retention", gettext_lazy("Retention")),
       ("funnel", gettext_lazy("Funnel")), ("channels", gettext_lazy("Channels")),
       ("campaigns", gettext_lazy("Campaign results")))


def _export(request, *, table: Table, fmt: str):
    audit_record(action=AuditAction.EXPORT, actor=request.user, object_type="analytics",
                 object_id=table.key, request=request,
                 detail={"format": fmt, "what": table.key, "filters": filter_params(request.GET)})
    filename = f"analytics-{table.key}-{timezone.localtime():%Y%m%d-%H%M}.{fmt}"
    if fmt == "csv":
        response = StreamingHttpResponse(csv_lines(table.export_rows()),
                                         content_type=EXPORT_TYPES[fmt])
    else:
        response = HttpResponse(xlsx_bytes(table.export_rows(), title=table.key),
                                content_type=EXPORT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _errors(exc: ApplicationError) -> dict:
    return {"message": exc.message, "fields": exc.fields or {}}


def _freshness() -> dict:
    """freshness() with its refresh time in local time, for the page to show."""
    fresh = selectors.freshness()
    shown = _shown("date", fresh["refreshed_at"]) if fresh.get("refreshed_at") else ""
    return {**fresh, "refreshed_shown": shown}


def _nav(request) -> list[tuple[str, str, str]]:
    query = filter_query(request.GET)
    return [(key, label, reverse(f"analytics:{key}") + (f"?{query}" if query else ""))
            for key, label in NAV]


def _common_context(request, spec_key: str, extra: tuple[str, ...] = ()) -> dict:
    return {"page_key": spec_key, "nav": _nav(request),
            "choices": filter_choices(user=request.user),
            "pickers": filter_pickers(user=request.user, values=request.GET),
            "values": {**{k: request.GET.get(k, "") for k in ("from", "to", "branch", "rm",
                                                               "segment", "tier")},
                       **{k: request.GET.get(k, "") for k in extra}},
            "query": urlencode([*filter_params(request.GET, extra=extra).items(),
                                *[("compare", c) for c in request.GET.getlist("compare") if c]]),
            "filter_query": filter_query(request.GET),
            "freshness": _freshness(),
            "can_refresh": user_can(request.user, "analytics.refresh"),
            "role": role_of(request.user)}


def _render_page(request, key: str):
    spec = PAGES[key]
    context = {**_common_context(request, key, spec.extra), "title": spec.title(),
               "intervals": INTERVALS, "compared": request.GET.getlist("compare")}
    try:
        filters = selectors.filters_from(request.GET, user=request.user)
        figures = spec.read(request, filters)
    except ApplicationError as exc:
        return render(request, spec.template, {**context, "error": _errors(exc)},
                      status=exc.status)
    tables = spec.tables(figures)
    fmt = request.GET.get("format", "")
    if fmt in EXPORT_TYPES:
        wanted = request.GET.get("table") or tables[0].key
        table = next((t for t in tables if t.key == wanted), None)
        if table is not None:
            return _export(request, table=table, fmt=fmt)
        context["error"] = {"message": _("No such table to download."),
                            "fields": {"table": [_("One of: %(keys)s.") % {
                                "keys": ", ".join(t.key for t in tables)}]}}
        return render(request, spec.template, context, status=400)
    chart = spec.chart(figures)
    chart["drill"] = reverse("analytics:drill") + "?" + filter_query(request.GET)
    return render(request, spec.template, {
        **context, "figures": figures, "tables": {t.key: t for t in tables},
        "chart": chart, "as_of": figures.get("as_of") or context["freshness"].get("as_of"),
        "cards": kpi_cards(figures["kpis"]["series"], figures["kpis"]["previous"])
        if key == "overview" else None})


@capability_required("analytics.view")
def overview(request):
    return _render_page(request, "overview")


@capability_required("analytics.view")
def retention(request):
    return _render_page(request, "retention")


@capability_required("analytics.view")
def funnel(request):
    return _render_page(request, "funnel")


@capability_required("analytics.view")
def channels(request):
    return _render_page(request, "channels")


@capability_required("analytics.view")
def campaigns(request):
    return _render_page(request, "campaigns")


# --- freshness and "Refresh now" ---------------------------------------------------------------
def _freshness_response(request, *, status: int = 200, error: str = ""):
    fresh = _freshness()
    response = render(request, "analytics/_freshness.html", {
        "freshness": fresh, "can_refresh": user_can(request.user, "analytics.refresh"),
        "refresh_error": error}, status=status)
    if request.GET.get("was_running") and not fresh["running"] and not error:
        response["HX-Refresh"] = "true"  # the job is done: show the new figures
    return response


@capability_required("analytics.view")
def freshness_status(request):
    return _freshness_response(request)


@require_POST
@capability_required("analytics.refresh")
def refresh_now(request):
    from .services import refresh_start

    error = ""
    try:
        refresh_start(user=request.user, full=request.POST.get("full") == "1", trigger="page")
    except ApplicationError as exc:
        error = exc.message
    if request.headers.get("HX-Request") == "true":
        return _freshness_response(request, error=error)
    if error:
        messages.error(request, error)
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("analytics:overview")
    return redirect(back)


# --- drill-down --------------------------------------------------------------------------------
DRILL_METRICS = {
    "active": gettext_lazy("Active clients"),
    "new_accounts": gettext_lazy("New accounts"),
    "retention": gettext_lazy("Retention"),
    "funnel": gettext_lazy("Funnel"),
    "tier_migration": gettext_lazy("Value-tier migration"),
    "segment": gettext_lazy("Segment"),
    "channel": gettext_lazy("Reach and response by channel"),
    "newsletter": gettext_lazy("Newsletter engagement by edition"),
    "campaign": gettext_lazy("Campaign results"),
}


def _cell(params) -> dict[str, str]:
    return {k[len(CELL_PREFIX):]: v for k, v in params.items() if k.startswith(CELL_PREFIX)}


def _cell_label(metric: str, cell: dict[str, str]) -> str:
    name = str(DRILL_METRICS.get(metric, metric))
    tiers = _tier_labels()
    if metric in ("active", "new_accounts"):
        return f"{name} · {cell.get('period', '')}"
    if metric == "retention":
        return _("%(name)s · opened %(cohort)s · month %(month)s") % {
            "name": name, "cohort": cell.get("cohort", ""), "month": cell.get("month", "")}
    if metric == "funnel":
        return f"{name} · {_step_labels().get(cell.get('step', ''), cell.get('step', ''))}"
    if metric == "tier_migration":
        return f"{name} · {tiers.get(cell.get('from', ''), cell.get('from', ''))} → " \
               f"{tiers.get(cell.get('to', ''), cell.get('to', ''))}"
    outcome = cell.get("outcome", "")
    if metric == "channel":
        channel = cell.get("channel", "")
        return f"{name} · {_channel_labels().get(channel, channel)} · " \
               f"{_channel_outcome_labels().get(outcome, outcome)}"
    if metric == "newsletter":
        return _("%(name)s · edition %(edition)s · %(outcome)s") % {
            "name": name, "edition": cell.get("edition", ""),
            "outcome": _newsletter_outcome_labels().get(outcome, outcome)}
    if metric == "campaign":
        return f"{name} · {cell.get('code', '')} · " \
               f"{_campaign_outcome_labels().get(outcome, outcome)}"
    return f"{name} · {cell.get('code', '')}"


def _drill_query(params) -> str:
    """The filters, the metric and the cell of a drill-down, as a query string."""
    return urlencode(_hidden_fields(params))


def _drilled(request, source):
    filters = selectors.filters_from(source, user=request.user)
    metric = source.get("metric", "")
    return selectors.drill_clients(user=request.user, filters=filters, metric=metric,
                                   cell=_cell(source)), metric


@capability_required("analytics.view")
def drill(request):
    role = role_of(request.user)
    metric, cell = request.GET.get("metric", ""), _cell(request.GET)
    context = {"nav": _nav(request), "title": _cell_label(metric, cell), "metric": metric,
               "cell": cell, "hidden": _hidden_fields(request.GET),
               "back_query": filter_query(request.GET),
               "can_save": user_can(request.user, "segments.manage"),
               "show_branch": role not in (None, Role.RM), "show_rm": role != Role.RM,
               "can_select": False, "freshness": _freshness(),
               "can_refresh": user_can(request.user, "analytics.refresh")}
    try:
        qs, metric = _drilled(request, request.GET)
    except ApplicationError as exc:
        return render(request, "analytics/drill.html", {**context, "error": _errors(exc)},
                      status=exc.status)
    sort = request.GET.get("sort", "")
    if sort not in SORTS or sort in SCORE_SORTS:
        sort = ""
    qs = qs.select_related("branch", "rm", "current_score").order_by(
        *(SORTS[sort] if sort else ("client_no",)))
    try:
        number = max(1, int(request.GET.get("page", 1)))
    except (TypeError, ValueError):
        number = 1
    page = paginate(qs, page=number, per_page=DRILL_PAGE_SIZE, whole_table=False)
    context.update({"page": page, "sort": sort,
                    "default_name": f"{_cell_label(metric, cell)} · "
                                    f"{timezone.localdate():%Y-%m-%d}"[:100]})
    if request.headers.get("HX-Request") == "true" and \
            request.headers.get("HX-History-Restore-Request") != "true":
        response = render(request, "clients/_client_table.html", context)
    else:
        response = render(request, "analytics/drill.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _hidden_fields(params) -> list[tuple[str, str]]:
    keep = filter_params(params)
    keep["metric"] = params.get("metric", "")
    keep.update({k: v for k, v in params.items() if k.startswith(CELL_PREFIX)})
    return list(keep.items())


@require_POST
@capability_required("segments.manage")
def drill_save(request):
    """The clients behind a chart cell as a new static segment (usable in a campaign)."""
    back = reverse("analytics:drill") + "?" + _drill_query(request.POST)
    try:
        qs, _metric = _drilled(request, request.POST)
        client_nos = list(qs.order_by("client_no").values_list("client_no", flat=True))
        if not client_nos:
            raise ApplicationError(_("No client is behind this figure: nothing to save."))
        name = (request.POST.get("name") or "").strip()[:100]
        code = "drill-" + timezone.localtime().strftime("%Y%m%d-%H%M%S-%f")
        segment = segment_create(code=code, kind=SegmentKind.STATIC, client_nos=client_nos,
                                 name_zh=name, name_en=name, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect(back)
    messages.success(request, _("Saved %(n)d clients as the static segment %(name)s.")
                     % {"n": len(client_nos), "name": segment.name})
    return redirect("segments:segment_detail", code=segment.code)

