"""Forms of the scoring page: start a run, compare two runs, publish a scheme version."""

from __future__ import annotations

import math
from datetime import timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.errors import ApplicationError

from .models import ScoringRun, ScoringRunStatus, ScoringScheme, Tier

DIMENSION_FIELDS = ("amount_bounds", "frequency_bounds", "benefit_bounds")


def _yesterday():
    return timezone.localdate() - timedelta(days=1)


class RunStartForm(forms.Form):
    as_of = forms.DateField(label=_("As of"), initial=_yesterday,
                            widget=forms.DateInput(attrs={"type": "date"}))

    def clean_as_of(self):
        as_of = self.cleaned_data["as_of"]
        if as_of > timezone.localdate():
            raise forms.ValidationError(
                _("The as-of date cannot be in the future; the latest is today."))
        return as_of


class _RunChoice(forms.ModelChoiceField):
    def label_from_instance(self, run: ScoringRun) -> str:
        return f"{run.as_of:%Y-%m-%d} · v{run.scheme.version} · #{run.pk}"


def succeeded_runs():
    return (ScoringRun.objects.filter(status=ScoringRunStatus.SUCCEEDED).select_related("scheme")
            .order_by("-as_of", "-id"))


class MigrationForm(forms.Form):
    """Two succeeded runs to compare; invalid choices fall back to the two latest."""

    run_from = _RunChoice(label=_("From run"), queryset=ScoringRun.objects.none(),
                          required=False)
    run_to = _RunChoice(label=_("To run"), queryset=ScoringRun.objects.none(), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        runs = succeeded_runs()
        self.fields["run_from"].queryset = runs
        self.fields["run_to"].queryset = runs

    def runs(self) -> tuple[ScoringRun | None, ScoringRun | None]:
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        run_from, run_to = data.get("run_from"), data.get("run_to")
        if run_from and run_to:
            return run_from, run_to
        latest = list(succeeded_runs()[:2])
        if len(latest) < 2:
            return None, None
        return latest[1], latest[0]


class MigrationCellForm(MigrationForm):
    tier_from = forms.ChoiceField(choices=Tier.choices)
    tier_to = forms.ChoiceField(choices=Tier.choices)
    page = forms.IntegerField(required=False, min_value=1)


def _parse_bounds(text: str) -> list[float | int]:
    values = []
    for part in (text or "").replace("，", ",").split(","):
        part = part.strip().replace("_", "")
        if not part:
            continue
        try:
            number = float(part)
        except ValueError as exc:
            raise forms.ValidationError(
                _("“%(value)s” is not a number; give the bounds as numbers separated by commas.")
                % {"value": part}) from exc
        if not math.isfinite(number):
            raise forms.ValidationError(_("“%(value)s” is not a finite number.")
                                        % {"value": part})
        values.append(int(number) if number.is_integer() else number)
    return values


def format_bounds(bounds) -> str:
    return ", ".join(f"{b:g}" if isinstance(b, float) else str(b) for b in bounds or [])


class SchemePublishForm(forms.Form):
    """A new scheme version; field errors come from schemes.scheme_validate via the service."""

    window_months = forms.IntegerField(label=_("Observation window (months)"), min_value=0)
    amount_bounds = forms.CharField(
        label=_("Amount bands: lower bounds of bands 2–6 (CNY)"), max_length=300,
        help_text=_("Five increasing numbers separated by commas; band 1 is below the first."))
    frequency_bounds = forms.CharField(
        label=_("Frequency bands: lower bounds of bands 2–6 (purchases per month)"),
        max_length=300)
    benefit_bounds = forms.CharField(
        label=_("Benefit bands: lower bounds of bands 2–6 (CNY)"), max_length=300)
    high_score = forms.IntegerField(label=_("“High” means a score of at least"), min_value=0)
    recent_days = forms.IntegerField(label=_("“Recent” means a purchase within (days)"),
                                     min_value=0)
    tier_precedence = forms.CharField(
        label=_("Tier precedence (first matching rule wins)"), max_length=200,
        help_text=_("The four rules separated by commas: guiding, development, potential, "
                    "long_tail."))
    note = forms.CharField(label=_("Note"), required=False, max_length=200)

    @classmethod
    def initial_from(cls, scheme: ScoringScheme | None) -> dict:
        if scheme is None:
            return {}
        return {"window_months": scheme.window_months,
                "amount_bounds": format_bounds(scheme.amount_bounds),
                "frequency_bounds": format_bounds(scheme.frequency_bounds),
                "benefit_bounds": format_bounds(scheme.benefit_bounds),
                "high_score": scheme.high_score, "recent_days": scheme.recent_days,
                "tier_precedence": ", ".join(scheme.tier_precedence)}

    def clean_amount_bounds(self):
        return _parse_bounds(self.cleaned_data["amount_bounds"])

    def clean_frequency_bounds(self):
        return _parse_bounds(self.cleaned_data["frequency_bounds"])

    def clean_benefit_bounds(self):
        return _parse_bounds(self.cleaned_data["benefit_bounds"])

    def clean_tier_precedence(self):
        text = self.cleaned_data["tier_precedence"].replace("，", ",")
        return [part.strip() for part in text.split(",") if part.strip()]

    def add_application_error(self, exc: ApplicationError) -> None:
        """Put each message of the service next to the field it names."""
        for field, messages in exc.fields.items():
            self.add_error(field if field in self.fields else None, list(messages))
        if not exc.fields:
            self.add_error(None, exc.message)
