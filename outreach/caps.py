"""The contact policy's caps as set-based conditions over the contact ledger.

A cap allows at most N counted contacts (outreach.models.COUNTED_STATUSES) per client on a
channel -- or on all channels together -- in a rolling window of W days. A new contact planned
for day D must fit every window of W days that contains D, so the check counts the ledger
between D-(W-1) and D+(W-1): conservative for contacts planned on both sides of D, never
over the cap. Checks and reservations happen under `caps_lock` (one writer at a time), so two
campaigns launching at once cannot both take a client's last free contact.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.db.models.lookups import GreaterThanOrEqual

from .models import ALL_CHANNELS, COUNTED_STATUSES, Contact, ContactSource

# pg_advisory_xact_lock key: "outreach caps" (any constant shared by every writer).
_LOCK_KEY = 7_310_442_001


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


def _counted(*, client_ref: str, channel: str, cap: dict, day: dt.date, exclude: dict):
    start, end = _window(day, cap["window_days"])
    qs = Contact.objects.filter(client_id=OuterRef(client_ref), status__in=COUNTED_STATUSES,
                                planned_on__range=(start, end))
    if cap["channel"] != ALL_CHANNELS:
        qs = qs.filter(channel=channel)
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


def taken_by_higher_priority(*, policy: dict, channel: str, day: dt.date, priority: int,
                             client_ref: str = "pk") -> Exists:
    """The client has a counted campaign contact of a higher priority (a smaller number) in
    the widest window of the caps that apply: when the caps are full, that campaign took them."""
    days = max((c["window_days"] for c in caps_for(policy, channel)), default=1)
    start, end = _window(day, days)
    return Exists(Contact.objects.filter(
        client_id=OuterRef(client_ref), status__in=COUNTED_STATUSES,
        planned_on__range=(start, end), source=ContactSource.CAMPAIGN, priority__lt=priority))
