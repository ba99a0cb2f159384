"""The RM task list (/tasks/): follow-ups such as a client's comment on a newsletter.

Whose tasks: an RM sees the tasks assigned to them; a branch manager those of their branch's
clients; ops, compliance and admins all. Marking one done is a POST from the list or the client
360 page.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from clients.selectors import client_get
from core.access import role_of
from core.errors import ApplicationError
from core.models import Role
from core.permissions import capability_required

from .forms import TaskDueForm, TaskForm, TaskOutcomeForm
from .models import ALL_CHANNELS, Channel, RMTask, TaskOutcome, TaskSource, TaskStatus
from .selectors import (
    call_context,
    contact_policy_get,
    reassign_choices,
    task_get,
    task_queryset_for,
)
from .services import (
    contact_policy_set,
    task_complete,
    task_create,
    task_follow_up_create,
    task_reassign,
    task_set_due,
    task_update,
)

PAGE_SIZE = 50
STATUS_FILTERS = ("open", "done", "all")


def _local_next(request) -> str:
    """The page to go back to, when the form named one on this site."""
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()},
                                                require_https=request.is_secure()):
        return back
    return ""


@capability_required("tasks.view")
def task_list(request):
    status = request.GET.get("status", "open")
    if status not in STATUS_FILTERS:
        status = "open"
    source = request.GET.get("source", "")
    if source not in TaskSource.values:
        source = ""
    tasks = task_queryset_for(request.user).select_related("client", "assignee")
    if status != "all":
        tasks = tasks.filter(status=status)
    if source:
        tasks = tasks.filter(source=source)
    page = Paginator(tasks.order_by("-created_at", "-id"), PAGE_SIZE).get_page(
        request.GET.get("page"))
    context = call_context(tasks=page.object_list)
    for task in page.object_list:
        task.call_context = context.get(task.client_id)
    return render(request, "outreach/task_list.html",
                  {"page": page, "status": status, "source": source, "today": timezone.localdate(),
                   "sources": TaskSource.choices, "outcomes": TaskOutcome.choices,
                   "show_assignee": role_of(request.user) != Role.RM,
                   "team": reassign_choices(user=request.user)})


@require_POST
@capability_required("tasks.oversee")
def task_reassign_view(request, pk):
    task = task_get(user=request.user, pk=pk)
    assignee = next((u for u in reassign_choices(user=request.user)
                     if str(u.pk) == request.POST.get("assignee", "")), None)
    try:
        task_reassign(task=task, assignee=assignee, actor=request.user)
        messages.success(request, _("Handed to %(rm)s: %(title)s")
                         % {"rm": assignee, "title": task.title})
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect(_local_next(request)
                    or f"{reverse('outreach:task_list')}?{request.GET.urlencode()}")


@capability_required("tasks.view")
def task_badge(request):
    """The open-task count beside "My tasks" in the navigation: one COUNT on the
    (assignee, status) index."""
    n = RMTask.objects.filter(assignee=request.user, status=TaskStatus.OPEN).count()
    body = f'<span class="badge rounded-pill text-bg-warning" id="task-count">{n}</span>' if n \
        else '<span id="task-count"></span>'
    response = HttpResponse(body)
    response["Cache-Control"] = "private, no-store"
    return response


@require_POST
@capability_required("tasks.view")
def task_done(request, pk):
    task = task_get(user=request.user, pk=pk)
    task_complete(task=task)
    messages.success(request, _("Marked as done: %(title)s") % {"title": task.title})
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()},
                                                require_https=request.is_secure()):
        return redirect(back)
    return redirect("outreach:task_list")




# --- an RM's own tasks: new ones, and moving a due date --------------------------------------
@capability_required("tasks.view")
def task_new(request):
    """A task the user sets themself; a client, if named, must be one they may see (else the
    access rule's audited 404)."""
    form = TaskForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        client = client_get(user=request.user, client_no=data["client_no"]) \
            if data["client_no"] else None
        try:
            task = task_create(assignee=request.user, client=client, title=data["title"],
                               due_on=data["due_on"], detail=data["detail"])
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("Task added: %(title)s") % {"title": task.title})
            return redirect("outreach:task_list")
    return render(request, "outreach/task_form.html", {"form": form},
                  status=400 if form.errors else 200)


@require_POST
@capability_required("tasks.view")
def task_due(request, pk):
    task = task_get(user=request.user, pk=pk)
    form = TaskDueForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Enter a date written YYYY-MM-DD."))
    else:
        try:
            task_set_due(task=task, due_on=form.cleaned_data["due_on"])
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("New due date for %(title)s") % {"title": task.title})
    return redirect("outreach:task_list")


class TaskOutcomeFollowUpForm(TaskOutcomeForm):
    """The outcome with, optionally, the date of the next follow-up (a new task)."""

    follow_up_on = forms.DateField(label=gettext_lazy("Next follow-up on"), required=False,
                                   widget=forms.DateInput(attrs={"type": "date"}))


@require_POST
@capability_required("tasks.view")
def task_outcome(request, pk):
    """What came of it, in two clicks: an outcome (and a note) closes the task, except "no
    answer", which keeps it open for another try; "do not call" also turns phone consent off.
    A "next follow-up on" date puts a new task for that day on the RM's list
    (services.task_follow_up_create) and closes this one, whatever the outcome: the new task is
    the next try. `next` (a page of this site, e.g. the home page's task panel) is where to go
    afterwards."""
    task = task_get(user=request.user, pk=pk)
    form = TaskOutcomeFollowUpForm(request.POST)
    back = _local_next(request) or reverse("outreach:task_list")
    if not form.is_valid():
        if "follow_up_on" in form.errors:
            messages.error(request, _("Enter the next follow-up date written YYYY-MM-DD."))
        else:
            messages.error(request, _("Choose an outcome (and keep the note under 2,000 "
                                      "characters)."))
        return redirect(back)
    outcome = form.cleaned_data["outcome"]
    follow_up_on = form.cleaned_data.get("follow_up_on")
    status = TaskStatus.OPEN if outcome == TaskOutcome.NO_ANSWER and not follow_up_on \
        else TaskStatus.DONE
    try:
        with transaction.atomic():
            task_update(task=task, actor=request.user, status=status, outcome=outcome,
                        note=form.cleaned_data["note"])
            if follow_up_on:
                task_follow_up_create(task=task, actor=request.user, due_on=follow_up_on,
                                      note=form.cleaned_data["note"])
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Outcome recorded for %(title)s: %(outcome)s")
                         % {"title": task.title, "outcome": TaskOutcome(outcome).label})
        if follow_up_on:
            messages.info(request, _("Next follow-up on %(date)s.")
                          % {"date": follow_up_on.isoformat()})
    return redirect(back)


# --- the contact policy (ops) ---------------------------------------------------------------

POLICY_CAP_SLOTS = 6


def _policy_from_post(post) -> dict:
    caps = []
    for i in range(POLICY_CAP_SLOTS):
        channel = post.get(f"cap-{i}-channel", "")
        if not channel:
            continue
        caps.append({"channel": channel,
                     "max_contacts": _whole(post.get(f"cap-{i}-max_contacts")),
                     "window_days": _whole(post.get(f"cap-{i}-window_days"))})
    return {"caps": caps, "quiet_hours": {"start": post.get("quiet-start", ""),
                                          "end": post.get("quiet-end", ""),
                                          "channels": post.getlist("quiet-channels")}}


def _whole(value):
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return value


@capability_required("contact_policy.manage")
def contact_policy_page(request):
    """Ops edit the caps and quiet hours every campaign (and the newsletters' count) obey."""
    errors, status = {}, 200
    if request.method == "POST":
        policy = _policy_from_post(request.POST)
        try:
            contact_policy_set(data=policy, actor=request.user)
            messages.success(request, _("Contact policy saved."))
            return redirect("contact_policy")
        except ApplicationError as exc:
            errors, status = exc.fields, 400
            messages.error(request, exc.message)
    else:
        policy = contact_policy_get()
    caps = list(policy["caps"]) + [{"channel": "", "max_contacts": "", "window_days": ""}] * (
        POLICY_CAP_SLOTS - len(policy["caps"]))
    return render(request, "outreach/contact_policy.html", {
        "caps": [{**cap, "index": i, "errors": [m for k, v in errors.items()
                                                if k.startswith(f"caps[{i}]") for m in v]}
                 for i, cap in enumerate(caps[:POLICY_CAP_SLOTS])],
        "quiet": policy["quiet_hours"], "errors": errors,
        "channels": [(ALL_CHANNELS, _("All channels together")), *Channel.choices],
        "quiet_channels": Channel.choices,
        "updated_at": policy.get("updated_at")}, status=status)
