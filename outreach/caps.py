"""The contact policy's caps as set-based conditions over the contact ledger.

A cap allows at most N counted contacts (outreach.models.COUNTED_STATUSES) per client on a
channel -- or on all channels together -- in a rolling window of W days. A new contact planned
for day D must fit every window of W days that contains D, so the check counts the ledger
between D-(W-1) and D+(W-1): conservative for contacts planned on both sides of D, never
over the cap. Checks and reservations happen under `caps_lock` (one writer at a time), so two
campaigns launching at once cannot both take a client's last free contact.

Priority (shared/DOMAIN.md "Contact policy": the higher priority wins): a campaign that finds
no room for a client may take back what lower-priority campaigns only reserved
(`takeable_q`), the fewest contacts that make room (`take_back_sql`). `cap_state_sql` gives
the launch both answers per client at once: no room now, and no room even after taking back.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast, Coalesce
from django.db.models.lookups import GreaterThanOrEqual

from .models import (
    ALL_CHANNELS,
    COUNTED_STATUSES,
    Channel,
    Contact,
    ContactSource,
    ContactStatus,
    RMTask,
    TaskStatus,
)
from .services import ORIGIN_CONTACT

# pg_advisory_xact_lock key: "outreach caps" (any constant shared by every writer).
_LOCK_KEY = 7_310_442_001
# Channels whose contacts become tasks on the RM's call list.
CALL_CHANNELS = (Channel.PHONE, Channel.WECHAT)


def caps_lock() -> None:
    """Hold the reservation lock until the current transaction ends (PostgreSQL; SQLite has
    one writer at a time anyway)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])


def _window(day: dt.date, days: int) -> tuple[dt.date, dt.date]:
    return day - dt.timedelta(days=days - 1), day + dt.timedelta(days=days - 1)


def caps_for(policy: dict, channel: str) -> list[dict]:
    return [c for c in policy["caps"] if c["channel"] in (ALL_CHANNELS, channel)]


def _widest(policy: dict, channel: str, day: dt.date) -> tuple[dt.date, dt.date]:
    return _window(day, max((c["window_days"] for c in caps_for(policy, channel)), default=1))


def _in_cap_q(cap: dict, *, channel: str, day: dt.date) -> Q:
    """A ledger row that counts for `cap` against a contact on `channel` planned for `day`
    (the status aside)."""
    inside = Q(planned_on__range=_window(day, cap["window_days"]))
    return inside if cap["channel"] == ALL_CHANNELS else inside & Q(channel=channel)


def _counted(*, client_ref: str, channel: str, cap: dict, day: dt.date, exclude: dict):
    qs = Contact.objects.filter(_in_cap_q(cap, channel=channel, day=day),
                                client_id=OuterRef(client_ref), status__in=COUNTED_STATUSES)
    if exclude:
        qs = qs.exclude(**exclude)
    return qs


def over_cap_q(*, policy: dict, channel: str, day: dt.date, client_ref: str = "pk",
               exclude: dict | None = None) -> Q:
    """True for a client whose contacts around `day` leave no room for one more on `channel`
    under some cap. `exclude` leaves out the caller's own rows (a step re-run)."""
    condition = Q(pk__in=[])
    for cap in caps_for(policy, channel):
        if cap["max_contacts"] == 0:
            return Q()
        counted = _counted(client_ref=client_ref, channel=channel, cap=cap, day=day,
                           exclude=exclude or {})
        if cap["max_contacts"] == 1:
            condition |= Q(Exists(counted))
        else:
            n = Coalesce(Subquery(counted.values("client_id").annotate(n=Count("*"))
                                  .values("n")[:1], output_field=IntegerField()), Value(0))
            condition |= Q(GreaterThanOrEqual(n, cap["max_contacts"]))
    return condition


def takeable_q(*, priority: int,
               closed_calls: tuple[str, ...] = (TaskStatus.DONE, TaskStatus.CANCELLED)) -> Q:
    """The ledger rows a campaign of `priority` may take back: another campaign's contact of a
    lower priority (a larger number) that has not gone out -- reserved or queued, never claimed
    by a sender, never tried -- and is not a service message (exempt: newsletters, regulatory
    notices). A call whose task on the RM's list is no longer open (`closed_calls`: done or
    dropped by the RM) stays where it is; an open one goes with the contact. An email once
    queued is in the email outbox, which its dispatcher claims row by row: it stays too."""
    call_closed = Exists(RMTask.objects.filter(
        origin_type=ORIGIN_CONTACT, origin_id=Cast(OuterRef("pk"), CharField()),
        status__in=closed_calls))
    return (Q(source=ContactSource.CAMPAIGN, priority__gt=priority, exempt=False,
              status__in=(ContactStatus.PLANNED, ContactStatus.QUEUED),
              claimed_at__isnull=True, attempts=0)
            & ~(Q(channel__in=CALL_CHANNELS) & Q(call_closed))
            & ~Q(channel=Channel.EMAIL, status=ContactStatus.QUEUED))


def caps_block_all(policy: dict, channel: str) -> bool:
    """A cap of 0 contacts applies: nobody can be contacted on `channel`, taking back or not."""
    return any(c["max_contacts"] == 0 for c in caps_for(policy, channel))


def cap_state_sql(*, policy: dict, channel: str, day: dt.date, priority: int,
                  clients: QuerySet | RawSQL, exclude: dict) -> tuple[str, list]:
    """SQL with one row per client of `clients` (a query of client ids) that has counted
    contacts around `day` (`exclude`: the caller's own): `client_id`; `over_now`, no room for one
    more contact on `channel` under some cap (as over_cap_q); `over_after`, no room even once
    what a campaign of `priority` may take back is taken (takeable_q); `higher`, a campaign of
    a higher priority holds one in the widest window of the caps (when the caps are full, that
    campaign took them: "higher_priority" rather than "capped"). The ledger is read once
    and grouped: a launch joins it to its audience instead of probing per client. A client
    without a row has room (unless caps_block_all)."""
    caps = caps_for(policy, channel)
    aggregates = {"higher": Count("pk", filter=Q(source=ContactSource.CAMPAIGN,
                                                 priority__lt=priority))}
    for i, cap in enumerate(caps):
        inside = _in_cap_q(cap, channel=channel, day=day)
        aggregates[f"n{i}"] = Count("pk", filter=inside)
        aggregates[f"t{i}"] = Count("pk", filter=inside & takeable_q(priority=priority))
    qs = (Contact.objects.filter(client_id__in=clients, status__in=COUNTED_STATUSES,
                                 planned_on__range=_widest(policy, channel, day))
          .exclude(**exclude).values("client_id").annotate(**aggregates).order_by())
    sql, params = qs.query.sql_with_params()
    over = " OR ".join(f"s.n{i} >= %s" for i in range(len(caps))) or "1 = 0"
    after = " OR ".join(f"s.n{i} - s.t{i} >= %s" for i in range(len(caps))) or "1 = 0"
    limits = [cap["max_contacts"] for cap in caps]
    return (f"SELECT s.client_id, ({over}) AS over_now, ({after}) AS over_after, "
            f"(s.higher > 0) AS higher FROM ({sql}) s", [*limits, *limits, *params])


def take_back_sql(*, policy: dict, channel: str, day: dt.date, priority: int,
                  clients: QuerySet | RawSQL, exclude: dict) -> tuple[str, list] | None:
    """The fewest ledger rows to take back so that each client of `clients` (a query of
    client ids) has room for one more contact on `channel` planned for `day`: columns `id`,
    `client_id`, `source_id`. Per client and cap, how many the cap is over by; then the
    takeable contacts (takeable_q) in order of preference -- counted by more of the caps, the
    lowest priority, planned latest, the newest -- each taken while a cap it counts for still
    needs one. Nothing for a client with room already, nor for one that taking back would not
    free; None when no cap applies or one allows no contact."""
    caps = caps_for(policy, channel)
    if not caps or caps_block_all(policy, channel):
        return None
    inside = [_in_cap_q(cap, channel=channel, day=day) for cap in caps]
    ledger = Contact.objects.filter(client_id__in=clients, status__in=COUNTED_STATUSES,
                                    planned_on__range=_widest(policy, channel, day))
    counted = (ledger.exclude(**exclude).values("client_id")
               .annotate(**{f"n{i}": Count("pk", filter=q) for i, q in enumerate(inside)})
               .order_by())
    any_cap = Q(pk__in=[])
    for q in inside:
        any_cap |= q
    candidates = (ledger.filter(any_cap).filter(takeable_q(priority=priority))
                  .annotate(**{f"in{i}": Case(When(q, then=Value(1)), default=Value(0),
                                              output_field=IntegerField())
                               for i, q in enumerate(inside)})
                  .values("id", "client_id", "source_id", "priority", "planned_on",
                          *[f"in{i}" for i in range(len(caps))]).order_by())
    counted_sql, counted_params = counted.query.sql_with_params()
    candidates_sql, candidates_params = candidates.query.sql_with_params()
    n = range(len(caps))
    preference = (" + ".join(f"c.in{i}" for i in n) + " DESC, c.priority DESC, "
                  "c.planned_on DESC, c.id DESC")
    columns = ", ".join(
        f"c.in{i}, g.n{i} - %s + 1 AS need{i}, "
        f"SUM(c.in{i}) OVER (PARTITION BY c.client_id ORDER BY {preference} "
        f"ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before{i}, "
        f"SUM(c.in{i}) OVER (PARTITION BY c.client_id) AS total{i}" for i in n)
    frees = " AND ".join(f"x.need{i} <= x.total{i}" for i in n)
    needed = " OR ".join(f"(x.in{i} = 1 AND COALESCE(x.before{i}, 0) < x.need{i})" for i in n)
    limits = [cap["max_contacts"] for cap in caps]
    return (f"SELECT x.id, x.client_id, x.source_id FROM ("
            f"SELECT c.id, c.client_id, c.source_id, {columns} "
            f"FROM ({candidates_sql}) c INNER JOIN ({counted_sql}) g "
            f"ON g.client_id = c.client_id) x WHERE ({frees}) AND ({needed})",
            [*limits, *candidates_params, *counted_params])
