"""Pages of segments: the list, the rule builder with a live count, static lists, a segment's
page (rule, versions, size over time, joined/left, members, exports), the persona overview.

Thin edges (DESIGN.md): each view validates, calls one service or selector of segments and
renders. Client data is read only through the access-scoping rule (client_queryset_for /
client_scope_q), so an RM sees their own clients of any segment and ops see all, masked.
Builder actions (new, edit, refresh, static lists) are for ops and admin; anyone else gets a
403 that is written to the audit log.
"""

from __future__ import annotations

import json
from datetime import datetime

from django.contrib import messages
from django.db.models import Count, Sum
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from clients.models import Client, ProductType
from clients.scoring.models import Tier
from clients.selectors import client_queryset_for
from clients.views import _paginate
from core.access import ALL_CLIENTS_ROLES, client_scope_q, role_of
from core.errors import ApplicationError
from core.models import Branch, Role, User
from core.permissions import access_denied, capability_required, user_can

from .exports import FORMATS, segment_export
from .forms import (
    AddToStaticListForm,
    RuleSegmentForm,
    StaticListForm,
    builder_fields,
    op_labels,
    rule_segment_codes,
    rule_text,
)
from .models import (
    MembershipChange,
    RefreshStatus,
    Segment,
    SegmentKind,
    SegmentMembership,
    SegmentRefresh,
)

KIND_ORDER = [SegmentKind.PERSONA, SegmentKind.TIER, SegmentKind.SERVICE_LEVEL, SegmentKind.RULE,
              SegmentKind.STATIC]
HISTORY_POINTS = 90
CHANGES_SHOWN = 20
MEMBERS_PER_PAGE = 25
VERSIONS_SHOWN = 20


def _segment(code: str) -> Segment:
    segment = Segment.objects.filter(code=code, is_active=True).first()
    if segment is None:
        raise Http404(_("No such segment."))
    return segment


def _is_htmx(request) -> bool:
    return (request.headers.get("HX-Request") == "true"
            and request.headers.get("HX-History-Restore-Request") != "true")


def _lang() -> str:
    return "zh-hans" if (get_language() or "").startswith("zh") else "en"


def playbook_for(segment: Segment) -> dict | None:
    """The persona's playbook in the current language (falling back to the other one)."""
    book = segment.playbook or {}
    lang = _lang()
    text = book.get(lang) or book.get("en" if lang == "zh-hans" else "zh-hans") or {}
    types = [str(ProductType(t).label) if t in ProductType.values else t
             for t in book.get("product_types") or []]
    if not text and not types:
        return None
    return {"traits": text.get("traits", ""), "channels": text.get("channels", ""),
            "service": text.get("service", ""), "product_types": types}


def _segment_names(codes) -> dict[str, str]:
    if not codes:
        return {}
    return {s.code: s.name for s in Segment.objects.filter(code__in=codes)
            .only("code", "name_zh", "name_en")}


def _refresh_context(segment: Segment, refresh: SegmentRefresh | None) -> dict:
    return {"segment": segment, "refresh": refresh,
            "percent": refresh.percent_done if refresh is not None else 0,
            "active": refresh is not None and refresh.is_active}


# --- the list ----------------------------------------------------------------------------------
@capability_required("segments.view")
def segment_list(request):
    segments = list(Segment.objects.filter(is_active=True).order_by("kind", "code"))
    latest: dict[int, SegmentRefresh] = {}
    for refresh in SegmentRefresh.objects.filter(status__in=SegmentRefresh.ACTIVE):
        latest[refresh.segment_id] = refresh
    scoped = role_of(request.user) not in ALL_CLIENTS_ROLES
    visible: dict[int, int] = {}
    if scoped:  # one GROUP BY: how many of each segment's members this user may see
        visible = dict(SegmentMembership.objects.filter(client_scope_q(request.user,
                                                                       prefix="client__"))
                       .values_list("segment_id").annotate(n=Count("id")).order_by())
    groups = []
    labels = dict(SegmentKind.choices)
    for kind in KIND_ORDER:
        rows = [{"segment": s, "visible": visible.get(s.pk, 0),
                 **_refresh_context(s, latest.get(s.pk))} for s in segments if s.kind == kind]
        groups.append({"kind": kind, "label": labels[kind], "rows": rows})
    return render(request, "segments/segment_list.html", {
        "groups": groups, "scoped": scoped,
        "can_build": user_can(request.user, "segments.manage")})


# --- refresh -----------------------------------------------------------------------------------
@capability_required("segments.manage")
@require_POST
def refresh_start(request, code: str):
    from .services import segment_refresh_start

    segment = _segment(code)
    error = ""
    refresh = None
    try:
        refresh = segment_refresh_start(segment=segment, actor=request.user, trigger="page")
    except ApplicationError as exc:
        error = exc.message
    if refresh is not None:
        refresh = SegmentRefresh.objects.filter(pk=refresh.pk).first() or refresh
    if _is_htmx(request):
        if refresh is None:
            refresh = segment.refreshes.first()
        return render(request, "segments/_refresh_status.html",
                      {**_refresh_context(segment, refresh), "error": error})
    if error:
        messages.error(request, error)
    else:
        messages.success(request, _("Refresh started."))
    return redirect("segments:segment_detail", code=segment.code)


@capability_required("segments.manage")
def refresh_status(request, code: str, pk: int):
    segment = _segment(code)
    refresh = SegmentRefresh.objects.filter(segment=segment, pk=pk).first()
    if refresh is None:
        raise Http404(_("No such refresh."))
    context = _refresh_context(segment, refresh)
    response = render(request, "segments/_refresh_status.html", context)
    if not context["active"] and refresh.status == RefreshStatus.SUCCEEDED:
        response["HX-Trigger"] = "segment-refreshed"
    return response


# --- the builder -------------------------------------------------------------------------------
def _builder_choices(exclude: Segment | None) -> dict:
    lang = _lang()
    branches = [[code, f"{name} ({code})"] for code, name in
                Branch.objects.order_by("code").values_list("code", "name")]
    rms = [[username, display or username] for username, display in
           User.objects.filter(groups__name=Role.RM).order_by("username")
           .values_list("username", "display_name")]
    segments = []
    for code, zh, en in (Segment.objects.filter(is_active=True)
                         .exclude(pk=getattr(exclude, "pk", None))
                         .order_by("kind", "code").values_list("code", "name_zh", "name_en")):
        name = (zh or en) if lang == "zh-hans" else (en or zh)
        segments.append([code, f"{name} ({code})"])
    return {"branches": branches, "rms": rms, "segments": segments}


def _builder_ui() -> dict:
    return {
        "ops": op_labels(),
        "groups": {"all": _("All of these (AND)"), "any": _("Any of these (OR)"),
                   "not": _("None of these (NOT)")},
        "add_condition": _("Add condition"), "add_group": _("Add group"),
        "remove": _("Remove"), "field": _("Field"), "operator": _("Operator"),
        "value": _("Value"), "and": _("and"), "yes": _("yes"), "no": _("no"),
        "choose": _("Choose…"), "empty_group": _("No conditions yet: add one."),
        "multi_hint": _("Ctrl/⌘-click to choose several"),
    }


def _builder_page(request, *, form, segment: Segment | None, rule, rule_error=None,
                  status: int = 200):
    context = {
        "form": form, "segment": segment,
        "rule_json": json.dumps(rule or {"all": []}, ensure_ascii=False),
        "builder": {"fields": builder_fields(**_builder_choices(segment)), "ui": _builder_ui()},
        "rule_error": rule_error,
    }
    return render(request, "segments/segment_builder.html", context, status=status)


def _form_application_error(form, exc: ApplicationError) -> dict | None:
    """Put a service's error on the form; a rule error is returned to show at its node."""
    node = getattr(exc, "node", None)
    if node is not None:
        return {"node": "" if node == "/" else node, "message": exc.message}
    placed = False
    for field, errors in (exc.fields or {}).items():
        if field in form.fields and field != "rule":
            form.add_error(field, errors)
            placed = True
    if not placed:
        form.add_error(None, exc.message)
    return None


def _names(data: dict) -> dict:
    return {k: data.get(k, "") for k in ("name_zh", "name_en", "description_zh",
                                         "description_en")}


@capability_required("segments.manage")
def segment_new(request):
    from .services import segment_create

    if request.method != "POST":
        return _builder_page(request, form=RuleSegmentForm(), segment=None, rule=None)
    form = RuleSegmentForm(request.POST)
    rule_error = None
    if form.is_valid():
        data = form.cleaned_data
        try:
            segment = segment_create(code=data["code"], kind=SegmentKind.RULE, rule=data["rule"],
                                     actor=request.user, **_names(data))
        except ApplicationError as exc:
            rule_error = _form_application_error(form, exc)
        else:
            messages.success(request, _("Segment saved as version %(v)d.")
                             % {"v": segment.rule_version})
            return redirect("segments:segment_detail", code=segment.code)
    return _builder_page(request, form=form, segment=None,
                         rule=form.cleaned_data.get("rule") if form.is_bound else None,
                         rule_error=rule_error or _rule_field_error(form), status=400)


def _rule_field_error(form) -> dict | None:
    errors = form.errors.get("rule") if form.is_bound else None
    return {"node": "", "message": " ".join(errors)} if errors else None


@capability_required("segments.manage")
def segment_edit(request, code: str):
    segment = _segment(code)
    if segment.kind == SegmentKind.STATIC:
        return static_list_edit(request, segment)
    from .services import segment_update

    initial = {k: getattr(segment, k) for k in ("name_zh", "name_en", "description_zh",
                                                "description_en")}
    if request.method != "POST":
        return _builder_page(request, form=RuleSegmentForm(initial=initial, segment=segment),
                             segment=segment, rule=segment.rule)
    form = RuleSegmentForm(request.POST, segment=segment)
    rule_error = None
    if form.is_valid():
        data = form.cleaned_data
        try:
            segment = segment_update(segment=segment, rule=data["rule"], actor=request.user,
                                     **_names(data))
        except ApplicationError as exc:
            rule_error = _form_application_error(form, exc)
        else:
            messages.success(request, _("Segment saved as version %(v)d.")
                             % {"v": segment.rule_version})
            return redirect("segments:segment_detail", code=segment.code)
    return _builder_page(request, form=form, segment=segment,
                         rule=form.cleaned_data.get("rule") or segment.rule,
                         rule_error=rule_error or _rule_field_error(form), status=400)


@capability_required("segments.view")
@require_POST
def segment_preview_view(request):
    """The live count and sample of the rule being edited (htmx, on every change).

    Open to every role: it counts only the clients the viewer may see.
    """
    from .forms import parse_rule
    from .services import segment_preview

    rule, problem = parse_rule(request.POST.get("rule", ""))
    context: dict = {"result": None, "error": None}
    if rule is None:
        context["error"] = {"node": "", "message": problem}
    else:
        try:
            result = segment_preview(rule=rule, user=request.user)
        except ApplicationError as exc:
            node = getattr(exc, "node", "") or ""
            context["error"] = {"node": "" if node == "/" else node, "message": exc.message}
        else:
            context["result"] = {"count": result["count"],
                                 "sample": [_sample_no(s) for s in result["sample"]]}
    return render(request, "segments/_preview.html", context)


def _sample_no(item) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        return str(item.get("client_no", ""))
    return str(getattr(item, "client_no", item))


# --- static lists ------------------------------------------------------------------------------
def _unknown_client_nos(user, numbers: list[str]) -> list[str]:
    """The numbers that are not clients `user` may see (read in chunks of 5,000)."""
    known: set[str] = set()
    visible = client_queryset_for(user)
    for start in range(0, len(numbers), 5000):
        chunk = numbers[start:start + 5000]
        known.update(visible.filter(client_no__in=chunk).values_list("client_no", flat=True))
    return [n for n in numbers if n not in known]


def _unknown_error(form, unknown: list[str]) -> None:
    shown = ", ".join(unknown[:50])
    more = len(unknown) - 50
    message = _("%(n)d client numbers are unknown; nothing was saved: %(nos)s") % {
        "n": len(unknown), "nos": shown}
    if more > 0:
        message += " " + _("and %(n)d more.") % {"n": more}
    form.add_error(None, message)


@capability_required("segments.manage")
def static_list_new(request):
    from .services import segment_create

    form = StaticListForm(request.POST or None, request.FILES or None)
    unknown: list[str] = []
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        unknown = _unknown_client_nos(request.user, data["numbers"])
        if unknown:
            _unknown_error(form, unknown)
        else:
            try:
                segment = segment_create(code=data["code"], kind=SegmentKind.STATIC,
                                         client_nos=data["numbers"], actor=request.user,
                                         **_names(data))
            except ApplicationError as exc:
                _form_application_error(form, exc)
            else:
                messages.success(request, _("Static list saved with %(n)d clients.")
                                 % {"n": len(data["numbers"])})
                return redirect("segments:segment_detail", code=segment.code)
    return render(request, "segments/static_list_form.html",
                  {"form": form, "segment": None, "unknown": unknown},
                  status=400 if form.is_bound and form.errors else 200)


def static_list_edit(request, segment: Segment):
    from .services import segment_static_set

    form = StaticListForm(request.POST or None, request.FILES or None,
                          initial={k: getattr(segment, k) for k in ("name_zh", "name_en")})
    del form.fields["code"]
    for name in ("name_zh", "name_en", "description_zh", "description_en"):
        form.fields[name].required = False
    unknown: list[str] = []
    if request.method == "POST" and form.is_valid():
        numbers = form.cleaned_data["numbers"]
        unknown = _unknown_client_nos(request.user, numbers)
        if unknown:
            _unknown_error(form, unknown)
        else:
            try:
                segment_static_set(segment=segment, client_nos=numbers, actor=request.user)
            except ApplicationError as exc:
                _form_application_error(form, exc)
            else:
                messages.success(request, _("Static list saved with %(n)d clients.")
                                 % {"n": len(numbers)})
                return redirect("segments:segment_detail", code=segment.code)
    return render(request, "segments/static_list_form.html",
                  {"form": form, "segment": segment, "unknown": unknown},
                  status=400 if form.is_bound and form.errors else 200)


@capability_required("segments.manage")
def static_list_options(request):
    """The <option>s of the client list's "Add selected to a static list" (loaded on focus)."""
    lists = Segment.objects.filter(kind=SegmentKind.STATIC, is_active=True).order_by("code")
    return render(request, "segments/_static_list_options.html", {"lists": lists})


@capability_required("segments.manage")
@require_POST
def static_list_add(request):
    """From the client list: add the ticked clients to a static list (new or existing)."""
    from .services import segment_create, segment_static_set

    form = AddToStaticListForm(request.POST)
    back = request.POST.get("next") or reverse("clients:client_list")
    if not back.startswith("/") or back.startswith("//"):
        back = reverse("clients:client_list")
    if not form.is_valid():
        for error in form.non_field_errors() or [_("Choose a static list.")]:
            messages.error(request, error)
        return redirect(back)
    data = form.cleaned_data
    numbers = list(dict.fromkeys(data["client_no"]))
    unknown = _unknown_client_nos(request.user, numbers)
    if unknown:
        messages.error(request, _("%(n)d client numbers are unknown; nothing was saved: %(nos)s")
                       % {"n": len(unknown), "nos": ", ".join(unknown[:50])})
        return redirect(back)
    try:
        segment = data["segment"]
        if segment is not None:
            current = list(SegmentMembership.objects.filter(segment=segment)
                           .values_list("client__client_no", flat=True))
            segment_static_set(segment=segment, client_nos=list(dict.fromkeys(current + numbers)),
                               actor=request.user)
        else:
            name = data["new_name"].strip()
            code = "list-" + timezone.localtime().strftime("%Y%m%d-%H%M%S")
            segment = segment_create(code=code, kind=SegmentKind.STATIC, client_nos=numbers,
                                     actor=request.user, name_zh=name, name_en=name)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect(back)
    messages.success(request, _("%(n)d clients added to %(name)s.")
                     % {"n": len(numbers), "name": segment.name})
    return redirect("segments:segment_detail", code=segment.code)


# --- a segment's page --------------------------------------------------------------------------
def _history(segment: Segment) -> list[dict]:
    rows = list(SegmentRefresh.objects.filter(segment=segment, status=RefreshStatus.SUCCEEDED)
                .exclude(size=None).order_by("-finished_at", "-id")
                .values("finished_at", "created_at", "size", "joined", "left")[:HISTORY_POINTS])
    out = []
    for r in reversed(rows):
        at: datetime = r["finished_at"] or r["created_at"]
        out.append({"at": timezone.localtime(at).strftime("%Y-%m-%d %H:%M"), "size": r["size"],
                    "joined": r["joined"] or 0, "left": r["left"] or 0})
    return out


def _changes(refresh: SegmentRefresh | None, user) -> dict:
    if refresh is None:
        return {"joined": [], "left": []}
    changes = (MembershipChange.objects.filter(refresh=refresh)
               .filter(client_scope_q(user, prefix="client__"))
               .select_related("client").order_by("change", "client__client_no"))
    joined = [c.client for c in changes.filter(change=MembershipChange.JOINED)[:CHANGES_SHOWN]]
    left = [c.client for c in changes.filter(change=MembershipChange.LEFT)[:CHANGES_SHOWN]]
    return {"joined": joined, "left": left}


@capability_required("segments.view")
def segment_detail(request, code: str):
    segment = _segment(code)
    user = request.user
    role = role_of(user)
    members = (client_queryset_for(user).filter(segment_memberships__segment=segment)
               .select_related("rm", "branch", "current_score").order_by("client_no"))
    try:
        number = max(1, int(request.GET.get("page", 1)))
    except (TypeError, ValueError):
        number = 1
    page = _paginate(members, page=number, per_page=MEMBERS_PER_PAGE, whole_table=False)
    context = {"segment": segment, "page": page}
    if _is_htmx(request) and request.GET.get("part") == "members":
        response = render(request, "segments/_members.html", context)
        patch_vary_headers(response, ["HX-Request"])
        return response
    refreshes = SegmentRefresh.objects.filter(segment=segment)
    latest = refreshes.first()
    last_done = refreshes.filter(status=RefreshStatus.SUCCEEDED).first()
    names = _segment_names(rule_segment_codes(segment.rule))
    versions = [{"version": v, "text": rule_text(v.rule, segment_names=names)}
                for v in segment.versions.select_related("created_by")[:VERSIONS_SHOWN]]
    context.update({
        "rule_text": rule_text(segment.rule, segment_names=names),
        "versions": versions,
        "history": _history(segment),
        "chart_labels": {"size": _("Members"), "joined": _("Joined"), "left": _("Left")},
        "last_refresh": last_done,
        "changes": _changes(last_done, user),
        "scoped": role not in ALL_CLIENTS_ROLES,
        "playbook": playbook_for(segment) if segment.kind == SegmentKind.PERSONA else None,
        "can_build": user_can(user, "segments.manage"),
        "can_export": user_can(user, "segments.export"),
        **{f"refresh_{k}": v for k, v in _refresh_context(segment, latest).items()},
    })
    return render(request, "segments/segment_detail.html", context)


@capability_required("segments.view")
def segment_export_view(request, code: str, fmt: str):
    segment = _segment(code)
    if fmt not in FORMATS:
        raise Http404(_("Unknown export format."))
    if not user_can(request.user, "segments.export"):
        return access_denied(request, "segments.export", code)
    try:
        export = segment_export(segment=segment, user=request.user, fmt=fmt)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("segments:segment_detail", code=segment.code)
    if export.streaming:
        response = StreamingHttpResponse(export.content, content_type=export.content_type)
    else:
        response = HttpResponse(export.content, content_type=export.content_type)
    response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    response["X-Export-Rows"] = str(export.rows)
    return response


# --- the persona overview ----------------------------------------------------------------------
def persona_figures(*, user) -> dict:
    """Size, AUM, tier mix and pairwise overlap of the personas, over the clients `user` sees.

    Three GROUP BY queries over SegmentMembership, whatever the number of clients.
    """
    personas = list(Segment.objects.filter(kind=SegmentKind.PERSONA, is_active=True)
                    .order_by("code"))
    ids = [p.pk for p in personas]
    memberships = SegmentMembership.objects.filter(segment_id__in=ids).filter(
        client_scope_q(user, prefix="client__"))
    totals = {row["segment_id"]: row for row in memberships.values("segment_id").annotate(
        n=Count("id"), aum=Sum("client__aum")).order_by()}
    tiers: dict[int, dict[str, int]] = {}
    for row in memberships.values("segment_id", "client__current_score__tier").annotate(
            n=Count("id")).order_by():
        tiers.setdefault(row["segment_id"], {})[row["client__current_score__tier"] or ""] = \
            row["n"]
    overlap: dict[tuple[int, int], int] = {}
    for row in memberships.filter(client__segment_memberships__segment_id__in=ids).values(
            "segment_id", "client__segment_memberships__segment_id").annotate(
            n=Count("id")).order_by():
        overlap[(row["segment_id"], row["client__segment_memberships__segment_id"])] = row["n"]
    tier_keys = [t.value for t in Tier] + [""]
    tier_labels = {**{t.value: str(t.label) for t in Tier}, "": _("Not scored")}
    rows = []
    for p in personas:
        total = totals.get(p.pk, {})
        mix = tiers.get(p.pk, {})
        rows.append({"segment": p, "size": total.get("n", 0), "aum": total.get("aum") or 0,
                     "tiers": [{"key": t or "none", "label": tier_labels[t],
                                "n": mix.get(t, 0)} for t in tier_keys],
                     "playbook": playbook_for(p)})
    matrix = [[i, j, overlap.get((a.pk, b.pk), 0)] for i, a in enumerate(personas)
              for j, b in enumerate(personas)]
    return {"rows": rows, "chart": {"names": [p.name for p in personas], "matrix": matrix,
                                    "title": _("Clients in both personas")}}


@capability_required("segments.view")
def persona_overview(request):
    figures = persona_figures(user=request.user)
    return render(request, "segments/persona_overview.html", {
        **figures, "scoped": role_of(request.user) not in ALL_CLIENTS_ROLES})


# --- the client 360 card -----------------------------------------------------------------------
def client_segments_card(client: Client) -> dict:
    """The "Segments & personas" card: the client's segments by kind, personas with playbooks."""
    memberships = (SegmentMembership.objects.filter(client=client, segment__is_active=True)
                   .select_related("segment").order_by("segment__kind", "segment__code"))
    labels = dict(SegmentKind.choices)
    by_kind: dict[str, list] = {}
    for m in memberships:
        by_kind.setdefault(m.segment.kind, []).append(m.segment)
    groups = [{"kind": kind, "label": labels[kind], "segments": by_kind[kind]}
              for kind in KIND_ORDER if kind in by_kind]
    personas = [{"segment": s, "playbook": playbook_for(s)}
                for s in by_kind.get(SegmentKind.PERSONA, [])]
    return {"segment_groups": groups, "client_personas": personas}
