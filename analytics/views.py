"""The home page (`/`): an RM's day, a branch manager's team; other roles go on to the client
list, as before. The panels are read by analytics.home; outcomes and hand-overs post to the
task views of outreach, which send the browser back here."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _

from core.access import role_of
from core.models import Role
from outreach.models import TaskOutcome

from . import home

# The outcomes one click records from the home page; the others are one click away in a menu.
QUICK_OUTCOMES = (TaskOutcome.REACHED, TaskOutcome.NO_ANSWER, TaskOutcome.INTERESTED,
                  TaskOutcome.BOUGHT)


def _is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _tasks_context(user, today) -> dict:
    return {"due": home.rm_tasks_due(user=user, today=today), "today": today,
            "quick_outcomes": [(o.value, o.label) for o in QUICK_OUTCOMES],
            "more_outcomes": [(o.value, o.label) for o in TaskOutcome
                              if o not in QUICK_OUTCOMES]}


@login_required
def home_page(request):
    role = role_of(request.user)
    today = timezone.localdate()
    if role == Role.RM:
        return render(request, "analytics/home_rm.html", {
            **_tasks_context(request.user, today),
            "book": home.book_figures(user=request.user, today=today),
            "scenarios": home.scenario_newcomers(user=request.user),
            "tiers": home.tier_moves(user=request.user)})
    if role == Role.BRANCH_MANAGER:
        team = home.team_figures(user=request.user, today=today)
        chart = {**team["chart"], "labels": {"open": _("Open tasks"), "overdue": _("Overdue")}} \
            if team["chart"] else None
        return render(request, "analytics/home_manager.html", {
            "today": today, "team": team, "team_chart": chart,
            "book": home.book_figures(user=request.user, today=today),
            "attention": home.team_attention(user=request.user, team=team["team"], today=today)})
    return redirect("clients:client_list")


@login_required
def home_tasks(request):
    """The RM's task panel alone: what htmx swaps in after an outcome is recorded (the outcome
    view redirects here). Anything else than htmx gets the whole home page."""
    if role_of(request.user) != Role.RM or not _is_htmx(request):
        return redirect("analytics:home")
    response = render(request, "analytics/_rm_tasks.html",
                      {**_tasks_context(request.user, timezone.localdate()), "partial": True,
                       "open_count": home.open_task_count(user=request.user)})
    patch_vary_headers(response, ["HX-Request"])
    return response
