"""Reads of analytics: one function per metric, shared by the pages, the exports and the API
(shared/API.md "Analytics", DOMAIN.md "Operations metrics").

Every function takes the requesting user and limits the figures to the clients that user may
see (core.access.client_scope_q: the rollups carry each client's branch and RM under the same
column names as Client). Figures come from the rollups (analytics.rollups), never from the raw
tables at page time: a branch or RM filter reads the aggregates; a segment filter joins the
segment's members with the per-client rollup rows. Money is a float rounded to 2 places,
shares a float 0..1 rounded to 4, dates ISO strings.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import (
    Aggregate,
    Count,
    Exists,
    F,
    FloatField,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns.models import Campaign
from campaigns.selectors import MEMBER_OUTCOMES, campaign_outcome_client_ids, campaign_results
from clients.models import Client, Transaction
from clients.scoring.models import ClientScore, Tier
from clients.selectors import client_queryset_for
from core.access import ALL_CLIENTS_ROLES, client_scope_q, role_of
from core.errors import ApplicationError
from core.models import Branch, JobStatus, Role, User
from newsletters.models import Edition, Feedback, Suppression
from outreach.models import (
    Channel,
    Contact,
    ContactSource,
    ContactStatus,
    Delivery,
    DeliveryStatus,
)
from segments.models import Segment, SegmentKind

from .models import (
    AnalyticsRefresh,
    ClientDay,
    ClientFunnel,
    ClientMonthActivity,
    CohortActivity,
    CohortBranch,
    DailyBranchFigures,
    DailyFigures,
    SegmentCohortActivity,
    SegmentDailyFigures,
    SegmentMember,
    SegmentPairFigures,
)

INTERVALS = ("day", "week", "month")
METRICS = {"active": ("period",), "new_accounts": ("period",), "retention": ("cohort", "month"),
           "funnel": ("step",), "tier_migration": ("from", "to"), "segment": ("code",),
           "channel": ("channel", "outcome"), "newsletter": ("edition", "outcome"),
           "campaign": ("code", "outcome")}
FUNNEL_STEPS = ("opened", "funded", "first_purchase", "repeat_purchase")
MAX_RETENTION_MONTHS = 24
ACTIVE_DAYS = 30
ATTEMPTED = (ContactStatus.SENT, ContactStatus.DELIVERED, ContactStatus.RESPONDED,
             ContactStatus.FAILED)
DELIVERED = (ContactStatus.DELIVERED, ContactStatus.RESPONDED)
CONVERSION_DAYS = 30  # a contact converted: the client bought within 30 days after it
CHANNEL_OUTCOMES = ("attempted", "delivered", "responded", "converted")
NEWSLETTER_OUTCOMES = ("recipients", "opened", "clicked", "rated", "commented", "unsubscribed")
CAMPAIGN_OUTCOMES = MEMBER_OUTCOMES  # members, contacted, converted (campaigns.selectors)


@dataclass(frozen=True)
class Filters:
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    branch: str | None = None
    rm: str | None = None
    segment: str | None = None
    tier: str | None = None


# --- filters -----------------------------------------------------------------------------------
def _parse_date(value: str, name: str, errors: dict) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        errors[name] = [_("Enter a date as YYYY-MM-DD.")]
        return None


def filters_from(params: Mapping[str, str], *, user) -> Filters:
    """Filters from query parameters from, to, branch, rm, segment, tier. An unknown or badly
    formed value is a 400 naming the parameter; a branch or RM outside the user's scope is a
    403 naming it."""
    errors: dict[str, list[str]] = {}
    denied: dict[str, list[str]] = {}

    def value(name: str) -> str:
        raw = params.get(name) or ""
        return raw.strip() if isinstance(raw, str) else ""

    date_from = _parse_date(value("from"), "from", errors)
    date_to = _parse_date(value("to"), "to", errors)
    if date_from and date_to and date_from > date_to:
        errors["from"] = [_("The start date is after the end date.")]
    role = role_of(user)
    branch = value("branch") or None
    if branch is not None:
        found = Branch.objects.filter(code=branch).values_list("pk", flat=True).first()
        if found is None:
            errors["branch"] = [_("No such branch.")]
        elif not _branch_in_scope(user, role, found):
            denied["branch"] = [_("This branch is outside what you may see.")]
    rm = value("rm") or None
    if rm is not None:
        found = User.objects.filter(username=rm, groups__name=Role.RM.value).first()
        if found is None:
            errors["rm"] = [_("No such relationship manager.")]
        elif not _rm_in_scope(user, role, found):
            denied["rm"] = [_("This relationship manager's book is outside what you may see.")]
    segment = value("segment") or None
    if segment is not None and not Segment.objects.filter(code=segment).exists():
        errors["segment"] = [_("No such segment.")]
    tier = value("tier") or None
    if tier is not None and tier not in Tier.values:
        errors["tier"] = [_("No such value tier.")]
    if errors:
        raise ApplicationError(_("Some filters are not valid."), fields=errors)
    if denied:
        raise ApplicationError(_("You may not see these figures."), code="out_of_scope",
                               fields=denied, status=403)
    return Filters(date_from=date_from, date_to=date_to, branch=branch, rm=rm,
                   segment=segment, tier=tier)


def _branch_in_scope(user, role, branch_id: int) -> bool:
    if role in ALL_CLIENTS_ROLES:
        return True
    if role in (Role.BRANCH_MANAGER, Role.RM):
        return user.branch_id == branch_id
    return False


def _rm_in_scope(user, role, rm) -> bool:
    if role in ALL_CLIENTS_ROLES:
        return True
    if role == Role.BRANCH_MANAGER:
        return bool(user.branch_id) and rm.branch_id == user.branch_id
    return role == Role.RM and rm.pk == user.pk


# --- freshness ---------------------------------------------------------------------------------
def freshness() -> dict:
    done = (AnalyticsRefresh.objects.filter(status=JobStatus.SUCCEEDED)
            .order_by("-finished_at").first())
    active = (AnalyticsRefresh.objects.filter(status__in=AnalyticsRefresh.ACTIVE)
              .order_by("created_at").first())
    job = active or AnalyticsRefresh.objects.order_by("-created_at").first()
    return {
        "as_of": done.as_of.isoformat() if done and done.as_of else None,
        "refreshed_at": done.finished_at.isoformat() if done and done.finished_at else None,
        "running": active is not None,
        "job": refresh_dict(job) if job else None,
    }


def refresh_dict(refresh: AnalyticsRefresh) -> dict:
    return {"id": refresh.pk, "kind": refresh.kind, "status": refresh.status,
            "progress_done": refresh.progress_done, "progress_total": refresh.progress_total,
            "percent": refresh.percent_done}


def refresh_get(*, refresh_id: int) -> AnalyticsRefresh | None:
    return AnalyticsRefresh.objects.filter(pk=refresh_id).first()


def _as_of() -> dt.date:
    done = (AnalyticsRefresh.objects.filter(status=JobStatus.SUCCEEDED, as_of__isnull=False)
            .order_by("-finished_at").values_list("as_of", flat=True).first())
    return done or timezone.localdate()


def _months_back(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    last = (_month_start(dt.date(year, month, 1), 1) - dt.timedelta(days=1)).day
    return dt.date(year, month, min(day.day, last))


def _month_start(day: dt.date, add: int = 0) -> dt.date:
    index = day.year * 12 + day.month - 1 + add
    return dt.date(index // 12, index % 12 + 1, 1)


def _window(filters: Filters, as_of: dt.date) -> tuple[dt.date, dt.date]:
    date_to = filters.date_to or as_of
    date_from = filters.date_from or (_months_back(date_to, 12) + dt.timedelta(days=1))
    return date_from, date_to


# --- scope and dimension filters ---------------------------------------------------------------
@dataclass(frozen=True)
class _Dims:
    scope: Q
    branch_id: int | None
    rm_id: int | None
    tier: str | None
    segment_id: int | None
    # No RM or tier in play (neither filtered on nor the scope of an RM): the per-branch
    # aggregates answer, a few rows a day instead of one per RM and tier.
    coarse: bool = False
    # No RM in play: the segment figures (per branch and tier) answer a segment filter.
    no_rm: bool = False

    @property
    def segment_rollup(self) -> bool:
        """A segment filter the segment figures answer (else: the members' per-client rows,
        few within one RM's book)."""
        return self.segment_id is not None and self.no_rm

    @property
    def daily(self):
        if self.segment_id is not None:
            return SegmentDailyFigures
        return DailyBranchFigures if self.coarse else DailyFigures

    @property
    def cohorts(self):
        if self.segment_id is not None:
            return SegmentCohortActivity
        return CohortBranch if self.coarse else CohortActivity

    def q(self, prefix: str = "") -> Q:
        """On a rollup table (columns branch_id, rm_id, tier), or on `daily` and `cohorts`
        (which, with a segment filter, are the segment's figures)."""
        q = self.scope
        if self.branch_id is not None:
            q &= Q(**{f"{prefix}branch_id": self.branch_id})
        if self.rm_id is not None:
            q &= Q(**{f"{prefix}rm_id": self.rm_id})
        if self.tier is not None:
            q &= Q(**{f"{prefix}tier": self.tier})
        return q

    def aggregate_q(self) -> Q:
        """On `daily` and `cohorts`."""
        q = self.q()
        if self.segment_id is not None:
            q &= Q(segment_id=self.segment_id)
        return q

    def members(self) -> QuerySet:
        """The segment's members as of the last refresh (those its figures count)."""
        return SegmentMember.objects.filter(segment_id=self.segment_id).values("client_id")

    def funnel(self) -> QuerySet[ClientFunnel]:
        rows = ClientFunnel.objects.filter(self.q())
        if self.segment_id is not None:
            rows = rows.filter(client_id__in=self.members())
        return rows

    def client_ids(self) -> QuerySet:
        return self.funnel().values("client_id")


def _dims(user, filters: Filters) -> _Dims:
    branch_id = rm_id = segment_id = None
    if filters.branch:
        branch_id = Branch.objects.filter(code=filters.branch).values_list("pk", flat=True).first()
        branch_id = -1 if branch_id is None else branch_id
    if filters.rm:
        rm_id = User.objects.filter(username=filters.rm).values_list("pk", flat=True).first()
        rm_id = -1 if rm_id is None else rm_id
    if filters.segment:
        segment_id = Segment.objects.filter(code=filters.segment).values_list(
            "pk", flat=True).first()
        segment_id = -1 if segment_id is None else segment_id
    no_rm = rm_id is None and role_of(user) != Role.RM
    return _Dims(scope=client_scope_q(user), branch_id=branch_id, rm_id=rm_id,
                 tier=filters.tier, segment_id=segment_id,
                 coarse=no_rm and filters.tier is None, no_rm=no_rm)


def _money(value) -> float:
    return round(float(value or 0), 2)


def _share(part, whole) -> float | None:
    return round(part / whole, 4) if whole else None


# --- KPIs over time ----------------------------------------------------------------------------
def _periods(date_from: dt.date, date_to: dt.date, interval: str) -> list[tuple[str, dt.date,
                                                                              dt.date]]:
    periods = []
    day = date_from
    while day <= date_to:
        if interval == "day":
            end, label = day, day.isoformat()
        elif interval == "week":
            end = day + dt.timedelta(days=6 - day.weekday())
            year, week, _weekday = day.isocalendar()
            label = f"{year}-W{week:02d}"
        else:
            end = _month_start(day, 1) - dt.timedelta(days=1)
            label = f"{day.year}-{day.month:02d}"
        end = min(end, date_to)
        periods.append((label, day, end))
        day = end + dt.timedelta(days=1)
    return periods


def _daily_rows(dims: _Dims, date_to: dt.date) -> dict[dt.date, dict]:
    """Per day up to `date_to`: new accounts, funded, their AUM, revenue, active change."""
    if dims.segment_id is None or dims.segment_rollup:
        rows = (dims.daily.objects.filter(dims.aggregate_q(), day__lte=date_to).values("day")
                .annotate(new_accounts=Sum("new_accounts"), new_funded=Sum("new_funded"),
                          new_aum=Sum("new_aum"), revenue=Sum("revenue"),
                          active_delta=Sum("active_delta")).order_by())
        return {r["day"]: r for r in rows}
    ids = dims.client_ids()
    by_day: dict[dt.date, dict] = defaultdict(lambda: dict.fromkeys(
        ("new_accounts", "new_funded", "new_aum", "revenue", "active_delta"), 0))
    for r in (ClientFunnel.objects.filter(client_id__in=ids, opened_on__lte=date_to)
              .values("opened_on").annotate(n=Count("client_id"),
                                            funded=Count("first_funded_on"), aum=Sum("aum"))
              .order_by()):
        row = by_day[r["opened_on"]]
        row.update(new_accounts=r["n"], new_funded=r["funded"], new_aum=r["aum"] or 0)
    for r in (ClientDay.objects.filter(client_id__in=ids, day__lte=date_to).values("day")
              .annotate(revenue=Sum("revenue"), active_delta=Sum("active_delta")).order_by()):
        row = by_day[r["day"]]
        row.update(revenue=r["revenue"] or 0, active_delta=r["active_delta"] or 0)
    return by_day


def _series(by_day: dict[dt.date, dict], periods, as_of: dt.date) -> list[dict]:
    days = sorted(by_day)
    out = []
    clients = active = 0
    aum = 0
    i = 0
    for label, start, end in periods:
        revenue = new_accounts = new_funded = 0
        while i < len(days) and days[i] <= end:
            row = by_day[days[i]]
            clients += row["new_accounts"] or 0
            aum += row["new_aum"] or 0
            if days[i] <= min(end, as_of):
                active += row["active_delta"] or 0
            if days[i] >= start:
                revenue += row["revenue"] or 0
                new_accounts += row["new_accounts"] or 0
                new_funded += row["new_funded"] or 0
            i += 1
        out.append({"period": label, "clients": clients, "active_clients": active,
                    "aum": _money(aum), "revenue": _money(revenue),
                    "new_accounts": new_accounts, "funded_rate": _share(new_funded,
                                                                        new_accounts)})
    return out


def kpi_series(*, user, filters: Filters, interval: str = "month") -> dict:
    """Clients (opened by the period's end), active clients (on its last day), AUM (today's,
    of the clients opened by the period's end: AUM history is not kept), revenue and new
    accounts in the period, funded rate (accounts opened in the period funded by now); and the
    window of equal length just before, for period-on-period comparison."""
    if interval not in INTERVALS:
        raise ApplicationError(_("Choose day, week or month."),
                               fields={"interval": [_("Choose day, week or month.")]})
    as_of = _as_of()
    date_from, date_to = _window(filters, as_of)
    length = (date_to - date_from).days + 1
    prev_to = date_from - dt.timedelta(days=1)
    prev_from = prev_to - dt.timedelta(days=length - 1)
    by_day = _daily_rows(_dims(user, filters), date_to)
    return {"as_of": as_of.isoformat(), "interval": interval,
            "date_from": date_from.isoformat(), "date_to": date_to.isoformat(),
            "series": _series(by_day, _periods(date_from, date_to, interval), as_of),
            "previous": _series(by_day, _periods(prev_from, prev_to, interval), as_of)}


# --- value-tier migration ----------------------------------------------------------------------
def _score_date(on_or_before: dt.date) -> tuple[dt.date, int] | None:
    row = (ClientScore.objects.filter(as_of__lte=on_or_before).order_by("-as_of", "-scheme_id")
           .values_list("as_of", "scheme_id").first())
    return row


def tier_migration(*, user, filters: Filters) -> dict:
    """Clients by their tier at the last scoring on or before `from` against the last on or
    before `to` (the scoped clients with both scores). With no scoring that old, the first
    scoring inside the range stands for its start (the answer names both dates)."""
    as_of = _as_of()
    date_from, date_to = _window(filters, as_of)
    start, end = _score_date(date_from), _score_date(date_to)
    if start is None:
        start = (ClientScore.objects.filter(as_of__gt=date_from, as_of__lte=date_to)
                 .order_by("as_of", "scheme_id").values_list("as_of", "scheme_id").first())
    tiers = list(Tier.values)
    counts: dict[tuple[str, str], int] = {}
    if start and end:
        earlier = ClientScore.objects.filter(as_of=start[0], scheme_id=start[1],
                                             client_id=OuterRef("client_id")).values("tier")[:1]
        rows = (ClientScore.objects.filter(as_of=end[0], scheme_id=end[1],
                                           client_id__in=_dims(user, filters).client_ids())
                .annotate(before=Subquery(earlier)).exclude(before=None)
                .values("before", "tier").annotate(n=Count("id")).order_by())
        counts = {(r["before"], r["tier"]): r["n"] for r in rows}
    return {"from_as_of": start[0].isoformat() if start else None,
            "to_as_of": end[0].isoformat() if end else None, "tiers": tiers,
            "matrix": [{"from": a, "to": b, "clients": counts.get((a, b), 0)}
                       for a in tiers for b in tiers]}


# --- segments ----------------------------------------------------------------------------------
def segment_comparison(*, user, filters: Filters, codes: list[str] | None = None) -> dict:
    """Per persona segment (or the given codes), its scoped members: clients, active on `to`,
    AUM, revenue in the window, and the share of them ever funded."""
    as_of = _as_of()
    date_from, date_to = _window(filters, as_of)
    segments = Segment.objects.filter(is_active=True)
    if codes:
        segments = Segment.objects.filter(code__in=codes)
    else:
        segments = segments.filter(kind=SegmentKind.PERSONA)
    segments = list(segments.order_by("code"))
    dims = _dims(user, filters)
    window = (date_from, date_to, min(date_to, as_of))
    ids = [segment.pk for segment in segments]
    if not dims.no_rm:  # within an RM's book: the few clients' own rows
        figures = _segment_figures_of_rows(dims, ids, *window)
    elif dims.segment_id is None:
        figures = _segment_figures(dims, SegmentDailyFigures, ids, *window)
    else:
        # Within a segment filter: a persona's figures are those of its pair with the filter's
        # segment (the filter's segment itself, its own figures); any other segment compared
        # has no pair figures, and its members in the filter's segment are read row by row.
        paired = [s.pk for s in segments if s.kind == SegmentKind.PERSONA
                  and s.pk != dims.segment_id]
        itself = [pk for pk in ids if pk == dims.segment_id]
        rest = [pk for pk in ids if pk not in paired and pk not in itself]
        figures = {**_segment_figures(dims, SegmentPairFigures, paired, *window),
                   **_segment_figures(dims, SegmentDailyFigures, itself, *window),
                   **_segment_figures_of_rows(dims, rest, *window)}
    out = []
    for segment in segments:
        f = figures.get(segment.pk, {})
        clients = f.get("clients") or 0
        out.append({"code": segment.code, "name": segment.name, "clients": clients,
                    "active_clients": f.get("active") or 0, "aum": _money(f.get("aum")),
                    "revenue": _money(f.get("revenue")),
                    "funded_rate": _share(f.get("funded") or 0, clients)})
    return {"as_of": as_of.isoformat(), "segments": out}


def _segment_figures(dims: _Dims, model, segment_ids: list[int], date_from: dt.date,
                     date_to: dt.date, active_day: dt.date) -> dict[int, dict]:
    """Per segment, from its daily figures (`SegmentDailyFigures`; `SegmentPairFigures`: of its
    members in the filter's segment): clients (every opening), funded, AUM, revenue in the
    window, active on `active_day` (the active changes summed up to it)."""
    if not segment_ids:
        return {}
    key = "segment_id"
    rows = model.objects.filter(dims.q())
    if model is SegmentPairFigures:
        key = "other_id"
        rows = rows.filter(segment_id=dims.segment_id)
    rows = (rows.filter(**{f"{key}__in": segment_ids}).values(key)
            .annotate(clients=Sum("new_accounts"), funded=Sum("new_funded"), aum=Sum("new_aum"),
                      revenue=Sum("revenue", filter=Q(day__gte=date_from, day__lte=date_to)),
                      active=Sum("active_delta", filter=Q(day__lte=active_day)))
            .order_by())
    return {r[key]: r for r in rows}


def _segment_figures_of_rows(dims: _Dims, segment_ids: list[int], date_from: dt.date,
                             date_to: dt.date, active_day: dt.date) -> dict[int, dict]:
    """The same from the per-client rows of the clients in play (within an RM's book, or
    within the filter's segment for segments other than personas: no rollup has the pair),
    every segment at once."""
    if not segment_ids:
        return {}
    in_play = dims.client_ids()
    if dims.scope == Q() and dims.branch_id is None and dims.rm_id is None and dims.tier is None:
        in_play = dims.members()  # every client of the filter's segment is in play
    try:
        ids_sql, ids_params = in_play.query.sql_with_params()
    except EmptyResultSet:
        return {}
    member, funnel, day = (SegmentMember._meta.db_table, ClientFunnel._meta.db_table,
                           ClientDay._meta.db_table)
    in_segments = ", ".join(["%s"] * len(segment_ids))
    since = active_day - dt.timedelta(days=ACTIVE_DAYS)
    # Each client's figures once (not once per segment), then summed per segment.
    sql = (f"WITH pairs AS (SELECT sm.segment_id, sm.client_id FROM {member} sm "
           f"WHERE sm.segment_id IN ({in_segments}) AND sm.client_id IN ({ids_sql})), "
           f"figures AS (SELECT d.client_id, "
           f"SUM(CASE WHEN d.day >= %s THEN d.revenue ELSE 0 END) AS revenue, "
           f"MAX(CASE WHEN d.purchases > 0 AND d.day > %s AND d.day <= %s THEN 1 ELSE 0 END) "
           f"AS active FROM {day} d WHERE d.client_id IN (SELECT client_id FROM pairs) "
           f"AND d.day > %s AND d.day <= %s GROUP BY d.client_id) "
           f"SELECT p.segment_id, COUNT(*), COUNT(f.first_funded_on), SUM(f.aum), "
           f"SUM(x.revenue), SUM(x.active) FROM pairs p "
           f"JOIN {funnel} f ON f.client_id = p.client_id "
           f"LEFT JOIN figures x ON x.client_id = p.client_id GROUP BY p.segment_id")
    params = [*segment_ids, *ids_params, date_from, since, active_day,
              min(date_from - dt.timedelta(days=1), since), date_to]
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL work_mem = '64MB'")  # the per-client sums in memory
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return {segment_id: {"clients": clients, "funded": funded, "aum": aum, "revenue": revenue,
                         "active": active or 0}
            for segment_id, clients, funded, aum, revenue, active in rows}


# --- retention ---------------------------------------------------------------------------------
def _month_index(day: dt.date) -> int:
    return day.year * 12 + day.month - 1


def retention(*, user, filters: Filters, months: int = 12) -> dict:
    """Opening-month cohorts in the window (at most the last `months`): the share of each
    cohort with a purchase in its month 0, 1, … up to the month of as_of (at most 24)."""
    if not isinstance(months, int) or not 1 <= months <= MAX_RETENTION_MONTHS:
        raise ApplicationError(_("Choose between 1 and 24 months."),
                               fields={"months": [_("Choose between 1 and 24 months.")]})
    as_of = _as_of()
    date_from, date_to = _window(filters, as_of)
    first, last = _month_start(date_from), _month_start(date_to)
    span = _month_index(last) - _month_index(first) + 1
    if span > months:
        first = _month_start(last, -(months - 1))
    dims = _dims(user, filters)
    cohort_end = _month_start(last, 1)
    sizes: dict[dt.date, int] = defaultdict(int)
    active: dict[tuple[dt.date, dt.date], int] = {}
    if dims.segment_id is None or dims.segment_rollup:
        for r in (dims.daily.objects.filter(dims.aggregate_q(), day__gte=first,
                                            day__lt=cohort_end)
                  .values("day").annotate(n=Sum("new_accounts")).order_by()):
            sizes[_month_start(r["day"])] += r["n"] or 0
        for r in (dims.cohorts.objects.filter(dims.aggregate_q(), cohort__gte=first,
                                              cohort__lt=cohort_end, month__lte=as_of)
                  .values("cohort", "month").annotate(n=Sum("clients")).order_by()):
            active[(r["cohort"], r["month"])] = r["n"] or 0
    else:
        funnel = dims.funnel().filter(opened_on__gte=first, opened_on__lt=cohort_end)
        opened = dict(funnel.values_list("client_id", "opened_on"))
        for day in opened.values():
            sizes[_month_start(day)] += 1
        counts: dict[tuple[dt.date, dt.date], int] = defaultdict(int)
        for client_id, month in ClientMonthActivity.objects.filter(
                client_id__in=funnel.values("client_id"), month__lte=as_of).values_list(
                "client_id", "month"):
            counts[(_month_start(opened[client_id]), month)] += 1
        active = dict(counts)
    cohorts = []
    cohort = first
    while cohort <= last:
        size = sizes.get(cohort, 0)
        if size:
            reach = min(_month_index(as_of) - _month_index(cohort), MAX_RETENTION_MONTHS)
            cohorts.append({"cohort": f"{cohort.year}-{cohort.month:02d}", "size": size,
                            "retention": [round(active.get((cohort, _month_start(cohort, k)),
                                                           0) / size, 4)
                                          for k in range(reach + 1)]})
        cohort = _month_start(cohort, 1)
    return {"as_of": as_of.isoformat(), "cohorts": cohorts}


# --- funnel ------------------------------------------------------------------------------------
_STEP_DATES = {"opened": "opened_on", "funded": "first_funded_on",
               "first_purchase": "first_purchase_on", "repeat_purchase": "repeat_on"}


def _step_q(step: str) -> Q:
    q = Q()
    for name in FUNNEL_STEPS[1:FUNNEL_STEPS.index(step) + 1]:
        q &= Q(**{f"{_STEP_DATES[name]}__isnull": False})
    return q


class _DaysBetween(Func):
    """later - earlier, in days (date minus date is an integer on PostgreSQL)."""

    arg_joiner = " - "
    template = "(%(expressions)s)"
    output_field = IntegerField()


class _Median(Aggregate):
    """The median (PostgreSQL percentile_cont, FILTER-able like any aggregate)."""

    function = "percentile_cont"
    name = "Median"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


def _funnel_figures(rows: QuerySet[ClientFunnel]) -> dict:
    """Each step's clients and, from the second step on, the median days from the previous
    one: one pass over the rows on PostgreSQL; SQLite (no percentile_cont) takes the medians
    from the day pairs."""
    aggregates = {"opened": Count("client_id"),
                  **{step: Count("client_id", filter=_step_q(step)) for step in FUNNEL_STEPS[1:]}}
    postgres = connection.vendor == "postgresql"
    if postgres:
        for previous, step in zip(FUNNEL_STEPS, FUNNEL_STEPS[1:], strict=False):
            aggregates[f"median_{step}"] = _Median(
                _DaysBetween(F(_STEP_DATES[step]), F(_STEP_DATES[previous])),
                filter=_step_q(step))
    figures = rows.aggregate(**aggregates)
    for previous, step in zip(FUNNEL_STEPS, FUNNEL_STEPS[1:], strict=False):
        if postgres:
            value = figures[f"median_{step}"]
        else:
            days = [(later - earlier).days for later, earlier in rows.filter(
                _step_q(step)).values_list(_STEP_DATES[step], _STEP_DATES[previous])]
            value = statistics.median(days) if days else None
        figures[f"median_{step}"] = None if value is None else round(float(value), 1)
    return figures


def _funnel_rows(user, filters: Filters) -> QuerySet[ClientFunnel]:
    as_of = _as_of()
    date_from, date_to = _window(filters, as_of)
    return _dims(user, filters).funnel().filter(opened_on__gte=date_from, opened_on__lte=date_to)


def funnel(*, user, filters: Filters) -> dict:
    """Accounts opened in the window: opened → funded → first purchase → repeat purchase (a
    second purchase or an advisory service). Each step counts the clients who reached it and
    every step before; days between steps are medians over the clients of the step."""
    figures = _funnel_figures(_funnel_rows(user, filters))
    steps = []
    for i, step in enumerate(FUNNEL_STEPS):
        entry = {"step": step, "clients": figures[step], "conversion_from_previous": None,
                 "median_days_from_previous": None}
        if i:
            entry["conversion_from_previous"] = _share(figures[step],
                                                       figures[FUNNEL_STEPS[i - 1]])
            entry["median_days_from_previous"] = figures[f"median_{step}"]
        steps.append(entry)
    return {"as_of": _as_of().isoformat(), "steps": steps}


# --- channels and newsletters ------------------------------------------------------------------
def _client_filter(user, filters: Filters, prefix: str = "client__") -> Q:
    """The scoped clients of the filters, on a table with a client foreign key (base tables,
    current branch, RM and tier)."""
    q = client_scope_q(user, prefix=prefix)
    if filters.branch:
        q &= Q(**{f"{prefix}branch__code": filters.branch})
    if filters.rm:
        q &= Q(**{f"{prefix}rm__username": filters.rm})
    if filters.tier:
        q &= Q(**{f"{prefix}current_score__tier": filters.tier})
    if filters.segment:
        q &= Q(**{f"{prefix}segment_memberships__segment__code": filters.segment})
    return q


def _channel_contacts(user, filters: Filters, date_from: dt.date, date_to: dt.date
                      ) -> QuerySet[Contact]:
    """The scoped contacts planned in the window and attempted, each with `bought` (the client
    bought within CONVERSION_DAYS after it)."""
    bought = Transaction.objects.filter(
        client_id=OuterRef("client_id"), traded_at__gte=OuterRef("at"),
        traded_at__lte=OuterRef("at") + dt.timedelta(days=CONVERSION_DAYS))
    return (Contact.objects.filter(_client_filter(user, filters), planned_on__gte=date_from,
                                   planned_on__lte=date_to, status__in=ATTEMPTED)
            .annotate(bought=Exists(bought)))


def _channel_outcome_q(outcome: str) -> Q:
    """Which of _channel_contacts count in `outcome` (CHANNEL_OUTCOMES)."""
    return {"attempted": Q(status__in=ATTEMPTED),
            "delivered": Q(status__in=DELIVERED),
            "responded": Q(status=ContactStatus.RESPONDED),
            "converted": Q(bought=True) & ~Q(status=ContactStatus.FAILED)}[outcome]


def channels(*, user, filters: Filters) -> dict:
    """Contacts planned in the window, per channel: attempted (sent, delivered, responded or
    failed), delivered, responded, converted (not failed, and the client bought within 30 days
    after)."""
    as_of = _as_of()
    date_from, date_to = _window(filters, as_of)
    rows = (_channel_contacts(user, filters, date_from, date_to).values("channel")
            .annotate(**{outcome: Count("id", filter=_channel_outcome_q(outcome))
                         for outcome in CHANNEL_OUTCOMES})
            .order_by())
    by_channel = {r["channel"]: r for r in rows}
    out = []
    for channel in Channel.values:
        r = by_channel.get(channel, {})
        out.append({"channel": channel, **{o: r.get(o, 0) for o in CHANNEL_OUTCOMES}})
    return {"as_of": as_of.isoformat(), "channels": out}


def _day_bounds(date_from: dt.date, date_to: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = timezone.make_aware(dt.datetime.combine(date_from, dt.time.min))
    end = timezone.make_aware(dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min))
    return start, end


def _editions(date_from: dt.date, date_to: dt.date) -> QuerySet[Edition]:
    """The editions sent in the window."""
    start, end = _day_bounds(date_from, date_to)
    return Edition.objects.filter(sent_at__gte=start, sent_at__lt=end)


def _edition_deliveries(user, filters: Filters, edition_ids) -> QuerySet[Delivery]:
    """The scoped recipients of these editions: their deliveries, but those excluded."""
    return Delivery.objects.filter(
        Q(source=ContactSource.NEWSLETTER, source_id__in=edition_ids)
        & _client_filter(user, filters)).exclude(status=DeliveryStatus.EXCLUDED)


# What each newsletter outcome counts: on the deliveries (opened, clicked), on their feedback
# (rated, commented: a comment or an e-mail reply), on the unsubscribes they brought.
_OPENED = Q(opened_at__isnull=False)
_CLICKED = Q(clicked_at__isnull=False)
_RATED = Q(rating__isnull=False)
_COMMENTED = ~Q(comment="")


def _edition_feedback(deliveries: QuerySet[Delivery]) -> QuerySet[Feedback]:
    return Feedback.objects.filter(delivery__in=deliveries)


def _edition_unsubscribes(deliveries: QuerySet[Delivery]) -> QuerySet[Suppression]:
    return Suppression.objects.filter(source_delivery__in=deliveries,
                                      reason=Suppression.UNSUBSCRIBED)


def _edition_recipients(deliveries: QuerySet[Delivery], outcome: str) -> QuerySet[Delivery]:
    """The deliveries behind `outcome` (NEWSLETTER_OUTCOMES), by the rules above."""
    if outcome == "recipients":
        return deliveries
    if outcome == "opened":
        return deliveries.filter(_OPENED)
    if outcome == "clicked":
        return deliveries.filter(_CLICKED)
    if outcome == "rated":
        return deliveries.filter(pk__in=_edition_feedback(deliveries).filter(_RATED)
                                 .values("delivery_id"))
    if outcome == "commented":
        return deliveries.filter(pk__in=_edition_feedback(deliveries).filter(_COMMENTED)
                                 .values("delivery_id"))
    return deliveries.filter(pk__in=_edition_unsubscribes(deliveries)
                             .values("source_delivery_id"))


def newsletters(*, user, filters: Filters) -> dict:
    """Editions sent in the window: per edition, among the scoped recipients, how many opened,
    clicked, rated (and the average), commented or replied (comments), unsubscribed."""
    as_of = _as_of()
    date_from, date_to = _window(filters, as_of)
    editions = list(_editions(date_from, date_to).select_related("publication")
                    .order_by("-sent_at", "-pk"))
    if not editions:
        return {"as_of": as_of.isoformat(), "editions": []}
    deliveries = _edition_deliveries(user, filters, [e.pk for e in editions])
    heads = {r["source_id"]: r for r in deliveries.values("source_id").annotate(
        recipients=Count("id", distinct=True),
        opened=Count("id", filter=_OPENED, distinct=True),
        clicked=Count("id", filter=_CLICKED, distinct=True)).order_by()}
    feedback = {r["delivery__source_id"]: r for r in _edition_feedback(deliveries).values(
        "delivery__source_id").annotate(
        rated=Count("delivery", filter=_RATED, distinct=True),
        rating_sum=Sum("rating"), ratings=Count("rating"),
        comments=Count("id", filter=_COMMENTED)).order_by()}
    unsubscribes = dict(_edition_unsubscribes(deliveries)
                        .values("source_delivery__source_id").annotate(n=Count("id"))
                        .values_list("source_delivery__source_id", "n").order_by())
    out = []
    for e in editions:
        head, fb = heads.get(e.pk, {}), feedback.get(e.pk, {})
        ratings = fb.get("ratings") or 0
        out.append({"edition_id": e.pk, "publication": e.publication.name, "title": e.subject,
                    "sent_at": e.sent_at.isoformat(), "recipients": head.get("recipients", 0),
                    "opened": head.get("opened", 0), "clicked": head.get("clicked", 0),
                    "rated": fb.get("rated", 0),
                    "rating_avg": round(fb["rating_sum"] / ratings, 2) if ratings else None,
                    "comments": fb.get("comments", 0),
                    "unsubscribes": unsubscribes.get(e.pk, 0)})
    return {"as_of": as_of.isoformat(), "editions": out}


# --- campaigns ---------------------------------------------------------------------------------
def _campaigns(date_from: dt.date, date_to: dt.date) -> QuerySet[Campaign]:
    """The campaigns launched in the window."""
    start, end = _day_bounds(date_from, date_to)
    return Campaign.objects.filter(launched_at__gte=start, launched_at__lt=end)


def _campaign_clients(user, filters: Filters, campaign: Campaign, outcome: str) -> QuerySet:
    """The ids of the scoped clients (filters applied) counted in `outcome`
    (CAMPAIGN_OUTCOMES) of the campaign's results: campaigns.selectors'
    campaign_outcome_client_ids, the rule of campaign_results."""
    return Client.objects.filter(
        _client_filter(user, filters, prefix=""),
        pk__in=campaign_outcome_client_ids(campaign=campaign, outcome=outcome)).values("pk")


def campaigns_overview(*, user, filters: Filters) -> dict:
    """Campaigns launched in the window: members, contacted, the cost of contacts (the
    per-channel cost in settings.ANALYTICS_CONTACT_COST), converted, revenue, net inflow, and
    the first variant's uplift against the holdout. Campaign results are the firm's (they
    compare arms, not books), so they are shown to the roles that see every client; others get
    their own clients' members, contacted and converted only (campaign_results' rules over
    the members in their scope; no revenue, no uplift)."""
    as_of = _as_of()
    date_from, date_to = _window(filters, as_of)
    campaigns = list(_campaigns(date_from, date_to).order_by("-launched_at", "code"))
    costs = settings.ANALYTICS_CONTACT_COST
    whole_firm = role_of(user) in ALL_CLIENTS_ROLES and not any(
        (filters.branch, filters.rm, filters.segment, filters.tier))
    out = []
    for campaign in campaigns:
        contacts = Contact.objects.filter(source=ContactSource.CAMPAIGN, source_id=campaign.pk,
                                          status__in=ATTEMPTED)
        if not whole_firm:
            contacts = contacts.filter(_client_filter(user, filters))
        per_channel = dict(contacts.values("channel").annotate(n=Count("id"))
                           .values_list("channel", "n").order_by())
        cost = sum(n * float(costs.get(channel, 0)) for channel, n in per_channel.items())
        row = {"code": campaign.code, "name": campaign.name, "status": campaign.status,
               "launched_at": campaign.launched_at.isoformat(), "contact_cost": _money(cost),
               "members": 0, "contacted": 0, "converted": 0, "revenue": 0.0,
               "net_inflow": 0.0, "uplift": None, "ci_low": None, "ci_high": None,
               "p_value": None}
        if whole_firm:
            results = campaign_results(campaign=campaign)
            for arm in results["arms"]:
                row["members"] += arm["members"]
                row["contacted"] += arm["contacted"]
                row["converted"] += arm["converted"]
                row["revenue"] = _money(row["revenue"] + arm["revenue"])
                row["net_inflow"] = _money(row["net_inflow"] + arm["net_inflow"])
            if results["uplift"]:
                first = results["uplift"][0]
                # campaigns.selectors.campaign_results names the uplift "absolute"
                row.update({"uplift": first.get("absolute"),
                            **{k: first.get(k) for k in ("ci_low", "ci_high", "p_value")}})
        else:
            row.update({outcome: _campaign_clients(user, filters, campaign, outcome).count()
                        for outcome in CAMPAIGN_OUTCOMES})
        out.append(row)
    return {"as_of": as_of.isoformat(), "campaigns": out}


# --- drill-down --------------------------------------------------------------------------------
def _period_bounds(label: str, name: str) -> tuple[dt.date, dt.date]:
    try:
        if "-W" in label:
            year, week = label.split("-W")
            start = dt.date.fromisocalendar(int(year), int(week), 1)
            return start, start + dt.timedelta(days=6)
        if len(label) == 7:
            start = dt.date.fromisoformat(label + "-01")
            return start, _month_start(start, 1) - dt.timedelta(days=1)
        day = dt.date.fromisoformat(label)
        return day, day
    except ValueError:
        raise ApplicationError(_("Not a period."),
                               fields={name: [_("Not a period.")]}) from None


def drill_clients(*, user, filters: Filters, metric: str, cell: Mapping[str, str]
                  ) -> QuerySet[Client]:
    """The scoped clients behind one chart cell (see METRICS for the keys of each metric)."""
    if metric not in METRICS:
        raise ApplicationError(_("Unknown metric."), fields={"metric": [_("Unknown metric.")]})
    missing = {key: [_("Required.")] for key in METRICS[metric] if not cell.get(key)}
    if missing:
        raise ApplicationError(_("Say which cell."), fields=missing)
    as_of = _as_of()
    date_from, date_to = _window(filters, as_of)
    dims = _dims(user, filters)
    funnel_rows = dims.funnel()
    if metric == "active":
        _start, end = _period_bounds(cell["period"], "period")
        end = min(end, date_to, as_of)
        ids = ClientDay.objects.filter(client_id__in=funnel_rows.values("client_id"),
                                       purchases__gt=0, day__lte=end,
                                       day__gt=end - dt.timedelta(days=ACTIVE_DAYS)
                                       ).values("client_id")
    elif metric == "new_accounts":
        start, end = _period_bounds(cell["period"], "period")
        ids = funnel_rows.filter(opened_on__gte=max(start, date_from),
                                 opened_on__lte=min(end, date_to)).values("client_id")
    elif metric == "retention":
        cohort, _end = _period_bounds(cell["cohort"], "cohort")
        try:
            k = int(cell["month"])
        except (TypeError, ValueError):
            k = -1
        if not 0 <= k <= MAX_RETENTION_MONTHS:
            raise ApplicationError(_("Choose a month from 0 to 24."),
                                   fields={"month": [_("Choose a month from 0 to 24.")]})
        cohort = _month_start(cohort)
        ids = ClientMonthActivity.objects.filter(
            month=_month_start(cohort, k), client_id__in=funnel_rows.filter(
                opened_on__gte=cohort, opened_on__lt=_month_start(cohort, 1)
            ).values("client_id")).values("client_id")
    elif metric == "funnel":
        step = cell["step"]
        if step not in FUNNEL_STEPS:
            raise ApplicationError(_("Unknown step."), fields={"step": [_("Unknown step.")]})
        ids = _funnel_rows(user, filters).filter(_step_q(step)).values("client_id")
    elif metric == "tier_migration":
        before, after = cell["from"], cell["to"]
        for key, tier in (("from", before), ("to", after)):
            if tier not in Tier.values:
                raise ApplicationError(_("No such value tier."),
                                       fields={key: [_("No such value tier.")]})
        start, end = _score_date(date_from), _score_date(date_to)
        if not (start and end):
            return Client.objects.none()
        earlier = ClientScore.objects.filter(as_of=start[0], scheme_id=start[1], tier=before)
        ids = ClientScore.objects.filter(
            as_of=end[0], scheme_id=end[1], tier=after,
            client_id__in=earlier.values("client_id")).filter(
            client_id__in=funnel_rows.values("client_id")).values("client_id")
    elif metric == "segment":
        segment = Segment.objects.filter(code=cell["code"]).first()
        if segment is None:
            raise ApplicationError(_("No such segment."),
                                   fields={"code": [_("No such segment.")]})
        ids = SegmentMember.objects.filter(
            segment_id=segment.pk, client_id__in=funnel_rows.values("client_id")
        ).values("client_id")
    else:
        ids = _outreach_cell(user, filters, metric, cell, date_from, date_to)
    return client_queryset_for(user).filter(pk__in=ids).order_by("client_no")


def _outcome(cell: Mapping[str, str], outcomes: tuple[str, ...]) -> str:
    outcome = cell["outcome"]
    if outcome not in outcomes:
        message = _("One of: %(values)s.") % {"values": ", ".join(outcomes)}
        raise ApplicationError(_("Unknown outcome."), fields={"outcome": [message]})
    return outcome


def _outreach_cell(user, filters: Filters, metric: str, cell: Mapping[str, str],
                   date_from: dt.date, date_to: dt.date) -> QuerySet:
    """The client ids behind a cell of the channel, newsletter or campaign figures, by the
    definitions channels(), newsletters() and campaigns_overview() count with (the scope and
    the filters on the clients' current branch, RM and tier, like those)."""
    if metric == "channel":
        if cell["channel"] not in Channel.values:
            raise ApplicationError(_("No such channel."),
                                   fields={"channel": [_("No such channel.")]})
        outcome = _outcome(cell, CHANNEL_OUTCOMES)
        return (_channel_contacts(user, filters, date_from, date_to)
                .filter(_channel_outcome_q(outcome), channel=cell["channel"])
                .values("client_id"))
    if metric == "newsletter":
        edition = cell["edition"]
        # an id: ASCII digits within a database integer (a longer one would not compare)
        edition_id = int(edition) if edition.isascii() and edition.isdigit() \
            and len(edition) <= 9 else None
        if edition_id is None or not _editions(date_from, date_to).filter(
                pk=edition_id).exists():
            raise ApplicationError(_("No edition of this number was sent in the date range."),
                                   fields={"edition": [_("No such edition in the date range.")]})
        outcome = _outcome(cell, NEWSLETTER_OUTCOMES)
        deliveries = _edition_deliveries(user, filters, [edition_id])
        return _edition_recipients(deliveries, outcome).values("client_id")
    campaign = _campaigns(date_from, date_to).filter(code=cell["code"]).first()
    if campaign is None:
        raise ApplicationError(_("No campaign of this code was launched in the date range."),
                               fields={"code": [_("No such campaign in the date range.")]})
    return _campaign_clients(user, filters, campaign, _outcome(cell, CAMPAIGN_OUTCOMES))
