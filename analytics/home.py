"""The home pages' reads: an RM's day ("whom do I call today, and why") and a branch manager's
team. One function per panel; each takes the user and reads only what the user may see
(core.access.client_scope_q through clients.selectors.client_queryset_for, outreach's
task_queryset_for), in one or a few queries whose size follows the user's book, never the
whole firm: an RM's ~1-5k clients, a branch's ~50k.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Case, Count, F, FilteredRelation, IntegerField, Q, Sum, Value, When
from django.db.models.expressions import Window
from django.db.models.functions import RowNumber
from django.utils import timezone
from django.utils.translation import get_language

from clients.scoring.models import ClientScore, ScoringCurrent, Tier
from clients.selectors import client_queryset_for
from core.access import client_scope_q
from outreach.models import Contact, RMTask, TaskOutcome, TaskSource, TaskStatus
from outreach.selectors import call_context, reassign_choices, task_queryset_for
from outreach.services import ORIGIN_CONTACT
from segments.models import SegmentKind, SegmentMembership
from segments.selectors import segment_list

TASKS_SHOWN = 30
NEW_IN_SCENARIO_DAYS = 7
CLIENTS_PER_SCENARIO = 10
TIER_MOVES_SHOWN = 8
TIER_COMPARED_DAYS = 7
# DOMAIN.md "Active client": a purchase in the 30 days ending on the day.
ACTIVE_DAYS = 30
# The branch manager's completion and conversion look back this far.
TEAM_WINDOW_DAYS = 30
ATTENTION_SHOWN = 20
# Campaign call tasks are titled "<campaign name> · <subject>" (campaigns.launch).
CAMPAIGN_TITLE_SEPARATOR = " · "
# Higher is more valuable; DOMAIN.md lists the tiers from the most valuable down.
TIER_RANK = {tier: len(Tier.values) - i for i, tier in enumerate(Tier.values)}


def _today(today: dt.date | None) -> dt.date:
    return today or timezone.localdate()


def _lang() -> str:
    return "zh-hans" if (get_language() or "").startswith("zh") else "en"


def _share(part: int, whole: int) -> int | None:
    """A whole percentage, or None when there is nothing to divide by."""
    return round(100 * part / whole) if whole else None


# --- the RM: calls and tasks due ---------------------------------------------------------------
@dataclass
class DueTasks:
    overdue: int = 0
    due_today: int = 0
    undated: int = 0
    rows: list[RMTask] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.overdue + self.due_today + self.undated

    @property
    def more(self) -> int:
        return max(self.total - len(self.rows), 0)


def rm_tasks_due(*, user, today: dt.date | None = None, limit: int = TASKS_SHOWN) -> DueTasks:
    """The user's open tasks due today or earlier, and those without a date (a newsletter
    reply is due when it arrives): the counts, and the first `limit` (most overdue first),
    each with its client's context (outreach.selectors.call_context), the campaign it came
    from and the script variant of the call. Queries: one count, one list, the call context
    (a few, for the listed clients only), one for the variants."""
    today = _today(today)
    due = (task_queryset_for(user).filter(assignee=user, status=TaskStatus.OPEN)
           .filter(Q(due_on__lte=today) | Q(due_on__isnull=True)))
    counts = due.aggregate(overdue=Count("pk", filter=Q(due_on__lt=today)),
                           due_today=Count("pk", filter=Q(due_on=today)),
                           undated=Count("pk", filter=Q(due_on__isnull=True)))
    result = DueTasks(**counts)
    if not result.total:
        return result
    rows = list(due.select_related("client")
                .order_by(F("due_on").asc(nulls_last=True), "created_at", "pk")[:limit])
    context = call_context(tasks=rows)
    contact_ids = [int(t.origin_id) for t in rows
                   if t.origin_type == ORIGIN_CONTACT and t.origin_id.isdigit()]
    variants = dict(Contact.objects.filter(pk__in=contact_ids).exclude(variant="")
                    .values_list("pk", "variant")) if contact_ids else {}
    for task in rows:
        task.call_context = context.get(task.client_id)
        task.days_overdue = (today - task.due_on).days if task.due_on and task.due_on < today \
            else 0
        task.campaign_name, task.subject = "", task.title
        if task.source == TaskSource.CAMPAIGN and CAMPAIGN_TITLE_SEPARATOR in task.title:
            task.campaign_name, task.subject = task.title.split(CAMPAIGN_TITLE_SEPARATOR, 1)
        task.variant = variants.get(int(task.origin_id), "") \
            if task.origin_type == ORIGIN_CONTACT and task.origin_id.isdigit() else ""
    result.rows = rows
    return result


def open_task_count(*, user) -> int:
    """All the user's open tasks, dated or not (the count beside "My tasks" in the menu)."""
    return task_queryset_for(user).filter(assignee=user, status=TaskStatus.OPEN).count()


# --- the RM: clients newly in a scenario -------------------------------------------------------
def scenario_newcomers(*, user, now: dt.datetime | None = None,
                       days: int = NEW_IN_SCENARIO_DAYS,
                       per_scenario: int = CLIENTS_PER_SCENARIO) -> list[dict]:
    """Per active scenario segment: the user's clients who joined it in the last `days` days
    and are still in it, newest first (up to `per_scenario`, with how many in all), and the
    scenario's suggested script in the page's language (none when the playbook has none).

    "Joined" is the membership's `since`: a refresh inserts a newcomer's row with the refresh
    time and deletes a leaver's, so a current row younger than `days` is a client who joined
    within them and is still a member. (MembershipChange keeps only a sample of each refresh's
    joins -- at most 500 -- so it cannot answer this for every RM.) Three queries: the
    scenarios, the newcomers ranked per scenario, the clients shown."""
    scenarios = list(segment_list(kind=SegmentKind.SCENARIO, active_only=True))
    if not scenarios:
        return []
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    ids = [s.pk for s in scenarios]
    ranked = (_newcomers_pg if connection.vendor == "postgresql" else _newcomers_orm)(
        user=user, segment_ids=ids, cutoff=cutoff, per_scenario=per_scenario)
    clients = client_queryset_for(user).only("id", "client_no", "name", "phone").in_bulk(
        {row["client_id"] for row in ranked})
    by_segment: dict[int, list[dict]] = {}
    for row in ranked:
        if row["client_id"] in clients:
            by_segment.setdefault(row["segment_id"], []).append(
                {**row, "client": clients[row["client_id"]]})
    lang = _lang()
    out = []
    for segment in scenarios:
        members = by_segment.get(segment.pk)
        if not members:
            continue
        script = ((segment.playbook or {}).get(lang) or {}).get("script", "")
        joined = members[0]["joined"]
        out.append({"segment": segment, "name": segment.name, "script": script,
                    "joined": joined, "members": members, "more": joined - len(members)})
    return out


def _newcomers_pg(*, user, segment_ids: list[int], cutoff: dt.datetime,
                  per_scenario: int) -> list[dict]:
    """PostgreSQL: from the user's clients (the access rule's own SQL), each client's recent
    scenario memberships by the (client) index -- a LATERAL subquery the planner may not
    flatten (OFFSET 0), so the work follows the size of the book and never the size of the
    scenarios (at 1M clients they hold hundreds of thousands). Ranked per scenario in the same
    statement."""
    try:
        scope_sql, scope_params = client_queryset_for(user).order_by().values("id").query \
            .sql_with_params()
    except EmptyResultSet:  # a user who may see no client
        return []
    members = connection.ops.quote_name(SegmentMembership._meta.db_table)
    sql = (
        "SELECT segment_id, client_id, since, joined FROM ("
        " SELECT m.segment_id, c.id AS client_id, m.since,"
        "  ROW_NUMBER() OVER (PARTITION BY m.segment_id ORDER BY m.since DESC, c.id) AS rank,"
        "  COUNT(*) OVER (PARTITION BY m.segment_id) AS joined"
        f" FROM ({scope_sql}) AS c CROSS JOIN LATERAL ("
        f"  SELECT sm.segment_id, sm.since FROM {members} sm WHERE sm.client_id = c.id"
        "   AND sm.segment_id = ANY(%s) AND sm.since >= %s OFFSET 0) AS m"
        ") AS ranked WHERE rank <= %s ORDER BY segment_id, rank")
    with connection.cursor() as cursor:
        cursor.execute(sql, [*scope_params, segment_ids, cutoff, per_scenario])
        return [{"segment_id": s, "client_id": c, "since": since, "joined": n}
                for s, c, since, n in cursor.fetchall()]


def _newcomers_orm(*, user, segment_ids: list[int], cutoff: dt.datetime,
                   per_scenario: int) -> list[dict]:
    """Any other database (the embedded SQLite): the same ranking through the ORM."""
    return list(SegmentMembership.objects
                .filter(client_scope_q(user, prefix="client__"), segment_id__in=segment_ids,
                        since__gte=cutoff)
                .annotate(rank=Window(RowNumber(), partition_by=[F("segment_id")],
                                      order_by=[F("since").desc(), F("client_id").asc()]),
                          joined=Window(Count("pk"), partition_by=[F("segment_id")]))
                .filter(rank__lte=per_scenario)
                .order_by("segment_id", "rank")
                .values("segment_id", "client_id", "since", "joined"))


# --- the book ----------------------------------------------------------------------------------
def book_figures(*, user, today: dt.date | None = None) -> dict:
    """The clients the user may see (an RM's book, a branch manager's branch): how many, their
    AUM, and how many are active (DOMAIN.md: a purchase in the 30 days ending today, read from
    `last_purchase_on`, which every purchase import keeps). One aggregate query."""
    start = _today(today) - dt.timedelta(days=ACTIVE_DAYS - 1)
    figures = client_queryset_for(user).aggregate(
        clients=Count("pk"), aum=Sum("aum"),
        active=Count("pk", filter=Q(last_purchase_on__gte=start)))
    figures["aum"] = figures["aum"] or Decimal("0")
    figures["active_share"] = _share(figures["active"], figures["clients"])
    return figures


def _tier_rank(path: str) -> Case:
    return Case(*[When(**{path: tier}, then=Value(rank)) for tier, rank in TIER_RANK.items()],
                default=Value(0), output_field=IntegerField())


def tier_moves(*, user, days: int = TIER_COMPARED_DAYS,
               shown: int = TIER_MOVES_SHOWN) -> dict | None:
    """Value-tier changes in the user's clients: each client's current tier (the ScoringCurrent
    pointer's scores) against their score of the latest scoring date at least `days` days
    before it. Counts of moves up and down, and the `shown` largest clients (by AUM) that moved.
    None when there is no current scoring or none old enough to compare with.

    The pointer and the earlier date are resolved first (two tiny indexed reads), so the
    comparison is two joins on the unique (client, scheme, as_of) index of scores, per client
    of the book."""
    current = ScoringCurrent.objects.filter(pk=1).values("as_of", "scheme_id").first()
    if current is None:
        return None
    earlier = (ClientScore.objects.filter(as_of__lte=current["as_of"] - dt.timedelta(days=days))
               .order_by("-as_of", "-scheme_id").values("as_of", "scheme_id").first())
    if earlier is None:
        return None
    moved = (client_queryset_for(user)
             .annotate(now=FilteredRelation("scores", condition=Q(
                 scores__as_of=current["as_of"], scores__scheme_id=current["scheme_id"])),
                       then=FilteredRelation("scores", condition=Q(
                           scores__as_of=earlier["as_of"], scores__scheme_id=earlier["scheme_id"])))
             .filter(now__isnull=False, then__isnull=False)
             .annotate(now_rank=_tier_rank("now__tier"), then_rank=_tier_rank("then__tier"))
             .exclude(now_rank=F("then_rank")))
    counts = moved.aggregate(up=Count("pk", filter=Q(now_rank__gt=F("then_rank"))),
                             down=Count("pk", filter=Q(now_rank__lt=F("then_rank"))))
    labels = dict(Tier.choices)
    rows = []
    if counts["up"] or counts["down"]:
        for row in (moved.annotate(now_tier=F("now__tier"), then_tier=F("then__tier"))
                    .order_by("-aum", "pk")
                    .values("client_no", "name", "aum", "now_tier", "then_tier", "now_rank",
                            "then_rank")[:shown]):
            rows.append({**row, "up": row["now_rank"] > row["then_rank"],
                         "now_label": labels.get(row["now_tier"], row["now_tier"]),
                         "then_label": labels.get(row["then_tier"], row["then_tier"])})
    return {"as_of": current["as_of"], "compared_with": earlier["as_of"], **counts,
            "rows": rows}


# --- the branch manager: the team --------------------------------------------------------------
def team_figures(*, user, today: dt.date | None = None) -> dict:
    """Per RM of the manager's team (outreach.selectors.reassign_choices: their branch's
    active RMs), over the tasks the manager may see (outreach.selectors.task_queryset_for):
    - workload: open tasks; overdue: open tasks due before today;
    - completion: of the tasks due in the last 30 days (not cancelled), the share done;
    - conversion: of the outcomes recorded in the last 30 days, the share "bought".
    Two queries: the team, then one GROUP BY assignee over their tasks."""
    today = _today(today)
    team = reassign_choices(user=user)
    if not team:
        return {"rows": [], "totals": {}, "chart": None, "team": []}
    due_from = today - dt.timedelta(days=TEAM_WINDOW_DAYS - 1)
    outcomes_from = timezone.now() - dt.timedelta(days=TEAM_WINDOW_DAYS)
    is_open = Q(status=TaskStatus.OPEN)
    due_window = Q(due_on__gte=due_from, due_on__lte=today) & ~Q(status=TaskStatus.CANCELLED)
    with_outcome = Q(outcome_at__gte=outcomes_from) & ~Q(outcome="")
    stats = {row["assignee_id"]: row for row in (
        task_queryset_for(user).filter(assignee__in=[rm.pk for rm in team])
        .filter(is_open | due_window | with_outcome)
        .values("assignee_id")
        .annotate(open=Count("pk", filter=is_open),
                  overdue=Count("pk", filter=is_open & Q(due_on__lt=today)),
                  due=Count("pk", filter=due_window),
                  done=Count("pk", filter=due_window & Q(status=TaskStatus.DONE)),
                  outcomes=Count("pk", filter=with_outcome),
                  bought=Count("pk", filter=with_outcome & Q(outcome=TaskOutcome.BOUGHT)))
        .order_by())}
    keys = ("open", "overdue", "due", "done", "outcomes", "bought")
    rows = []
    for rm in team:
        row = {k: stats.get(rm.pk, {}).get(k, 0) for k in keys}
        rows.append({"rm": rm, **row, "completion": _share(row["done"], row["due"]),
                     "conversion": _share(row["bought"], row["outcomes"])})
    totals = {k: sum(r[k] for r in rows) for k in keys}
    totals["completion"] = _share(totals["done"], totals["due"])
    totals["conversion"] = _share(totals["bought"], totals["outcomes"])
    chart = {"rms": [str(r["rm"]) for r in rows], "open": [r["open"] for r in rows],
             "overdue": [r["overdue"] for r in rows]}
    return {"rows": rows, "totals": totals, "chart": chart, "team": team}


def team_attention(*, user, team=None, today: dt.date | None = None,
                   limit: int = ATTENTION_SHOWN) -> dict:
    """The open tasks the manager may see that need a hand: the team's overdue ones, and those
    with nobody assigned (a campaign call for a client without an RM). Counts, and the first
    `limit`, most overdue first, to hand over (outreach's task_reassign). Two queries (three
    without `team`, the RMs of team_figures). Both conditions name the assignee, so the
    (assignee, status) index finds the rows before the branch check joins their clients."""
    today = _today(today)
    team = reassign_choices(user=user) if team is None else team
    waiting = (task_queryset_for(user).filter(status=TaskStatus.OPEN)
               .filter(Q(assignee__in=[rm.pk for rm in team], due_on__lt=today)
                       | Q(assignee__isnull=True)))
    counts = waiting.aggregate(overdue=Count("pk", filter=Q(due_on__lt=today)),
                               unassigned=Count("pk", filter=Q(assignee__isnull=True)),
                               total=Count("pk"))
    rows = list(waiting.select_related("client", "assignee")
                .order_by(F("due_on").asc(nulls_last=True), "created_at", "pk")[:limit]) \
        if counts["total"] else []
    for task in rows:
        task.days_overdue = (today - task.due_on).days if task.due_on and task.due_on < today \
            else 0
    return {**counts, "rows": rows, "more": max(counts["total"] - len(rows), 0)}
