"""Scoring schemes: validation and publishing of a new version (a used version is never edited)."""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from core.errors import ApplicationError
from core.models import AuditAction
from core.services import audit_record

from .engine import TIER_RULES
from .models import ScoringScheme

BOUNDS_PER_DIMENSION = 5  # the lower bounds of bands 2..6; band 1 is everything below
DIMENSIONS = ("amount", "frequency", "benefit")
WINDOW_MONTHS = (1, 36)
SCORES = (1, 6)


def _dimension_label(dimension: str) -> str:
    return {"amount": _("Amount"), "frequency": _("Frequency"), "benefit": _("Benefit")}[dimension]


def _bound_errors(dimension: str, bounds: Any) -> list[str]:
    label = _dimension_label(dimension)
    if not isinstance(bounds, list | tuple) or len(bounds) != BOUNDS_PER_DIMENSION:
        count = len(bounds) if isinstance(bounds, list | tuple) else 0
        return [_("%(dimension)s bands: give exactly five bounds, the lower bounds of bands 2 to "
                  "6 (six bands); got %(count)d.") % {"dimension": label, "count": count}]
    errors = []
    previous = None
    for index, value in enumerate(bounds):
        number = index + 2
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
            errors.append(_("%(dimension)s bands: the lower bound of band %(band)d is not a "
                            "number.") % {"dimension": label, "band": number})
            previous = None
            continue
        if value < 0:
            errors.append(_("%(dimension)s bands: the lower bound of band %(band)d (%(value)s) "
                            "is negative.") % {"dimension": label, "band": number, "value": value})
        if previous is not None and value <= previous:
            errors.append(_("%(dimension)s bands: the lower bound of band %(band)d (%(value)s) "
                            "must be greater than that of band %(previous_band)d (%(previous)s); "
                            "bands must increase.")
                          % {"dimension": label, "band": number, "value": value,
                             "previous_band": number - 1, "previous": previous})
        previous = value
    return errors


def scheme_validate(data: dict[str, Any]) -> dict[str, list[str]]:
    """Field -> messages for every problem of a scheme; empty when it can be published."""
    errors: dict[str, list[str]] = {}
    for dimension in DIMENSIONS:
        problems = _bound_errors(dimension, data.get(f"{dimension}_bounds"))
        if problems:
            errors[f"{dimension}_bounds"] = problems

    def integer_in(name: str, low: int, high: int | None, message: str) -> None:
        value = data.get(name)
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= low and (
            high is None or value <= high)
        if not ok:
            errors[name] = [message]

    integer_in("window_months", *WINDOW_MONTHS,
               _("The window must be a whole number of months from %(low)d to %(high)d.")
               % {"low": WINDOW_MONTHS[0], "high": WINDOW_MONTHS[1]})
    integer_in("high_score", *SCORES,
               _("'High' must be a score from %(low)d to %(high)d.")
               % {"low": SCORES[0], "high": SCORES[1]})
    integer_in("recent_days", 0, 3660,
               _("'Recent' must be a whole number of days from 0 to 3660."))

    precedence = data.get("tier_precedence")
    if not isinstance(precedence, list | tuple):
        errors["tier_precedence"] = [_("The tier precedence must list the four tiers.")]
    else:
        unknown = [str(rule) for rule in precedence if rule not in TIER_RULES]
        if unknown:
            errors["tier_precedence"] = [
                _("Unknown tier rule: %(rules)s. Known rules: %(known)s.")
                % {"rules": ", ".join(unknown), "known": ", ".join(TIER_RULES)}]
        elif sorted(precedence) != sorted(TIER_RULES):
            errors["tier_precedence"] = [
                _("The tier precedence must name each of the four tiers exactly once: "
                  "%(known)s.") % {"known": ", ".join(TIER_RULES)}]
    return errors


def scheme_publish(*, data: dict[str, Any], actor=None) -> ScoringScheme:
    """Publish the next version of the scoring scheme; refuse an invalid one, saying why."""
    errors = scheme_validate(data)
    if errors:
        first = next(iter(errors.values()))[0]
        raise ApplicationError(first, code="invalid_scheme", fields=errors)
    try:
        with transaction.atomic():
            latest = ScoringScheme.objects.aggregate(v=Max("version"))["v"] or 0
            scheme = ScoringScheme.objects.create(
                version=latest + 1,
                window_months=data["window_months"],
                amount_bounds=list(data["amount_bounds"]),
                frequency_bounds=list(data["frequency_bounds"]),
                benefit_bounds=list(data["benefit_bounds"]),
                high_score=data["high_score"],
                recent_days=data["recent_days"],
                tier_precedence=list(data["tier_precedence"]),
                note=str(data.get("note", ""))[:200],
                published_by=actor if getattr(actor, "pk", None) else None,
            )
            audit_record(action=AuditAction.SCHEME_PUBLISHED,
                         actor=actor if getattr(actor, "pk", None) else None,
                         object_type="scoring_scheme", object_id=str(scheme.version),
                         detail={"version": scheme.version, "note": scheme.note})
            return scheme
    except IntegrityError as exc:
        raise ApplicationError(_("Another version was published at the same moment; try again."),
                               code="conflict", status=409) from exc
