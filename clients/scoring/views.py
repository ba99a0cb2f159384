"""Pages of value scoring (ops and admin): runs with live progress, charts, tier migration,
scheme versions. Also the "Value score" card of the client 360 page (`score_card`)."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from core.errors import ApplicationError
from core.permissions import capability_required

from .forms import MigrationCellForm, MigrationForm, RunStartForm, SchemePublishForm
from .models import ClientScore, ScoringRun, ScoringRunStatus, Tier
from .schemes import scheme_publish
from .selectors import (
    client_score_history,
    run_get,
    run_is_stale,
    run_list,
    scheme_current,
    scheme_list,
    score_distribution,
    score_explanation,
    tier_distribution,
    tier_migration,
    tier_migration_clients,
)
from .services import scoring_run_resume, scoring_run_start

# A queued or running run that has not moved for this long lost its worker: offer "Resume".
RUNS_SHOWN = 20
HISTORY_POINTS = 60
MIGRATION_PAGE_SIZE = 25
TIERS = [t.value for t in Tier]


# --- the client 360 card -----------------------------------------------------------------------
def _money(value: float) -> str:
    return f"{value:,.0f}"


def _rate(value: float) -> str:
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _band_range(lower: float | None, upper: float | None, fmt) -> str:
    if upper is None:
        return f"≥ {fmt(lower or 0)}"
    if not lower:
        return f"< {fmt(upper)}"
    return f"{fmt(lower)} – {fmt(upper)}"


def _rule_sentence(rule: str, score, high: int, recent: int, *, matched: bool = True) -> str:
    """The rule with the client's figures, e.g. "Key development: amount score 4 ≥ 4"."""
    values = {"high": high, "recent": recent, "days": score.recency_days}
    if rule == Tier.GUIDING:
        values["score"] = score.frequency_score
        return (_("Key guiding: frequency score %(score)d ≥ %(high)d") if matched
                else _("Key guiding: frequency score %(score)d < %(high)d")) % values
    if rule == Tier.DEVELOPMENT:
        values["score"] = score.amount_score
        return (_("Key development: amount score %(score)d ≥ %(high)d") if matched
                else _("Key development: amount score %(score)d < %(high)d")) % values
    if rule == Tier.POTENTIAL:
        if score.recency_days is None:
            return _("Potential value-add: no purchase in the window") % values
        return (_("Potential value-add: last purchase %(days)d days ago ≤ %(recent)d") if matched
                else _("Potential value-add: last purchase %(days)d days ago > %(recent)d")
                ) % values
    return _("Long-tail: everyone else (low amount, low frequency)")


def score_card(client) -> dict:
    """What the "Value score" card shows: the latest score, why, and the history chart data."""
    history = list(client_score_history(client=client)[:HISTORY_POINTS])
    if not history:
        return {"score": None}
    score = history[0]
    why = score_explanation(score=score)
    scheme = score.scheme
    labels = {"amount": _("Amount bought (CNY)"), "frequency": _("Purchases per month"),
              "benefit": _("Revenue to the firm (CNY)")}
    rows = []
    for dim in why.dimensions:
        fmt = _rate if dim.dimension == "frequency" else _money
        if dim.dimension == "frequency":
            raw = _("%(rate)s per month (%(count)d purchases in %(months)d months)") % {
                "rate": _rate(dim.value or 0), "count": score.purchases,
                "months": scheme.window_months}
        else:
            raw = _money(dim.value or 0)
        rows.append({"dimension": dim.dimension, "label": labels[dim.dimension], "raw": raw,
                     "score": dim.score, "range": _band_range(dim.lower, dim.upper, fmt)})
    rules = [{"rule": r["rule"], "label": Tier(r["rule"]).label, "matched": r["matched"],
              "decided": r["decided"],
              "sentence": _rule_sentence(r["rule"], score, why.high_score, why.recent_days,
                                         matched=r["matched"])}
             for r in why.rules_checked]
    chart = [{"as_of": s.as_of.isoformat(), "total": s.total_score, "tier": s.tier,
              "tier_label": str(Tier(s.tier).label), "version": s.scheme.version}
             for s in reversed(history)]
    return {"score": score, "why_rows": rows, "why_rules": rules,
            "why_sentence": _rule_sentence(why.tier_rule, score, why.high_score,
                                           why.recent_days),
            "score_history": chart}


# --- the scoring page ----------------------------------------------------------------------
def _run_rows(runs) -> list[dict]:
    rows = []
    for run in runs:
        rows.append({"run": run, "percent": run.percent_done, "duration": run.duration,
                     "active": run.is_active,
                     "can_resume": run.status == ScoringRunStatus.FAILED or run_is_stale(run),
                     "tiers": [(t, Tier(t).label, run.tier_counts.get(t, 0)) for t in TIERS]
                     if run.tier_counts else []})
    return rows


def _runs_context() -> dict:
    rows = _run_rows(run_list()[:RUNS_SHOWN])
    return {"run_rows": rows, "polling": any(r["active"] for r in rows)}


def _charts(run: ScoringRun | None) -> dict | None:
    if run is None:
        return None
    scores = score_distribution(run=run)
    tiers = tier_distribution(run=run)
    return {
        "run": {"id": run.pk, "as_of": run.as_of.isoformat(), "version": run.scheme.version},
        "scores": [str(s) for s in range(1, 7)],
        "series": [{"key": dim, "name": name, "data": [scores[dim][s] for s in range(1, 7)]}
                   for dim, name in (("amount", _("Amount score")),
                                     ("frequency", _("Frequency score")),
                                     ("benefit", _("Benefit score")))],
        "tiers": [{"key": t, "name": str(Tier(t).label), "value": tiers[t]} for t in TIERS],
        "labels": {"clients": _("Clients"), "score": _("Score"),
                   "scores_title": _("Clients per score"),
                   "tiers_title": _("Clients per value tier")},
    }


def _migration(form: MigrationForm) -> dict | None:
    run_from, run_to = form.runs()
    if run_from is None or run_to is None:
        return None
    matrix = tier_migration(run_from=run_from, run_to=run_to)
    base = reverse("scoring:migration_clients")
    rows = []
    for tier_from in TIERS:
        cells = []
        for tier_to in TIERS:
            query = urlencode({"run_from": run_from.pk, "run_to": run_to.pk,
                               "tier_from": tier_from, "tier_to": tier_to})
            cells.append({"tier": tier_to, "count": matrix[tier_from][tier_to],
                          "diagonal": tier_from == tier_to, "url": f"{base}?{query}"})
        rows.append({"tier": tier_from, "label": Tier(tier_from).label, "cells": cells,
                     "total": sum(c["count"] for c in cells)})
    return {"run_from": run_from, "run_to": run_to, "rows": rows,
            "columns": [(t, Tier(t).label) for t in TIERS]}


def _schemes() -> list[dict]:
    rows = []
    for scheme in scheme_list():
        rows.append({"scheme": scheme, "precedence": [Tier(r).label for r in
                                                      scheme.tier_precedence if r in TIERS]})
    return rows


def _selected_run(request) -> ScoringRun | None:
    raw = request.GET.get("run", "")
    if raw.isdigit():
        run = run_list().filter(pk=int(raw), status=ScoringRunStatus.SUCCEEDED).first()
        if run is not None:
            return run
    return (run_list().filter(status=ScoringRunStatus.SUCCEEDED).order_by("-as_of", "-id")
            .first())


def _page(request, *, start_form=None, publish_form=None, run_error="", status=200):
    scheme = scheme_current()
    selected = _selected_run(request)
    migration_form = MigrationForm(request.GET or None)
    context = {
        **_runs_context(),
        "start_form": start_form or RunStartForm(),
        "run_error": run_error,
        "publish_form": publish_form or SchemePublishForm(
            initial=SchemePublishForm.initial_from(scheme)),
        "current_scheme": scheme,
        "selected_run": selected,
        "succeeded_runs": list(run_list().filter(status=ScoringRunStatus.SUCCEEDED)
                               .order_by("-as_of", "-id")[:50]),
        "charts": _charts(selected),
        "migration_form": migration_form,
        "migration": _migration(migration_form),
        "schemes": _schemes(),
    }
    return render(request, "clients/scoring_page.html", context, status=status)


@capability_required("scoring.manage")
def scoring_page(request):
    return _page(request)


@capability_required("scoring.manage")
def scoring_runs(request):
    """The runs table alone: htmx polls it while a run is queued or running."""
    return render(request, "clients/_scoring_runs.html", _runs_context())


@capability_required("scoring.manage")
@require_POST
def run_start(request):
    form = RunStartForm(request.POST)
    if form.is_valid():
        try:
            run = scoring_run_start(as_of=form.cleaned_data["as_of"], actor=request.user,
                                    trigger="page")
        except ApplicationError as exc:
            form.add_error("as_of" if "as_of" in exc.fields else None, exc.message)
        else:
            return redirect(f"{reverse('scoring:scoring_page')}?run={run.pk}#runs")
    return _page(request, start_form=form, status=400)


@capability_required("scoring.manage")
@require_POST
def run_resume(request, pk: int):
    run = run_get(pk)
    try:
        scoring_run_resume(run=run)
    except ApplicationError as exc:
        return _page(request, run_error=exc.message, status=400)
    return redirect(f"{reverse('scoring:scoring_page')}#runs")


@capability_required("scoring.manage")
@require_POST
def scheme_publish_view(request):
    form = SchemePublishForm(request.POST)
    if form.is_valid():
        try:
            scheme_publish(data=dict(form.cleaned_data), actor=request.user)
        except ApplicationError as exc:
            form.add_application_error(exc)
        else:
            return redirect(f"{reverse('scoring:scoring_page')}#schemes")
    return _page(request, publish_form=form, status=400)


@capability_required("scoring.manage")
def migration_clients(request):
    form = MigrationCellForm(request.GET)
    if not form.is_valid() or not form.cleaned_data.get("run_from") \
            or not form.cleaned_data.get("run_to"):
        raise Http404(_("Choose two succeeded runs and a cell of the matrix."))
    data = form.cleaned_data
    run_from, run_to = data["run_from"], data["run_to"]
    clients = tier_migration_clients(run_from=run_from, run_to=run_to,
                                     tier_from=data["tier_from"], tier_to=data["tier_to"],
                                     user=request.user)
    page = Paginator(clients, MIGRATION_PAGE_SIZE).get_page(data.get("page") or 1)
    ids = [c.pk for c in page.object_list]
    # The two scores of the clients on this page, in one query.
    scores = {(s.client_id, s.run_id): s for s in ClientScore.objects.filter(
        client_id__in=ids, run_id__in=[run_from.pk, run_to.pk])}
    rows = [{"client": c, "before": scores.get((c.pk, run_from.pk)),
             "after": scores.get((c.pk, run_to.pk))} for c in page.object_list]
    query = urlencode({"run_from": run_from.pk, "run_to": run_to.pk,
                       "tier_from": data["tier_from"], "tier_to": data["tier_to"]})
    return render(request, "clients/scoring_migration_clients.html", {
        "rows": rows, "page": page, "run_from": run_from, "run_to": run_to,
        "tier_from": Tier(data["tier_from"]).label, "tier_to": Tier(data["tier_to"]).label,
        "query": query})
