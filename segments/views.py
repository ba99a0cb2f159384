"""Pages of segments: the list, the rule builder with a live count, static lists, a segment's
page (rule, versions, size over time, joined/left, members, exports), the persona overview.

Thin edges (DESIGN.md): each view checks its capability (core.permissions), validates, calls
services for writes and segments.selectors for every read (which apply the access-scoping rule
and the one rule for inactive segments), and renders. What is left here is presentation: the
builder's labels, a refresh's percent done, the grouping of the list by kind.
The client 360 card is a template tag (segments/templatetags/segments_cards.py).
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from core.access import ALL_CLIENTS_ROLES, role_of
from core.errors import ApplicationError
from core.pagination import paginate
from core.permissions import access_denied, capability_required, user_can

from .exports import FORMATS, segment_export
from .forms import (
    AddToStaticListForm,
    RuleSegmentForm,
    StaticListForm,
    builder_fields,
    op_labels,
    parse_rule,
    rule_segment_codes,
    rule_text,
)
from .models import RefreshStatus, Segment, SegmentKind, SegmentRefresh
from .selectors import (
    KIND_ORDER,
    persona_figures,
    playbook_for,
    refresh_changes_shown,
    segment_builder_choices,
    segment_get,
    segment_member_client_nos,
    segment_member_rows,
    segment_names,
    segment_refresh_get,
    segment_refresh_last_succeeded,
    segment_refresh_latest,
    segment_refreshes_active,
    segment_size_history,
    segment_versions,
    segment_visible_counts,
    static_lists,
    unknown_client_nos,
)
from .selectors import (
    segment_list as segments_all,
)
from .services import (
    segment_create,
    segment_preview,
    segment_refresh_start,
    segment_static_set,
    segment_update,
)

MEMBERS_PER_PAGE = 25
UNKNOWN_SHOWN = 50


def _is_htmx(request) -> bool:
    return (request.headers.get("HX-Request") == "true"
            and request.headers.get("HX-History-Restore-Request") != "true")


def _refresh_context(segment: Segment, refresh: SegmentRefresh | None) -> dict:
    return {"segment": segment, "refresh": refresh,
            "percent": refresh.percent_done if refresh is not None else 0,
            "active": refresh is not None and refresh.is_active}


# --- the list ----------------------------------------------------------------------------------
@capability_required("segments.view")
def segment_list(request):
    segments = list(segments_all())
    latest = segment_refreshes_active()
    scoped = role_of(request.user) not in ALL_CLIENTS_ROLES
    visible = segment_visible_counts(user=request.user) if scoped else {}
    labels = dict(SegmentKind.choices)
    groups = []
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
    segment = segment_get(code=code)
    error = ""
    refresh = None
    try:
        refresh = segment_refresh_start(segment=segment, actor=request.user, trigger="page")
    except ApplicationError as exc:
        error = exc.message
    if _is_htmx(request):
        refresh = segment_refresh_latest(segment=segment)
        return render(request, "segments/_refresh_status.html",
                      {**_refresh_context(segment, refresh), "error": error})
    if error:
        messages.error(request, error)
    else:
        messages.success(request, _("Refresh started."))
    return redirect("segments:segment_detail", code=segment.code)


@capability_required("segments.manage")
def refresh_status(request, code: str, pk: int):
    segment = segment_get(code=code)
    refresh = segment_refresh_get(refresh_id=pk, segment=segment)
    context = _refresh_context(segment, refresh)
    response = render(request, "segments/_refresh_status.html", context)
    if not context["active"] and refresh.status == RefreshStatus.SUCCEEDED:
        response["HX-Trigger"] = "segment-refreshed"
    return response


# --- the builder -------------------------------------------------------------------------------
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
        "builder": {"fields": builder_fields(**segment_builder_choices(exclude=segment)),
                    "ui": _builder_ui()},
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


def _rule_field_error(form) -> dict | None:
    errors = form.errors.get("rule") if form.is_bound else None
    return {"node": "", "message": " ".join(errors)} if errors else None


@capability_required("segments.manage")
def segment_new(request):
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


@capability_required("segments.manage")
def segment_edit(request, code: str):
    segment = segment_get(code=code)
    if segment.kind == SegmentKind.STATIC:
        return static_list_edit(request, segment)
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
def _unknown_message(unknown: list[str]) -> str:
    message = _("%(n)d client numbers are unknown; nothing was saved: %(nos)s") % {
        "n": len(unknown), "nos": ", ".join(unknown[:UNKNOWN_SHOWN])}
    more = len(unknown) - UNKNOWN_SHOWN
    if more > 0:
        message += " " + _("and %(n)d more.") % {"n": more}
    return message


@capability_required("segments.manage")
def static_list_new(request):
    form = StaticListForm(request.POST or None, request.FILES or None)
    unknown: list[str] = []
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        unknown = unknown_client_nos(user=request.user, numbers=data["numbers"])
        if unknown:
            form.add_error(None, _unknown_message(unknown))
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
    form = StaticListForm(request.POST or None, request.FILES or None,
                          initial={k: getattr(segment, k) for k in ("name_zh", "name_en")})
    del form.fields["code"]
    for name in ("name_zh", "name_en", "description_zh", "description_en"):
        form.fields[name].required = False
    unknown: list[str] = []
    if request.method == "POST" and form.is_valid():
        numbers = form.cleaned_data["numbers"]
        unknown = unknown_client_nos(user=request.user, numbers=numbers)
        if unknown:
            form.add_error(None, _unknown_message(unknown))
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
    return render(request, "segments/_static_list_options.html", {"lists": static_lists()})


@capability_required("segments.manage")
@require_POST
def static_list_add(request):
    """From the client list: add the ticked clients to a static list (new or existing)."""
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
    unknown = unknown_client_nos(user=request.user, numbers=numbers)
    if unknown:
        messages.error(request, _("%(n)d client numbers are unknown; nothing was saved: %(nos)s")
                       % {"n": len(unknown), "nos": ", ".join(unknown[:UNKNOWN_SHOWN])})
        return redirect(back)
    try:
        segment = data["segment"]
        if segment is not None:
            current = segment_member_client_nos(segment=segment)
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
@capability_required("segments.view")
def segment_detail(request, code: str):
    segment = segment_get(code=code)
    user = request.user
    try:
        number = max(1, int(request.GET.get("page", 1)))
    except (TypeError, ValueError):
        number = 1
    page = paginate(segment_member_rows(segment=segment, user=user), page=number,
                    per_page=MEMBERS_PER_PAGE, whole_table=False)
    context = {"segment": segment, "page": page}
    if _is_htmx(request) and request.GET.get("part") == "members":
        response = render(request, "segments/_members.html", context)
        patch_vary_headers(response, ["HX-Request"])
        return response
    last_done = segment_refresh_last_succeeded(segment=segment)
    names = segment_names(codes=rule_segment_codes(segment.rule))
    context.update({
        "rule_text": rule_text(segment.rule, segment_names=names),
        "versions": [{"version": v, "text": rule_text(v.rule, segment_names=names)}
                     for v in segment_versions(segment=segment)],
        "history": segment_size_history(segment=segment),
        "chart_labels": {"size": _("Members"), "joined": _("Joined"), "left": _("Left")},
        "last_refresh": last_done,
        "changes": refresh_changes_shown(refresh=last_done, user=user),
        "scoped": role_of(user) not in ALL_CLIENTS_ROLES,
        "playbook": playbook_for(segment) if segment.kind == SegmentKind.PERSONA else None,
        "can_build": user_can(user, "segments.manage"),
        "can_export": user_can(user, "segments.export"),
        **{f"refresh_{k}": v for k, v in _refresh_context(
            segment, segment_refresh_latest(segment=segment)).items()},
    })
    return render(request, "segments/segment_detail.html", context)


@capability_required("segments.view")
def segment_export_view(request, code: str, fmt: str):
    segment = segment_get(code=code)
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
@capability_required("segments.view")
def persona_overview(request):
    return render(request, "segments/persona_overview.html", {
        **persona_figures(user=request.user),
        "scoped": role_of(request.user) not in ALL_CLIENTS_ROLES})
