"""Staff pages of newsletters: publications, the edition editor, preview as a client,
approval, sending controls and statistics. Thin: validate, call a service or selector, render.

Who does what: ops and admins compose and send; compliance (and admins) approve; all three read.
Anyone else gets a 403 that is itself written to the audit log.
"""

from __future__ import annotations

from collections import defaultdict

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_POST

from clients.models import Product, ProductType
from clients.selectors import client_search
from core.errors import ApplicationError
from core.models import percent_of
from core.permissions import access_denied, capability_required, user_can
from outreach.models import ForbiddenPhrase
from segments.selectors import segment_members

from . import compliance, rendering, selectors, services
from .approval import APPROVAL_HELD, describe_changes
from .forms import (
    ApproveForm,
    EditionEditor,
    PhraseForm,
    PublicationForm,
    RejectForm,
    ScheduleForm,
)
from .models import (
    Edition,
    EditionStatus,
    ExclusionReason,
    Publication,
    SectionKind,
)

EDITABLE = (EditionStatus.DRAFT, EditionStatus.REJECTED)
# An approved or scheduled edition can be changed too; a change sends it back to draft.
CHANGEABLE = (*EDITABLE, *APPROVAL_HELD)
PICKER_LIMIT = 20
COMMENTS_SHOWN = 20
PREVIEW_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; " \
              "frame-ancestors 'self'"


def _publication(slug: str) -> Publication:
    publication = Publication.objects.select_related("audience").filter(slug=slug).first()
    if publication is None:
        raise Http404("No such publication.")
    return publication


def _edition(pk: int) -> Edition:
    edition = (Edition.objects.select_related("publication__audience", "author", "approved_by")
               .filter(pk=pk).first())
    if edition is None:
        raise Http404("No such edition.")
    return edition


def _fail(request, exc: ApplicationError) -> None:
    messages.error(request, exc.message)


def _roles(user) -> dict:
    return {"can_compose": user_can(user, "newsletters.compose"),
            "can_approve": user_can(user, "newsletters.approve")}


# --- publications --------------------------------------------------------------------------
@capability_required("newsletters.read")
def publication_list(request):
    publications = (Publication.objects.select_related("audience")
                    .annotate(editions_total=Count("editions"),
                              editions_waiting=Count("editions", filter=Q(
                                  editions__status=EditionStatus.SUBMITTED)))
                    .order_by("name"))
    waiting = Edition.objects.filter(status=EditionStatus.SUBMITTED).count()
    return render(request, "newsletters/publication_list.html",
                  {"publications": publications, "waiting": waiting, **_roles(request.user)})


@capability_required("newsletters.compose")
def publication_create(request):
    return _publication_form(request, None)


@capability_required("newsletters.compose")
def publication_edit(request, slug):
    return _publication_form(request, _publication(slug))


def _publication_form(request, publication: Publication | None):
    form = PublicationForm(request.POST or None, instance=publication)
    if request.method == "POST" and form.is_valid():
        data = {k: form.cleaned_data[k] for k in form.Meta.fields}
        try:
            if publication is None:
                publication = services.publication_create(actor=request.user, **data)
                messages.success(request, _("The publication was created."))
            else:
                publication = services.publication_update(publication=publication,
                                                          actor=request.user, **data)
                messages.success(request, _("The publication was saved."))
        except ApplicationError as exc:
            for name, errors in exc.fields.items():
                form.add_error(name if name in form.fields else None, errors)
            if not exc.fields:
                form.add_error(None, exc.message)
        else:
            return redirect("newsletters:edition_list", slug=publication.slug)
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "newsletters/publication_form.html",
                  {"form": form, "publication": publication}, status=status)


# --- editions ------------------------------------------------------------------------------
@capability_required("newsletters.read")
def edition_list(request, slug):
    publication = _publication(slug)
    editions = publication.editions.select_related("author").order_by("-number")
    return render(request, "newsletters/edition_list.html",
                  {"publication": publication, "editions": editions, "editable": EDITABLE,
                   **_roles(request.user)})


def _editor_context(editor: EditionEditor, *, publication, edition=None) -> dict:
    products = list(Product.objects.filter(is_active=True).order_by("risk_level", "product_code")
                    .values("product_code", "name", "risk_level", "product_type"))
    issues = (compliance.content_compliance_issues(subject=editor.subject,
                                                   preheader=editor.preheader,
                                                   sections=editor.sections())
              if editor.blocks or editor.subject else [])
    return {"editor": editor, "publication": publication, "edition": edition,
            "products": products, "product_types": ProductType.choices,
            "kinds": SectionKind.choices, "issues": issues,
            "issue_rows": _issue_rows(issues, _content_texts(editor)),
            "blocks_with_issues": {i["section_position"] for i in issues}}


@capability_required("newsletters.compose")
def edition_create(request, slug):
    publication = _publication(slug)
    if request.method != "POST":
        editor = EditionEditor.new()
        return render(request, "newsletters/edition_editor.html",
                      _editor_context(editor, publication=publication))
    editor = EditionEditor.from_post(request.POST)
    op = request.POST.get("op", "")
    if op:
        editor.apply(op)
        return render(request, "newsletters/edition_editor.html",
                      _editor_context(editor, publication=publication))
    if editor.is_valid():
        try:
            edition = services.edition_create(publication=publication,
                                              subject=editor.subject.strip(),
                                              preheader=editor.preheader.strip(),
                                              sections=editor.sections(), author=request.user)
        except ApplicationError as exc:
            editor.add_service_errors(exc)
        else:
            messages.success(request, _("The edition was saved as a draft."))
            return redirect("newsletters:edition_edit", pk=edition.pk)
    return render(request, "newsletters/edition_editor.html",
                  _editor_context(editor, publication=publication), status=400)


@capability_required("newsletters.compose")
def edition_edit(request, pk):
    edition = _edition(pk)
    publication = edition.publication
    if edition.status not in CHANGEABLE:
        messages.info(request, _("Only a draft or a rejected edition can be edited."))
        return redirect("newsletters:edition_detail", pk=edition.pk)
    if request.method != "POST":
        editor = EditionEditor.for_edition(edition)
        return render(request, "newsletters/edition_editor.html",
                      _editor_context(editor, publication=publication, edition=edition))
    editor = EditionEditor.from_post(request.POST)
    op = request.POST.get("op", "")
    if op:
        editor.apply(op)
        return render(request, "newsletters/edition_editor.html",
                      _editor_context(editor, publication=publication, edition=edition))
    if editor.is_valid():
        try:
            services.edition_update(edition=edition, subject=editor.subject.strip(),
                                    preheader=editor.preheader.strip(),
                                    sections=editor.sections(), actor=request.user)
        except ApplicationError as exc:
            editor.add_service_errors(exc)
        else:
            messages.success(request, _("Saved."))
            return redirect("newsletters:edition_edit", pk=edition.pk)
    return render(request, "newsletters/edition_editor.html",
                  _editor_context(editor, publication=publication, edition=edition), status=400)


# --- compliance panel ----------------------------------------------------------------------
def _data_value(data, path: str):
    """The string at a path such as "data.notes.P001" or "data.product_codes[0]"."""
    import re

    value = data
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path.removeprefix("data").lstrip(".")):
        if part.startswith("["):
            idx = int(part[1:-1])
            value = value[idx] if isinstance(value, list) and idx < len(value) else None
        else:
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            return ""
    return value if isinstance(value, str) else ""


def _content_texts(source) -> callable:
    """A lookup (position, field) -> the text the compliance check scanned."""
    if isinstance(source, EditionEditor):
        subject, preheader = source.subject, source.preheader
        sections = {s["position"]: s for s in source.sections()}
    else:
        subject, preheader = source.subject, source.preheader
        sections = {s.position: {"title": s.title, "body": s.body, "data": s.data,
                                 "kind": s.kind}
                    for s in source.sections.all()}

    def text(position, field: str) -> tuple[str, str]:
        if position is None:
            return (subject if field == "subject" else preheader), ""
        section = sections.get(position) or {}
        kind = section.get("kind", "")
        if field in ("title", "body"):
            return section.get(field) or "", kind
        return _data_value(section.get("data") or {}, field), kind

    return text


FIELD_LABELS = {"subject": _("Subject"), "preheader": _("Preheader"), "title": _("Title"),
                "body": _("Text")}


def _issue_rows(issues: list[dict], text_of) -> list[dict]:
    grouped: dict = defaultdict(list)
    for issue in issues:
        grouped[(issue["section_position"], issue["field"])].append(issue)
    rows = []
    for (position, field), matches in sorted(grouped.items(),
                                             key=lambda kv: (kv[0][0] or 0, kv[0][1])):
        text, kind = text_of(position, field)
        rows.append({"position": position, "field": field,
                     "field_label": _(FIELD_LABELS[field]) if field in FIELD_LABELS else field,
                     "kind_label": SectionKind(kind).label if kind in SectionKind.values else "",
                     "phrases": sorted({m["phrase"] for m in matches}),
                     "highlighted": compliance.highlight(text, matches)})
    return rows


def _compliance_context(edition: Edition) -> dict:
    issues = compliance.edition_compliance_issues(edition=edition)
    return {"issues": issues, "issue_rows": _issue_rows(issues, _content_texts(edition))}


# --- the edition page: review, actions, timeline --------------------------------------------
def _preview_client(request, edition: Edition):
    """The client to preview as: ?client=<client_no> if in the audience (and visible), else the
    first member of the audience."""
    members = segment_members(segment=edition.publication.audience, user=request.user)
    client_no = (request.GET.get("client") or "").strip()[:32]
    client = None
    if client_no:
        client = members.filter(client_no=client_no).first()
        if client is None:
            messages.warning(request, _("%(no)s is not a client of this edition's audience.")
                             % {"no": client_no})
    return client or members.order_by("client_no").first()


def _render(edition, client):
    if client is None:
        return None, None
    try:
        return rendering.render_preview(edition=edition, client=client), None
    except ApplicationError as exc:
        return None, exc.message


def _label(status: str) -> str:
    return EditionStatus(status).label if status in EditionStatus.values else status


def _is_revocation(ev) -> bool:
    return ev.from_status in APPROVAL_HELD and ev.to_status == EditionStatus.DRAFT


def _revocation_reason(comment: str) -> str:
    """The stored paths ("sender_name, products.P001") in the reader's language."""
    return _("Approval withdrawn: changed %(what)s.") % {
        "what": describe_changes([p for p in comment.split(", ") if p])}


def _events(edition: Edition) -> list[dict]:
    return [{"at": ev.at, "actor": ev.actor, "to_status": ev.to_status,
             "comment": _revocation_reason(ev.comment) if _is_revocation(ev) else ev.comment,
             "to_label": _label(ev.to_status), "from_status": ev.from_status,
             "from_label": _label(ev.from_status)}
            for ev in selectors.edition_events(edition=edition).order_by("at", "id")]


def _approval_context(edition: Edition, events: list[dict]) -> dict:
    """The sections with each picked product as the reviewer approves it (name, risk level;
    `s.picked` = [(code, product or None)]) and, for a draft whose approval a change
    withdrew, why."""
    sections = list(edition.sections.all().order_by("position"))
    codes = [str(c) for s in sections if s.kind == SectionKind.PICKS
             for c in (s.data or {}).get("product_codes") or []]
    codes += [str(c) for s in sections if s.kind == SectionKind.HOLDINGS
              for c in (s.data or {}).get("notes_by_product") or {}]
    products = {p.product_code: p for p in Product.objects.filter(product_code__in=codes)}
    type_labels = dict(ProductType.choices)
    for s in sections:
        if s.kind == SectionKind.PICKS:
            s.picked = [(str(c), products.get(str(c)))
                        for c in (s.data or {}).get("product_codes") or []]
            s.pick_notes = [(str(c), products.get(str(c)), note)
                            for c, note in ((s.data or {}).get("notes") or {}).items()]
        if s.kind == SectionKind.HOLDINGS:
            data = s.data or {}
            s.product_notes = [(str(c), products.get(str(c)), note)
                               for c, note in (data.get("notes_by_product") or {}).items()]
            s.type_notes = [(type_labels.get(t, t), note)
                            for t, note in (data.get("notes_by_type") or {}).items()]
    last = events[-1] if events else None
    revoked = (last["comment"] if last and edition.status == EditionStatus.DRAFT
               and last["from_status"] in APPROVAL_HELD else "")
    return {"sections": sections, "revoked_reason": revoked}


@capability_required("newsletters.read")
def edition_detail(request, pk):
    edition = _edition(pk)
    user = request.user
    client = _preview_client(request, edition)
    rendered, render_error = _render(edition, client)
    is_author = edition.author_id == user.pk
    status = edition.status
    can_compose = user_can(user, "newsletters.compose")
    events = _events(edition)
    context = {
        "edition": edition, "publication": edition.publication, "client": client,
        "rendered": rendered, "render_error": render_error,
        "events": events, **_approval_context(edition, events),
        "is_author": is_author,
        "show_approve": user_can(user, "newsletters.approve") and status == EditionStatus.SUBMITTED,
        "can_edit": can_compose and status in CHANGEABLE,
        "can_submit": can_compose and status in EDITABLE,
        "can_schedule": can_compose and status in (EditionStatus.APPROVED,
                                                    EditionStatus.SCHEDULED),
        "can_send": can_compose and status in (EditionStatus.APPROVED, EditionStatus.SCHEDULED),
        "can_pause": can_compose and status == EditionStatus.SENDING,
        "can_resume": can_compose and status == EditionStatus.PAUSED,
        "can_cancel": can_compose and status in (EditionStatus.SCHEDULED, EditionStatus.SENDING,
                                                 EditionStatus.PAUSED),
        "reject_form": RejectForm(), "approve_form": ApproveForm(),
        "schedule_form": ScheduleForm(initial={"at": edition.scheduled_at}),
        **_compliance_context(edition), **_roles(user),
    }
    return render(request, "newsletters/edition_detail.html", context)


@capability_required("newsletters.approve")
def approval_queue(request):
    editions = (Edition.objects.filter(status=EditionStatus.SUBMITTED)
                .select_related("publication", "author").order_by("updated_at"))
    return render(request, "newsletters/approval_queue.html", {"editions": editions})


ACTIONS = {
    # action: (capability, service name)
    "submit": ("newsletters.compose", "edition_submit"),
    "approve": ("newsletters.approve", "edition_approve"),
    "reject": ("newsletters.approve", "edition_reject"),
    "schedule": ("newsletters.compose", "edition_schedule"),
    "send_now": ("newsletters.compose", "edition_send_now"),
    "pause": ("newsletters.compose", "edition_pause"),
    "resume": ("newsletters.compose", "edition_resume"),
    "cancel": ("newsletters.compose", "edition_cancel"),
}
DONE_MESSAGES = {
    "submit": _("Submitted for approval."),
    "approve": _("Approved."),
    "reject": _("Rejected; the author can edit it again."),
    "schedule": _("Scheduled."),
    "send_now": _("Sending has started."),
    "pause": _("Paused."),
    "resume": _("Resumed."),
    "cancel": _("Cancelled."),
}


@require_POST
@login_required
def edition_action(request, pk, action):
    if action not in ACTIONS:
        raise Http404("No such action.")
    capability, service_name = ACTIONS[action]
    if not user_can(request.user, capability):
        return access_denied(request, capability, pk)
    edition = _edition(pk)
    kwargs = {"edition": edition, "actor": request.user}
    if action == "reject":
        form = RejectForm(request.POST)
        if not form.is_valid():
            messages.error(request, _("A rejection needs a comment: say what needs to change."))
            return redirect(reverse("newsletters:edition_detail", args=[pk]) + "#review")
        kwargs["comment"] = form.cleaned_data["comment"]
    elif action == "schedule":
        form = ScheduleForm(request.POST)
        if not form.is_valid():
            messages.error(request, _("Choose a date and time to send at."))
            return redirect(reverse("newsletters:edition_detail", args=[pk]) + "#send")
        kwargs["at"] = form.cleaned_data["at"]
    elif action == "approve":
        form = ApproveForm(request.POST)
        if form.is_valid():
            kwargs["comment"] = form.cleaned_data["comment"]
            kwargs["content_version"] = form.cleaned_data["content_version"]
    try:
        getattr(services, service_name)(**kwargs)
    except ApplicationError as exc:
        _fail(request, exc)
    else:
        messages.success(request, DONE_MESSAGES[action])
    if action == "submit" and request.POST.get("from") == "editor":
        edition.refresh_from_db(fields=["status"])
        if edition.status in EDITABLE:
            return redirect("newsletters:edition_edit", pk=pk)
    if action == "send_now":
        return redirect("newsletters:edition_stats", pk=pk)
    return redirect("newsletters:edition_detail", pk=pk)


# --- preview -------------------------------------------------------------------------------
@capability_required("newsletters.read")
def edition_preview(request, pk):
    edition = _edition(pk)
    client = _preview_client(request, edition)
    rendered, render_error = _render(edition, client)
    return render(request, "newsletters/edition_preview.html",
                  {"edition": edition, "publication": edition.publication, "client": client,
                   "rendered": rendered, "render_error": render_error,
                   "audience_empty": client is None, **_roles(request.user)})


@capability_required("newsletters.read")
def preview_clients(request, pk):
    """The client picker's matches (an htmx fragment): members of the audience the user may see,
    by client number or name prefix."""
    edition = _edition(pk)
    members = segment_members(segment=edition.publication.audience, user=request.user)
    q = (request.GET.get("q") or "").strip()[:50]
    matches = list(client_search(members, q).order_by("client_no")[:PICKER_LIMIT]) if q else []
    return render(request, "newsletters/_preview_clients.html",
                  {"edition": edition, "matches": matches, "q": q})


@xframe_options_sameorigin
@capability_required("newsletters.read")
def preview_html(request, pk):
    """The email's HTML on its own, for the sandboxed iframe: nothing in it may load or run."""
    edition = _edition(pk)
    client_no = (request.GET.get("client") or "").strip()[:32]
    members = segment_members(segment=edition.publication.audience, user=request.user)
    client = members.filter(client_no=client_no).first() if client_no else None
    if client is None:
        raise Http404("No such client in the audience.")
    rendered, error = _render(edition, client)
    body = rendered.html if rendered is not None else f"<p>{error}</p>"
    response = HttpResponse(body, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = PREVIEW_CSP
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@capability_required("newsletters.read")
def send_test(request, pk):
    edition = _edition(pk)
    back = reverse("newsletters:edition_preview", args=[pk])
    client = _preview_client(request, edition) if request.POST.get("client") is None else (
        segment_members(segment=edition.publication.audience, user=request.user)
        .filter(client_no=request.POST.get("client", "")[:32]).first())
    if client is not None:
        back += f"?client={client.client_no}"
    if not request.user.email:
        messages.error(request, _("Your account has no email address: ask an administrator to "
                                  "add one, then send the test again."))
        return redirect(back)
    if client is None:
        messages.error(request, _("Choose a client of the audience to send the test as."))
        return redirect(back)
    try:
        services.edition_send_test(edition=edition, actor=request.user, client=client)
    except ApplicationError as exc:
        _fail(request, exc)
    else:
        messages.success(request, _("A test was sent to %(email)s.") % {
            "email": request.user.email})
    return redirect(back)


# --- statistics ----------------------------------------------------------------------------
def _progress(edition: Edition, stats: dict) -> dict:
    sent = int(stats.get("sent") or 0)
    failed = int(stats.get("failed") or 0)
    total = int(stats.get("recipients") or stats.get("total") or 0)
    done = sent + failed
    return {"sent": sent, "failed": failed, "total": total, "done": done,
            "percent": (percent_of(done, total) if total
                        else 100 if edition.status == EditionStatus.SENT else 0),
            "polling": edition.status == EditionStatus.SENDING}


@capability_required("newsletters.read")
def edition_stats(request, pk):
    edition = _edition(pk)
    stats = selectors.edition_stats(edition)
    comments = _comments(edition, request.user)
    chart = _chart_data(stats)
    tiles = [(key, label, stats.get(key) or 0) for key, label in (
        ("audience", _("Audience")), ("excluded_total", _("Left out")), ("sent", _("Sent")),
        ("failed", _("Failed")), ("opened", pgettext("email statistic", "Opened")),
        ("clicked", _("Clicked")),
        ("rated", _("Rated")), ("comments", _("Comments")), ("unsubscribes", _("Unsubscribed")))]
    excluded = [(key, label, (stats.get("excluded") or {}).get(key, 0))
                for key, label in ExclusionReason.choices]
    return render(request, "newsletters/edition_stats.html",
                  {"edition": edition, "publication": edition.publication, "stats": stats,
                   "progress": _progress(edition, stats), "chart": chart, "tiles": tiles,
                   "excluded": excluded,
                   "ratings": [(int(n), count) for n, count in stats["ratings"].items()],
                   "comments": comments, **_roles(request.user)})


@capability_required("newsletters.read")
def edition_progress(request, pk):
    edition = _edition(pk)
    stats = selectors.edition_stats(edition)
    return render(request, "newsletters/_progress.html",
                  {"edition": edition, "progress": _progress(edition, stats)})


def _comments(edition: Edition, user):
    from clients.selectors import client_queryset_for

    from .models import Feedback

    visible = client_queryset_for(user).values("pk")
    return list(Feedback.objects.filter(delivery__in=edition.deliveries)
                .exclude(comment="").filter(delivery__client__in=visible)
                .select_related("delivery__client").order_by("-created_at")[:COMMENTS_SHOWN])


def _chart_data(stats: dict) -> dict:
    distribution = stats.get("ratings") or {}
    return {
        "funnel": [{"key": k, "name": str(label), "value": int(stats.get(k) or 0)}
                   for k, label in (("audience", _("Audience")), ("sent", _("Sent")),
                                    ("opened", pgettext("email statistic", "Opened")),
                                    ("clicked", _("Clicked")),
                                    ("rated", _("Rated")), ("comments", _("Comments")))],
        "ratings": [int(distribution.get(r, distribution.get(str(r), 0)) or 0)
                    for r in range(1, 6)],
        "labels": {"funnel_title": _("From audience to response"),
                   "ratings_title": _("Ratings"), "clients": _("Clients"),
                   "rating": _("Rating")},
    }


# --- forbidden phrases ---------------------------------------------------------------------
@capability_required("newsletters.read")
def phrase_list(request):
    """Everyone who reads newsletters sees the list; only compliance (and admins) change it."""
    if request.method == "POST" and not user_can(request.user, "newsletters.phrases"):
        return access_denied(request, "newsletters.phrases", object_type="forbidden_phrase")
    form = PhraseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.forbidden_phrase_add(phrase=form.cleaned_data["phrase"], actor=request.user)
        except ApplicationError as exc:
            form.add_error("phrase", exc.message)
        else:
            messages.success(request, _("The phrase was added."))
            return redirect("newsletters:phrase_list")
    phrases = ForbiddenPhrase.objects.select_related("created_by").order_by("phrase")
    return render(request, "newsletters/phrase_list.html",
                  {"form": form, "phrases": phrases,
                   "builtin": compliance.BUILTIN_PHRASES,
                   "can_edit_phrases": user_can(request.user, "newsletters.phrases")},
                  status=400 if form.is_bound and form.errors else 200)


@require_POST
@capability_required("newsletters.phrases")
def phrase_remove(request, pk):
    phrase = ForbiddenPhrase.objects.filter(pk=pk).first()
    if phrase is None:
        raise Http404("No such phrase.")
    try:
        services.forbidden_phrase_remove(phrase=phrase, actor=request.user)
    except ApplicationError as exc:
        _fail(request, exc)
    else:
        messages.success(request, _("The phrase was removed."))
    return redirect("newsletters:phrase_list")
