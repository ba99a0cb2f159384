"""Writes of segments: create, update (a new rule version per save), static lists, delete,
preview, and the set-based membership refresh.

A refresh is a SegmentRefresh row (status, progress, counts) whose work runs in Celery after
commit. It walks the client-id space in chunks; per chunk one INSERT … SELECT adds the
newcomers and one DELETE removes the leavers — the SELECT being the SQL Django compiles from the
rule's Q (never text from users) — each capped-sampled into MembershipChange. On PostgreSQL the
three are one statement per chunk (the rule evaluated once; see `_apply_chunk_pg`). A chunk
commits with its counts, so a rerun after a crash only redoes what is left (newcomers and
leavers are recomputed, nothing is done twice).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from datetime import date
from typing import Any

from django.conf import settings
from django.core.exceptions import EmptyResultSet, FullResultSet
from django.core.validators import validate_slug
from django.db import IntegrityError, connection, transaction
from django.db.models import F, ProtectedError, Q, RestrictedError, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from clients.models import Client
from clients.selectors import client_queryset_for
from core.errors import ApplicationError
from core.models import AuditAction
from core.services import audit_record

from .models import (
    MembershipChange,
    RefreshStatus,
    Segment,
    SegmentKind,
    SegmentMembership,
    SegmentRefresh,
    SegmentRuleVersion,
)
from .rules import RuleError, rule_compile, rule_segment_refs, rule_validate, segment_graph
from .signals import members_changed

logger = logging.getLogger(__name__)

TRIGGERS = ("page", "api", "command", "beat", "scoring", "save", "admin", "bench")
EDITABLE_KINDS = (SegmentKind.PERSONA, SegmentKind.RULE)
# Words the pages and the API use as paths beside /segments/<code>/: a segment with such a code
# could never be opened.
RESERVED_CODES = frozenset({"new", "preview", "personas", "static"})
CREATABLE_KINDS = (SegmentKind.RULE, SegmentKind.STATIC)
SAMPLE_MAX = 500
PREVIEW_SAMPLE = 10
MAX_STATIC = 100_000
# Per chunk the rule is evaluated once (a tier rule scans the current scores once), so fewer,
# larger chunks cost less; 500,000 still bounds a transaction and shows progress at 1M.
DEFAULT_CHUNK_CLIENTS = 500_000


def _actor(actor) -> Any:
    return actor if getattr(actor, "pk", None) else None


def _check_names(name_zh: str, name_en: str) -> None:
    if not (name_zh or "").strip() and not (name_en or "").strip():
        raise ApplicationError(_("A segment needs a name (Chinese or English)."),
                               fields={"name": [_("Required.")]})
    for key, value in (("name_zh", name_zh), ("name_en", name_en)):
        if len(value or "") > 100:
            raise ApplicationError(_("A name has at most 100 characters."),
                                   fields={key: [_("At most 100 characters.")]})


def _save_rule(*, segment: Segment, rule: Any, actor) -> SegmentRuleVersion:
    rule_validate(rule, segment_code=segment.code)
    version = (segment.versions.order_by("-version").values_list("version", flat=True).first()
               or 0) + 1
    saved = SegmentRuleVersion.objects.create(segment=segment, version=version, rule=rule,
                                              created_by=_actor(actor))
    segment.rule = rule
    segment.rule_version = version
    segment.save(update_fields=["rule", "rule_version", "updated_at"])
    audit_record(action=AuditAction.SEGMENT_SAVED, actor=_actor(actor), object_type="segment",
                 object_id=segment.code, detail={"code": segment.code, "kind": segment.kind,
                                                 "version": version, "rule": rule})
    return saved


@transaction.atomic
def segment_create(*, code: str, name_zh: str = "", name_en: str = "", kind: str = "rule",
                   rule: Any = None, client_nos: list[str] | None = None,
                   description_zh: str = "", description_en: str = "", actor=None,
                   refresh: bool = True) -> Segment:
    """A rule segment (validated rule, version 1) or a static list (every client_no must exist).

    A rule segment's first refresh is queued after commit (`refresh=False` skips it).
    """
    code = (code or "").strip() if isinstance(code, str) else ""
    try:
        validate_slug(code)
    except Exception:
        raise ApplicationError(_("A code is letters, digits, hyphens and underscores."),
                               fields={"code": [_("Invalid code.")]}) from None
    if len(code) > 64:
        raise ApplicationError(_("A code has at most 64 characters."),
                               fields={"code": [_("At most 64 characters.")]})
    if code.lower() in RESERVED_CODES:
        raise ApplicationError(
            _("“%(code)s” names a page of the product and cannot be a segment code.")
            % {"code": code}, fields={"code": [_("Reserved word.")]})
    if kind not in CREATABLE_KINDS:
        raise ApplicationError(_("Only rule segments and static lists can be created; kind is "
                                 "one of: %(kinds)s.") % {"kinds": ", ".join(CREATABLE_KINDS)},
                               fields={"kind": [_("Invalid kind.")]})
    _check_names(name_zh, name_en)
    if Segment.objects.filter(code=code).exists():
        raise ApplicationError(_("A segment with the code %(code)s already exists.")
                               % {"code": code}, code="duplicate", fields={"code": [
                                   _("Already used.")]}, status=409)
    if kind == SegmentKind.RULE:
        if rule is None:
            raise RuleError(_("A rule segment needs a rule."), node="/")
        rule_validate(rule, segment_code=code)
    elif rule is not None:
        raise ApplicationError(_("A static list has no rule; send client_nos."),
                               fields={"rule": [_("Not allowed for a static list.")]})
    segment = Segment.objects.create(code=code, kind=kind, name_zh=name_zh or "",
                                     name_en=name_en or "", description_zh=description_zh,
                                     description_en=description_en,
                                     created_by=_actor(actor))
    if kind == SegmentKind.RULE:
        _save_rule(segment=segment, rule=rule, actor=actor)
        if refresh:
            segment_refresh_start(segment=segment, actor=actor, trigger="save")
    else:
        segment_static_set(segment=segment, client_nos=client_nos or [], actor=actor)
    return segment


@transaction.atomic
def segment_update(*, segment: Segment, rule: Any = None, name_zh: str | None = None,
                   name_en: str | None = None, description_zh: str | None = None,
                   description_en: str | None = None, is_active: bool | None = None,
                   playbook: dict | None = None, actor=None, refresh: bool = True) -> Segment:
    """Change names/descriptions/playbook; a new rule is a new version (then a refresh).

    Value tiers and service levels have fixed rules; static lists have none.
    """
    segment = Segment.objects.select_for_update().get(pk=segment.pk)
    fields: list[str] = []
    for name, value in (("name_zh", name_zh), ("name_en", name_en),
                        ("description_zh", description_zh), ("description_en", description_en),
                        ("is_active", is_active), ("playbook", playbook)):
        if value is not None:
            setattr(segment, name, value)
            fields.append(name)
    _check_names(segment.name_zh, segment.name_en)
    if playbook is not None and not isinstance(playbook, dict):
        raise ApplicationError(_("A playbook is an object."), fields={"playbook": [
            _("Expected an object.")]})
    if fields:
        segment.save(update_fields=[*fields, "updated_at"])
    if rule is not None:
        if segment.kind not in EDITABLE_KINDS:
            raise ApplicationError(
                _("The rule of a %(kind)s segment is fixed; only personas and rule segments "
                  "have editable rules.") % {"kind": segment.get_kind_display()},
                code="rule_fixed", fields={"rule": [_("Not editable.")]})
        if rule != segment.rule:
            _save_rule(segment=segment, rule=rule, actor=actor)
            if refresh:
                segment_refresh_start(segment=segment, actor=actor, trigger="save",
                                      if_idle=True)
    return segment


def _resolve_client_nos(client_nos: Any) -> dict[str, int]:
    if not isinstance(client_nos, list) or any(not isinstance(c, str) for c in client_nos):
        raise ApplicationError(_("client_nos is a list of client numbers."),
                               fields={"client_nos": [_("Expected a list of strings.")]})
    if len(client_nos) > MAX_STATIC:
        raise ApplicationError(_("A static list has at most %(n)s clients.") % {"n": MAX_STATIC},
                               fields={"client_nos": [_("Too many.")]})
    wanted = list(dict.fromkeys(c.strip() for c in client_nos))
    found: dict[str, int] = {}
    for start in range(0, len(wanted), 5000):
        part = wanted[start:start + 5000]
        found.update(Client.objects.filter(client_no__in=part).values_list("client_no", "id"))
    unknown = [c for c in wanted if c not in found]
    if unknown:
        shown = ", ".join(unknown[:20]) + (" …" if len(unknown) > 20 else "")
        raise ApplicationError(_("%(n)d unknown client numbers: %(list)s.")
                               % {"n": len(unknown), "list": shown},
                               code="unknown_clients", fields={"client_nos": unknown[:100]})
    return found


@transaction.atomic
def segment_static_set(*, segment: Segment, client_nos: list[str], actor=None) -> Segment:
    """Replace a static list's members; any unknown client_no rejects the whole list."""
    if segment.kind != SegmentKind.STATIC:
        raise ApplicationError(_("Only a static list takes client numbers."),
                               fields={"client_nos": [_("Not a static list.")]})
    ids = set(_resolve_client_nos(client_nos).values())
    current = set(SegmentMembership.objects.filter(segment=segment)
                  .values_list("client_id", flat=True))
    SegmentMembership.objects.filter(segment=segment, client_id__in=current - ids).delete()
    SegmentMembership.objects.bulk_create(
        [SegmentMembership(segment=segment, client_id=i) for i in sorted(ids - current)],
        batch_size=5000)
    segment.size = len(ids)
    segment.refreshed_at = timezone.now()
    segment.save(update_fields=["size", "refreshed_at", "updated_at"])
    _members_changed(segment.pk)
    audit_record(action=AuditAction.SEGMENT_SAVED, actor=_actor(actor), object_type="segment",
                 object_id=segment.code, detail={"code": segment.code, "kind": segment.kind,
                                                 "rows": len(ids)})
    return segment


def segment_dependents(*, segment: Segment) -> list[str]:
    """Codes of the segments whose rules reference `segment`."""
    return sorted(code for code, refs in segment_graph().items()
                  if segment.code in refs and code != segment.code)


@transaction.atomic
def segment_delete(*, segment: Segment, actor=None) -> None:
    if segment.is_system:
        raise ApplicationError(_("%(name)s is seeded by the product and cannot be deleted; "
                                 "deactivate it instead.") % {"name": segment.name},
                               code="system_segment", status=409)
    users = segment_dependents(segment=segment)
    if users:
        raise ApplicationError(_("%(code)s is used by the rules of: %(users)s; change those "
                                 "first.") % {"code": segment.code, "users": ", ".join(users)},
                               code="segment_in_use", status=409)
    segment_id = segment.pk
    try:
        segment.delete()
        _members_changed(segment_id)
    except (ProtectedError, RestrictedError) as exc:  # e.g. a publication's audience
        blocking = getattr(exc, "protected_objects", None) or exc.restricted_objects
        users = sorted({f"{obj._meta.verbose_name} “{obj}”" for obj in blocking})
        raise ApplicationError(_("%(code)s is in use by %(users)s; change those first.")
                               % {"code": segment.code, "users": ", ".join(users[:10])},
                               code="segment_in_use", status=409) from None
    audit_record(action=AuditAction.SEGMENT_DELETED, actor=_actor(actor), object_type="segment",
                 object_id=segment.code, detail={"code": segment.code, "kind": segment.kind,
                                                 "name": segment.name})


def segment_preview(*, rule: Any, user, today: date | None = None) -> dict[str, Any]:
    """Live count and a sample of client numbers of `rule`, among the clients `user` may see."""
    q = rule_compile(rule, today=today)
    qs = client_queryset_for(user).filter(q)
    with transaction.atomic():  # no JIT (settings: DATABASES options): ~0.25 s a count
        count = qs.count()
        sample = list(qs.order_by("id").values_list("client_no", flat=True)[:PREVIEW_SAMPLE])
    return {"count": count, "sample": sample}


# --- refresh ---------------------------------------------------------------------------------

@transaction.atomic
def scenarios_sync(*, actor=None) -> list[str]:
    """Create the seeded scenario segments that are missing and give each the rule its
    thresholds in settings make (a new rule version only when it changed). Codes changed."""
    from .scenarios import SCENARIOS, scenario_playbook, scenario_rule

    changed = []
    existing = {s.code: s for s in Segment.objects.filter(
        code__in=[t.code for t in SCENARIOS]).select_for_update()}
    for text in SCENARIOS:
        segment = existing.get(text.code)
        if segment is None:
            segment = Segment.objects.create(
                code=text.code, kind=SegmentKind.SCENARIO, name_zh=text.name_zh,
                name_en=text.name_en, description_zh=text.description_zh,
                description_en=text.description_en, playbook=scenario_playbook(text),
                is_system=True)
        elif segment.kind != SegmentKind.SCENARIO:
            logger.warning("segment %s is not a scenario; left alone", text.code)
            continue
        rule = scenario_rule(text.code)
        if segment.rule != rule:
            _save_rule(segment=segment, rule=rule, actor=actor)
            changed.append(text.code)
    return changed


def segment_refresh_start(*, segment: Segment, actor=None, trigger: str = "page",
                          if_idle: bool = False, queue: bool = True) -> SegmentRefresh | None:
    """A queued refresh of `segment`, run after commit; a second active one is refused (409).

    `if_idle=True` returns None instead of refusing. `queue=False` leaves the queuing to the
    caller (segments_refresh_all runs several in dependency order).
    """
    busy = _("%(name)s is already being refreshed; wait for it to finish.") % {
        "name": segment.name}
    with transaction.atomic():
        if segment.kind == SegmentKind.SCENARIO:
            scenarios_sync(actor=actor)
            segment.refresh_from_db(fields=["rule", "rule_version"])
        segment_refreshes_fail_stale(segment_ids=[segment.pk])
        if segment.refreshes.filter(status__in=SegmentRefresh.ACTIVE).exists():
            if if_idle:
                return None
            raise ApplicationError(busy, code="refresh_active", status=409)
        try:
            with transaction.atomic():
                refresh = SegmentRefresh.objects.create(
                    segment=segment, trigger=trigger[:20], rule_version=segment.rule_version,
                    created_by=_actor(actor))
        except IntegrityError as exc:
            if if_idle:
                return None
            raise ApplicationError(busy, code="refresh_active", status=409) from exc
        if queue:
            refresh_id = refresh.pk
            transaction.on_commit(lambda: _queue([refresh_id]), robust=True)
    return refresh


def _stale_after() -> dt.timedelta:
    return dt.timedelta(seconds=settings.SEGMENT_REFRESH_STALE_SECONDS)


def segment_refreshes_fail_stale(*, segment_ids: Iterable[int] | None = None) -> int:
    """Refreshes left running by a worker that died (no heartbeat for
    SEGMENT_REFRESH_STALE_SECONDS) become failed, so the segment can be refreshed again.

    Called before a refresh is started and by the nightly refresh of all segments. A worker
    that is merely slow writes a heartbeat after every chunk and is left alone."""
    cutoff = timezone.now() - _stale_after()
    stale = SegmentRefresh.objects.filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff),
        status=RefreshStatus.RUNNING)
    if segment_ids is not None:
        stale = stale.filter(segment_id__in=list(segment_ids))
    found = stale.update(
        status=RefreshStatus.FAILED, finished_at=timezone.now(),
        error=gettext_noop("The worker running this refresh stopped without finishing; "
                           "it was marked failed so the segment can be refreshed again."))
    if found:
        logger.warning("segments: %s stale refresh(es) marked failed", found)
    return found


def _queue(refresh_ids: list[int]) -> None:
    from .tasks import segment_refresh_many_task  # segments.tasks imports this module

    if refresh_ids:
        segment_refresh_many_task.delay(refresh_ids)


def _dependency_order(segments: list[Segment]) -> list[Segment]:
    """Referenced segments before the segments whose rules use them (a topological order)."""
    by_code = {s.code: s for s in segments}
    graph = {s.code: rule_segment_refs(s.rule) & by_code.keys() for s in segments}
    ordered: list[Segment] = []
    state: dict[str, int] = {}

    def visit(code: str) -> None:
        if state.get(code) == 2:
            return
        if state.get(code) == 1:  # a cycle (refused at save, so never stored): ignore the edge
            return
        state[code] = 1
        for dep in sorted(graph[code]):
            visit(dep)
        state[code] = 2
        ordered.append(by_code[code])

    for code in sorted(by_code, key=lambda c: (by_code[c].kind, c)):
        visit(code)
    return ordered


def segments_refresh_all(*, trigger: str = "beat", kinds: Iterable[str] | None = None,
                         actor=None, queue: bool = True) -> list[SegmentRefresh]:
    """Refresh every active segment (of `kinds`), referenced ones first, in one queued task.

    Segments being refreshed right now are skipped; a queued refresh is taken over (run in
    this batch). `queue=False` only creates the rows (the
    caller runs them, e.g. `segment_refresh_many` in a command or a benchmark).
    """
    if kinds is None or SegmentKind.SCENARIO in kinds:
        scenarios_sync(actor=actor)
    qs = Segment.objects.filter(is_active=True)
    if kinds is not None:
        qs = qs.filter(kind__in=list(kinds))
    refreshes = []
    with transaction.atomic():
        segments = _dependency_order(list(qs))
        segment_refreshes_fail_stale(segment_ids=[s.pk for s in segments])
        # A refresh still waiting (its message lost, or no worker yet) is run again here:
        # running a refresh twice is harmless, leaving it queued would block the segment.
        waiting = {r.segment_id: r for r in SegmentRefresh.objects.filter(
            segment__in=segments, status=RefreshStatus.QUEUED)}
        for segment in segments:
            refresh = waiting.get(segment.pk) or segment_refresh_start(
                segment=segment, actor=actor, trigger=trigger, if_idle=True, queue=False)
            if refresh is not None:
                refreshes.append(refresh)
        ids = [r.pk for r in refreshes]
        if queue:
            transaction.on_commit(lambda: _queue(ids), robust=True)
    return refreshes


def _chunk_size() -> int:
    return int(getattr(settings, "SEGMENT_REFRESH_CHUNK_CLIENTS", DEFAULT_CHUNK_CLIENTS))


def _chunks() -> list[tuple[int | None, int | None]]:
    """Client-id ranges [lo, hi) of about `size` ids; the first and last are open-ended."""
    with connection.cursor() as cur:
        cur.execute("SELECT MIN(id), MAX(id) FROM clients_client")
        low, high = cur.fetchone()
    if low is None:
        return [(None, None)]
    size = _chunk_size()
    bounds = list(range(low + size, high + 1, size))
    edges: list[int | None] = [None, *bounds, None]
    return list(zip(edges[:-1], edges[1:], strict=True))


def _range_sql(column: str, lo: int | None, hi: int | None) -> tuple[str, list[int]]:
    parts, params = [], []
    if lo is not None:
        parts.append(f"{column} >= %s")
        params.append(lo)
    if hi is not None:
        parts.append(f"{column} < %s")
        params.append(hi)
    return (" AND ".join(parts) or "1 = 1"), params


def _match_sql(q: Q, lo: int | None, hi: int | None) -> tuple[str, tuple] | None:
    """SQL selecting the ids of the clients matching `q` in [lo, hi); None when none can."""
    qs = Client.objects.filter(q)
    if lo is not None:
        qs = qs.filter(id__gte=lo)
    if hi is not None:
        qs = qs.filter(id__lt=hi)
    try:
        return qs.order_by().values("id").query.sql_with_params()
    except EmptyResultSet:
        return None
    except FullResultSet:  # pragma: no cover - a filter on the range is always there
        return qs.order_by().values("id").query.sql_with_params()


def _sample(refresh_id: int, change: str, client_ids: list[int], room: int) -> int:
    if room <= 0 or not client_ids:
        return 0
    MembershipChange.objects.bulk_create(
        [MembershipChange(refresh_id=refresh_id, client_id=i, change=change)
         for i in client_ids[:room]])
    return min(room, len(client_ids))


def _apply_chunk(*, segment_id: int, version: int, refresh_id: int, q: Q, lo: int | None,
                 hi: int | None, now, room_joined: int,
                 room_left: int) -> tuple[int, int, int | None]:
    """Newcomers in, leavers out, for one id range: (joined, left, members of the range
    afterwards, or None when not counted). Sampled up to `room_*`."""
    match = _match_sql(q, lo, hi)
    if connection.vendor == "postgresql":
        return _apply_chunk_pg(segment_id=segment_id, version=version, refresh_id=refresh_id,
                               match=match, lo=lo, hi=hi, now=now, room_joined=room_joined,
                               room_left=room_left)
    rng, rng_params = _range_sql("sm.client_id", lo, hi)
    with connection.cursor() as cur:
        joined = 0
        if match is not None:
            sql, params = match
            cur.execute(
                "INSERT INTO segments_segmentmembership (segment_id, client_id, rule_version, "
                f"since) SELECT %s, m.id, %s, %s FROM ({sql}) m WHERE NOT EXISTS (SELECT 1 FROM "
                "segments_segmentmembership sm WHERE sm.segment_id = %s AND sm.client_id = m.id) "
                "RETURNING client_id",
                [segment_id, version, connection.ops.adapt_datetimefield_value(now), *params,
                 segment_id])
            ids = [row[0] for row in cur.fetchall()]
            joined = len(ids)
            _sample(refresh_id, MembershipChange.JOINED, ids, room_joined)
        if match is None:
            keep_sql, keep_params = "", []
        else:
            sql, params = match
            keep_sql = f" AND NOT EXISTS (SELECT 1 FROM ({sql}) m WHERE m.id = sm.client_id)"
            keep_params = list(params)
        cur.execute(f"DELETE FROM segments_segmentmembership AS sm WHERE sm.segment_id = %s AND "
                    f"{rng}{keep_sql} RETURNING client_id",
                    [segment_id, *rng_params, *keep_params])
        ids = [row[0] for row in cur.fetchall()]
        _sample(refresh_id, MembershipChange.LEFT, ids, room_left)
    return joined, len(ids), None


def _apply_chunk_pg(*, segment_id: int, version: int, refresh_id: int,
                    match: tuple[str, tuple] | None, lo: int | None, hi: int | None, now,
                    room_joined: int, room_left: int) -> tuple[int, int, int]:
    """One statement per chunk: (joined, left, members in the range afterwards).

    The rule is evaluated once (the materialised `m`) and compared with the range's current
    members in one full join (`d`: the newcomers and the leavers, nothing when nothing
    changed); newcomers are inserted, leavers deleted, and each is sampled into
    MembershipChange by a LIMITed INSERT … SELECT from the statement's own RETURNING rows, so
    nothing comes back to Python but three counts. The data-modifying parts see the same
    snapshot and touch disjoint rows.
    """
    # The range is repeated on the members read: the planner cannot infer it from `m`.
    rng, rng_params = _range_sql("sm.client_id", lo, hi)
    if match is None:
        sql, params = "SELECT NULL::bigint AS id WHERE false", ()
    else:
        sql, params = match
    statement = (
        f"WITH m AS MATERIALIZED ({sql}), "
        "d AS MATERIALIZED (SELECT m.id AS joining, sm.client_id AS leaving FROM m FULL JOIN "
        "(SELECT sm.client_id FROM segments_segmentmembership sm WHERE sm.segment_id = %s "
        f"AND {rng}) sm ON sm.client_id = m.id WHERE m.id IS NULL OR sm.client_id IS NULL), "
        "ins AS (INSERT INTO segments_segmentmembership (segment_id, client_id, rule_version, "
        "since) SELECT %s, d.joining, %s, %s FROM d WHERE d.joining IS NOT NULL "
        "RETURNING client_id), "
        "del AS (DELETE FROM segments_segmentmembership AS sm USING d WHERE "
        f"sm.segment_id = %s AND {rng} AND sm.client_id = d.leaving "
        "RETURNING sm.client_id), "
        "sj AS (INSERT INTO segments_membershipchange (refresh_id, client_id, change) "
        "SELECT %s, client_id, 'joined' FROM ins LIMIT %s RETURNING 1), "
        "sl AS (INSERT INTO segments_membershipchange (refresh_id, client_id, change) "
        "SELECT %s, client_id, 'left' FROM del LIMIT %s RETURNING 1) "
        "SELECT (SELECT COUNT(*) FROM ins), (SELECT COUNT(*) FROM del), "
        "(SELECT COUNT(*) FROM m)")
    with connection.cursor() as cur:
        cur.execute(statement, [
            *params, segment_id, *rng_params,
            segment_id, version, now,
            segment_id, *rng_params,
            refresh_id, max(room_joined, 0), refresh_id, max(room_left, 0)])
        joined, left, members = cur.fetchone()
    return joined, left, members


def _tune_transaction() -> None:
    """Per refresh transaction on PostgreSQL: room to hash a chunk's matches in memory (JIT is
    off for every connection: settings, DATABASES options)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SET LOCAL work_mem = '256MB'")


def _restamp(*, segment_id: int, version: int) -> None:
    """Members kept across a rule change now record the new version."""
    SegmentMembership.objects.filter(segment_id=segment_id).exclude(
        rule_version=version).update(rule_version=version)


def _fail(refresh_id: int, error: str) -> None:
    SegmentRefresh.objects.filter(pk=refresh_id, status__in=SegmentRefresh.ACTIVE).update(
        status=RefreshStatus.FAILED, error=error[:4000], finished_at=timezone.now())


def segment_refresh_run(*, refresh_id: int) -> SegmentRefresh | None:
    """The work of one refresh (the task body); harmless when already finished."""
    refresh = SegmentRefresh.objects.select_related("segment").filter(pk=refresh_id).first()
    if refresh is None or not refresh.is_active:
        return refresh
    segment = refresh.segment
    now = timezone.now()
    SegmentRefresh.objects.filter(pk=refresh_id).update(
        status=RefreshStatus.RUNNING, started_at=refresh.started_at or now,
        rule_version=segment.rule_version, heartbeat_at=now)
    try:
        if segment.kind == SegmentKind.STATIC or segment.rule is None:
            size = SegmentMembership.objects.filter(segment=segment).count()
            return _finish(refresh_id=refresh_id, segment=segment, size=size, now=now)
        try:
            q = rule_compile(segment.rule)
        except RuleError as exc:
            raise ApplicationError(_("The stored rule is invalid at %(node)s: %(msg)s")
                                   % {"node": exc.node, "msg": exc.message}) from exc
        chunks = _chunks()
        SegmentRefresh.objects.filter(pk=refresh_id).update(progress_done=0,
                                                            progress_total=len(chunks))
        version = segment.rule_version
        sizes: list[int | None] = []
        for lo, hi in chunks:
            with transaction.atomic():
                _tune_transaction()
                counts = SegmentRefresh.objects.values("joined", "left").get(pk=refresh_id)
                joined, left, members = _apply_chunk(
                    segment_id=segment.pk, version=version, refresh_id=refresh_id, q=q, lo=lo,
                    hi=hi, now=now, room_joined=SAMPLE_MAX - (counts["joined"] or 0),
                    room_left=SAMPLE_MAX - (counts["left"] or 0))
                SegmentRefresh.objects.filter(pk=refresh_id).update(
                    joined=(counts["joined"] or 0) + joined, left=(counts["left"] or 0) + left,
                    progress_done=F("progress_done") + 1, heartbeat_at=timezone.now())
            sizes.append(members)
        last_version = (SegmentRefresh.objects.filter(segment=segment,
                                                      status=RefreshStatus.SUCCEEDED)
                        .values_list("rule_version", flat=True).first())
        if last_version != version:
            _restamp(segment_id=segment.pk, version=version)
        # The chunks cover every client id, and after its chunk a range's members are
        # exactly its matches: their sum is the size (no second pass over the members).
        size = (sum(sizes) if None not in sizes
                else SegmentMembership.objects.filter(segment=segment).count())
        return _finish(refresh_id=refresh_id, segment=segment, size=size, now=now)
    except Exception as exc:
        logger.exception("segment refresh %s of %s failed", refresh_id, segment.code)
        _fail(refresh_id, f"{exc}")
        raise


def _finish(*, refresh_id: int, segment: Segment, size: int, now) -> SegmentRefresh:
    finished = timezone.now()
    with transaction.atomic():
        SegmentRefresh.objects.filter(pk=refresh_id).update(
            status=RefreshStatus.SUCCEEDED, size=size, joined=Coalesce0("joined"),
            left=Coalesce0("left"), finished_at=finished, error="")
        Segment.objects.filter(pk=segment.pk).update(size=size, refreshed_at=finished)
        _members_changed(segment.pk)
    return SegmentRefresh.objects.get(pk=refresh_id)


def _members_changed(segment_id: int) -> None:
    """Tell the apps above (after commit) that a segment's members changed."""
    transaction.on_commit(lambda: members_changed.send(
        sender=Segment, segment_id=segment_id, trigger="segment"), robust=True)


def Coalesce0(name: str):  # noqa: N802 - reads like the SQL function it is
    return Coalesce(F(name), Value(0))


def segment_refresh_many(*, refresh_ids: list[int]) -> None:
    """Run refreshes in the given (dependency) order; one failing does not stop the others."""
    for refresh_id in refresh_ids:
        try:
            segment_refresh_run(refresh_id=refresh_id)
        except Exception:  # recorded on the refresh row by segment_refresh_run
            continue


def segments_after_scoring(**kwargs: Any) -> None:
    """Receiver of scoring_run_succeeded: tiers, levels and every rule may have changed."""
    try:
        segments_refresh_all(trigger="scoring")
    except Exception:  # the scoring run has succeeded; a refresh can be started again by hand
        logger.exception("could not start the segment refresh after scoring")
