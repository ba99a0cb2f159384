"""Reads of core data: the audit log, filtered and paged by keyset (millions of rows)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connections
from django.db.models import Q, QuerySet

from .models import AuditLog, User

# A "who" prefix matching more users than this is narrowed to the first ones by username.
WHO_MAX_USERS = 50
NEWEST_FIRST = ("-at", "-id")
OLDEST_FIRST = ("at", "id")


@dataclass(frozen=True)
class AuditFilters:
    action: str = ""
    who: str = ""
    object_id: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None

    def as_detail(self) -> dict:
        """The filters that are set, as an audit row's detail (dates as ISO text)."""
        values = {"action": self.action, "who": self.who, "object": self.object_id,
                  "from": self.date_from.isoformat() if self.date_from else "",
                  "to": self.date_to.isoformat() if self.date_to else ""}
        return {key: value for key, value in values.items() if value}


def _day_start(day: dt.date) -> dt.datetime:
    """Midnight of `day` in the product's time zone (Asia/Shanghai)."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=ZoneInfo(settings.TIME_ZONE))


def audit_who_users(who: str) -> list[int]:
    """Ids of the users whose username starts with `who` (at most WHO_MAX_USERS)."""
    return list(User.objects.filter(username__startswith=who).order_by("username")
                .values_list("pk", flat=True)[:WHO_MAX_USERS])


def _parts(filters: AuditFilters) -> list[QuerySet[AuditLog]]:
    """The rows matching `filters` as querysets that each read one index in date order.

    The action reads (action, at), the dates (at). `who` becomes one part per matching user,
    on (actor, at), plus one for rows without an actor (failed logins, lockouts, a client's
    unsubscribe) whose recorded username has the prefix: an OR of the two would make
    PostgreSQL walk the whole date index for a user with few rows. An object number alone is
    checked on the rows the other filters leave (docs/operations.md: its index).
    """
    entries = AuditLog.objects.all()
    if filters.action:
        entries = entries.filter(action=filters.action)
    if filters.object_id:
        entries = entries.filter(object_id=filters.object_id)
    if filters.date_from:
        entries = entries.filter(at__gte=_day_start(filters.date_from))
    if filters.date_to:
        entries = entries.filter(at__lt=_day_start(filters.date_to + dt.timedelta(days=1)))
    if not filters.who:
        return [entries]
    users = audit_who_users(filters.who)
    nobody = entries.filter(actor__isnull=True, actor_username__startswith=filters.who)
    return [entries.filter(actor_id=pk) for pk in users] + [nobody]


def _combined(parts: list[QuerySet], order: tuple[str, str], limit: int | None = None):
    if len(parts) == 1:
        entries = parts[0].order_by(*order)
        return entries[:limit] if limit else entries
    if not connections[parts[0].db].features.supports_slicing_ordering_in_compound:
        either = Q()
        for part in parts:  # SQLite: one query with OR (small data)
            either |= Q(pk__in=part.values("pk"))
        entries = AuditLog.objects.filter(either).order_by(*order)
        return entries[:limit] if limit else entries
    pieces = [part.order_by(*order)[:limit] if limit else part.order_by(*order)
              for part in parts]
    entries = pieces[0].union(*pieces[1:], all=True).order_by(*order)
    return entries[:limit] if limit else entries


def audit_entries(*, filters: AuditFilters):
    """Audit rows matching `filters`, newest first (for an export: iterate, don't filter)."""
    return _combined(_parts(filters), NEWEST_FIRST)


def audit_count_upto(*, filters: AuditFilters, cap: int) -> int:
    """How many rows match `filters`, counting no further than `cap` (+1: "more than cap")."""
    total = 0
    for part in _parts(filters):  # the parts never share a row
        total += part.order_by()[:cap + 1 - total].count()
        if total > cap:
            break
    return total


@dataclass
class AuditPage:
    """One page of audit rows; `older` / `newer` are the cursors (row ids) of the next pages."""

    object_list: list = field(default_factory=list)
    older: int | None = None
    newer: int | None = None

    def __iter__(self):
        return iter(self.object_list)

    def __len__(self):
        return len(self.object_list)

    def has_next(self) -> bool:
        return self.older is not None

    def has_previous(self) -> bool:
        return self.newer is not None

    def has_other_pages(self) -> bool:
        return self.has_next() or self.has_previous()


def _cursor_row(pk) -> tuple[dt.datetime, int] | None:
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        return None
    if not 0 < pk < 2**63:
        return None
    at = AuditLog.objects.filter(pk=pk).values_list("at", flat=True).first()
    return (at, pk) if at is not None else None


def audit_page(*, filters: AuditFilters, before=None, after=None, size: int = 50) -> AuditPage:
    """A page of `audit_entries`: the newest, or those just older than row `before`, or just
    newer than row `after` (keyset: no OFFSET and no COUNT, as fast on page 10,000 as page 1).
    """
    parts = _parts(filters)
    older_than = _cursor_row(before) if before else None
    newer_than = _cursor_row(after) if after and not older_than else None
    if newer_than:
        at, pk = newer_than
        rows = list(_combined([p.filter(at__gte=at).exclude(at=at, id__lte=pk) for p in parts],
                              OLDEST_FIRST, size + 1))
        if len(rows) <= size:  # reached the newest: show the first page, full
            return audit_page(filters=filters, size=size)
        rows = rows[:size][::-1]
        return AuditPage(object_list=rows, older=rows[-1].pk, newer=rows[0].pk)
    if older_than:
        at, pk = older_than
        parts = [p.filter(at__lte=at).exclude(at=at, id__gte=pk) for p in parts]
    rows = list(_combined(parts, NEWEST_FIRST, size + 1))
    more_older = len(rows) > size
    rows = rows[:size]
    return AuditPage(object_list=rows, older=rows[-1].pk if rows and more_older else None,
                     newer=rows[0].pk if rows and older_than else None)
