"""The RM task list (/tasks/): follow-ups such as a client's comment on a newsletter.

Whose tasks: an RM sees the tasks assigned to them; a branch manager those of their branch's
clients; ops, compliance and admins all. Marking one done is a POST from the list or the client
360 page.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from clients.selectors import client_get
from core.access import ALL_CLIENTS_ROLES, role_of
from core.errors import ApplicationError
from core.models import AuditAction, Role
from core.permissions import capability_required
from core.services import audit_record

from .forms import TaskDueForm, TaskForm
from .models import RMTask, TaskSource, TaskStatus
from .services import task_create, task_set_due

PAGE_SIZE = 50
STATUS_FILTERS = ("open", "done", "all")


def task_queryset_for(user) -> QuerySet[RMTask]:
    """The tasks `user` may see and close (the one scoping rule of this page)."""
    role = role_of(user)
    qs = RMTask.objects.all()
    if role in ALL_CLIENTS_ROLES:
        return qs
    if role == Role.BRANCH_MANAGER and user.branch_id:
        return qs.filter(Q(client__branch_id=user.branch_id)
                         | Q(client__isnull=True, assignee__branch_id=user.branch_id))
    if role == Role.RM:
        return qs.filter(assignee=user)
    return qs.none()


def open_tasks_for_client(*, client, user) -> list[RMTask]:
    """The client 360 card: the client's open follow-ups `user` may see."""
    return list(task_queryset_for(user).filter(client=client, status=TaskStatus.OPEN)
                .select_related("assignee").order_by("-created_at")[:20])


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
    return render(request, "campaigns/task_list.html",
                  {"page": page, "status": status, "source": source, "today": timezone.localdate(),
                   "sources": TaskSource.choices, "show_assignee": role_of(request.user)
                   != Role.RM})


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


@transaction.atomic
def _mark_done(task: RMTask) -> None:
    # TODO(lead): move to campaigns/services.py (task_complete) once that module exists.
    task = RMTask.objects.select_for_update().get(pk=task.pk)
    if task.status != TaskStatus.OPEN:
        return
    task.status = TaskStatus.DONE
    task.done_at = timezone.now()
    task.save(update_fields=["status", "done_at", "updated_at"])


@require_POST
@capability_required("tasks.view")
def task_done(request, pk):
    task = task_queryset_for(request.user).select_related("client").filter(pk=pk).first()
    if task is None:
        audit_record(action=AuditAction.ACCESS_DENIED, actor=request.user, object_type="task",
                     object_id=str(pk), request=request)
        raise Http404("No such task.")
    _mark_done(task)
    messages.success(request, _("Marked as done: %(title)s") % {"title": task.title})
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()},
                                                require_https=request.is_secure()):
        return redirect(back)
    return redirect("campaigns:task_list")




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
            return redirect("campaigns:task_list")
    return render(request, "campaigns/task_form.html", {"form": form},
                  status=400 if form.errors else 200)


@require_POST
@capability_required("tasks.view")
def task_due(request, pk):
    task = task_queryset_for(request.user).filter(pk=pk).first()
    if task is None:
        audit_record(action=AuditAction.ACCESS_DENIED, actor=request.user, object_type="task",
                     object_id=str(pk), request=request)
        raise Http404("No such task.")
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
    return redirect("campaigns:task_list")
