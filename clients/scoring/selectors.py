"""Reads of value scoring for the scoring page, client 360 and the API."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from clients.models import Client
from clients.selectors import client_queryset_for

from .engine import TIER_RULES
from .models import ClientScore, ScoringRun, ScoringScheme, Tier

DIMENSIONS = ("amount", "frequency", "benefit")


def scheme_current() -> ScoringScheme | None:
    return ScoringScheme.objects.order_by("-version").first()


def scheme_list() -> QuerySet[ScoringScheme]:
    return ScoringScheme.objects.select_related("published_by").order_by("-version")


def run_list() -> QuerySet[ScoringRun]:
    return ScoringRun.objects.select_related("scheme", "created_by").order_by("-created_at", "-id")


def _stale_before():
    return timezone.now() - timedelta(seconds=settings.SCORING_STALE_SECONDS)


def stale_runs() -> QuerySet[ScoringRun]:
    """Queued or running runs with no progress for SCORING_STALE_SECONDS: their worker died or
    their message was lost (a chunk writes progress every few seconds)."""
    return ScoringRun.objects.filter(status__in=ScoringRun.ACTIVE, updated_at__lt=_stale_before())


def run_is_stale(run: ScoringRun) -> bool:
    """stale_runs() for one loaded run (the page asks per row, without a query)."""
    return run.is_active and run.updated_at < _stale_before()


def run_get(run_id: int) -> ScoringRun:
    return get_object_or_404(run_list(), pk=run_id)


def client_score_history(*, client: Client) -> QuerySet[ClientScore]:
    """Every score of the client, newest as-of date first (then newest scheme version)."""
    return (ClientScore.objects.filter(client=client).select_related("scheme")
            .order_by("-as_of", "-scheme__version"))


@dataclass(frozen=True)
class DimensionExplanation:
    dimension: str
    value: float | None
    score: int
    lower: float | None  # the band's bounds: [lower, upper); None means unbounded
    upper: float | None


@dataclass(frozen=True)
class ScoreExplanation:
    score: ClientScore
    dimensions: list[DimensionExplanation]
    tier: str
    tier_rule: str  # the rule that matched: guiding, development, potential or long_tail
    high_score: int
    recent_days: int
    rules_checked: list[dict[str, Any]]  # each rule in precedence order and whether it matched


def score_explanation(*, score: ClientScore) -> ScoreExplanation:
    """Why the client sits in its tier: raw figures, the band each fell in, the rule that won."""
    scheme = score.scheme
    dimensions = []
    for name in DIMENSIONS:
        bounds = [float(b) for b in getattr(scheme, f"{name}_bounds")]
        band = getattr(score, f"{name}_score")
        lower = 0.0 if band == 1 else bounds[band - 2]
        upper = None if band == 6 else bounds[band - 1]
        raw = getattr(score, name)
        dimensions.append(DimensionExplanation(dimension=name, value=float(raw), score=band,
                                               lower=lower, upper=upper))
    matches = {
        Tier.GUIDING.value: score.frequency_score >= scheme.high_score,
        Tier.DEVELOPMENT.value: score.amount_score >= scheme.high_score,
        Tier.POTENTIAL.value: score.recency_days is not None
        and score.recency_days <= scheme.recent_days,
        Tier.LONG_TAIL.value: True,
    }
    rules = []
    winner = None
    for rule in scheme.tier_precedence:
        rules.append({"rule": rule, "matched": matches[rule], "decided": winner is None
                      and matches[rule]})
        if winner is None and matches[rule]:
            winner = rule
    return ScoreExplanation(score=score, dimensions=dimensions, tier=score.tier,
                            tier_rule=winner or Tier.LONG_TAIL.value,
                            high_score=scheme.high_score, recent_days=scheme.recent_days,
                            rules_checked=rules)


def tier_distribution(*, run: ScoringRun) -> dict[str, int]:
    """Clients per tier of a run, every tier present (zero when empty); one GROUP BY."""
    counts = dict(ClientScore.objects.filter(run=run).values_list("tier")
                  .annotate(n=Count("id")).values_list("tier", "n"))
    return {tier: counts.get(tier, 0) for tier in TIER_RULES}


def score_distribution(*, run: ScoringRun) -> dict[str, dict[int, int]]:
    """Per dimension (and total): clients per score; one GROUP BY per dimension."""
    result: dict[str, dict[int, int]] = {}
    for field, scores in (("amount_score", range(1, 7)), ("frequency_score", range(1, 7)),
                          ("benefit_score", range(1, 7)), ("total_score", range(3, 19))):
        counts = dict(ClientScore.objects.filter(run=run).values_list(field)
                      .annotate(n=Count("id")).values_list(field, "n"))
        result[field.removesuffix("_score") if field != "total_score" else "total"] = {
            s: counts.get(s, 0) for s in scores}
    return result


def tier_migration(*, run_from: ScoringRun, run_to: ScoringRun) -> dict[str, dict[str, int]]:
    """matrix[tier in run_from][tier in run_to] = clients scored in both runs; one GROUP BY."""
    with connection.cursor() as cur:
        cur.execute("SELECT f.tier, t.tier, COUNT(*) FROM clients_clientscore t "
                    "JOIN clients_clientscore f ON f.client_id = t.client_id AND f.run_id = %s "
                    "WHERE t.run_id = %s GROUP BY f.tier, t.tier", [run_from.pk, run_to.pk])
        rows = cur.fetchall()
    matrix = {a: dict.fromkeys(TIER_RULES, 0) for a in TIER_RULES}
    for tier_from, tier_to, n in rows:
        matrix[tier_from][tier_to] = n
    return matrix


def tier_migration_clients(*, run_from: ScoringRun, run_to: ScoringRun, tier_from: str,
                           tier_to: str, user) -> QuerySet[Client]:
    """The clients (visible to `user`) that moved from `tier_from` to `tier_to`."""
    moved_from = ClientScore.objects.filter(run=run_from, tier=tier_from).values("client_id")
    moved_to = ClientScore.objects.filter(run=run_to, tier=tier_to).values("client_id")
    return (client_queryset_for(user).filter(pk__in=moved_from).filter(pk__in=moved_to)
            .order_by("name", "pk"))


def band_bounds(bounds: list[float], score: int) -> tuple[float, float]:
    """[lower, upper) of a band; upper is infinity for band 6."""
    lower = 0.0 if score == 1 else float(bounds[score - 2])
    upper = math.inf if score == 6 else float(bounds[score - 1])
    return lower, upper
