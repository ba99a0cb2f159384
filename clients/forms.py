"""Forms of the client pages: the list's search/filter/sort form and the interaction form."""

from django import forms
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import ClientRiskLevel, ClientStatus, InteractionKind, InteractionOutcome, ServiceLevel
from .scoring.models import Tier

# The only orderings a user may ask for: each maps to indexed columns (plus the primary key as a
# tie-breaker so pages never overlap), so sorting stays an index scan at a million clients
# (the score sorts through clients.selectors.client_score_slice, see below).
SORTS = {
    "name": ("name", "id"),
    "-name": ("-name", "-id"),
    "client_no": ("client_no",),
    "-client_no": ("-client_no",),
    "aum": ("aum", "id"),
    "-aum": ("-aum", "-id"),
    "opened_on": ("opened_on", "id"),
    "-opened_on": ("-opened_on", "-id"),
    "risk_level": ("risk_level", "id"),
    "-risk_level": ("-risk_level", "-id"),
    "last_purchase_on": ("last_purchase_on", "id"),
    "-last_purchase_on": ("-last_purchase_on", "-id"),
    # The current score: scored clients by total score then id, clients never scored after
    # them (by id, same direction). This is the meaning; the list does not ORDER BY these
    # (a sort of every client through the CurrentScore view, ~4 s at a million) but reads
    # through selectors.client_score_slice, which walks the index score_asof_total.
    "total_score": (F("current_score__total_score").asc(nulls_last=True), "id"),
    "-total_score": (F("current_score__total_score").desc(nulls_last=True), "-id"),
}
SCORE_SORTS = ("total_score", "-total_score")
DEFAULT_SORT = "name"
PAGE_SIZES = (25, 50)

DORMANT_DERIVED = "dormant_derived"


def _blank(label):
    return [("", label)]


class ClientListForm(forms.Form):
    """GET parameters of "My clients". Invalid values are dropped, never a 500."""

    q = forms.CharField(label=_("Search"), required=False, max_length=50,
                        widget=forms.TextInput(attrs={
                            "placeholder": _("Name, client number or last 4 digits of phone"),
                            "type": "search", "autocomplete": "off"}))
    risk_level = forms.ChoiceField(label=_("Risk level"), required=False,
                                   choices=_blank(_("All risk levels")) + ClientRiskLevel.choices)
    service_level = forms.ChoiceField(label=_("Service level"), required=False,
                                      choices=_blank(_("All service levels"))
                                      + ServiceLevel.choices)
    status = forms.ChoiceField(
        label=_("Status"), required=False,
        choices=_blank(_("All statuses")) + ClientStatus.choices
        + [(DORMANT_DERIVED, _("Dormant (incl. no purchase for long)"))])
    tier = forms.ChoiceField(label=_("Value tier"), required=False,
                             choices=_blank(_("All value tiers")) + Tier.choices)
    expired = forms.ChoiceField(label=_("Risk assessment"), required=False,
                                choices=[("", _("Any assessment")), ("yes", _("Expired")),
                                         ("no", _("Valid"))])
    sort = forms.ChoiceField(required=False, choices=[(k, k) for k in SORTS],
                             widget=forms.HiddenInput)
    per_page = forms.TypedChoiceField(label=_("Per page"), required=False, coerce=int,
                                      choices=[(n, n) for n in PAGE_SIZES], empty_value=25)
    page = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    FILTER_FIELDS = ("q", "risk_level", "service_level", "status", "tier", "expired")

    def params(self) -> dict:
        """Cleaned values, with every invalid or missing one replaced by its default."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        expired = data.get("expired")
        return {
            "q": data.get("q") or "",
            "risk_level": data.get("risk_level") or "",
            "service_level": data.get("service_level") or "",
            "status": data.get("status") or "",
            "tier": data.get("tier") or "",
            "assessment_expired": {"yes": True, "no": False}.get(expired),
            "sort": data.get("sort") or DEFAULT_SORT,
            "per_page": data.get("per_page") or PAGE_SIZES[0],
            "page": data.get("page") or 1,
        }

    def has_filters(self) -> bool:
        params = self.params()
        return any(params[k] for k in ("q", "risk_level", "service_level", "status", "tier")) or (
            params["assessment_expired"] is not None)


class InteractionForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=InteractionKind.choices,
                             initial=InteractionKind.CALL)
    outcome = forms.ChoiceField(label=_("Outcome"), choices=InteractionOutcome.choices,
                                initial=InteractionOutcome.REACHED)
    follow_up_on = forms.DateField(
        label=_("Follow up on"), required=False,
        help_text=_("Needed for “Follow up later”: a task is put on your list for that day."),
        widget=forms.DateInput(attrs={"type": "date"}))
    note = forms.CharField(label=_("Note"), required=False, max_length=4000,
                           widget=forms.Textarea(attrs={"rows": 3}))

    def clean(self):
        data = super().clean()
        if data.get("kind") == InteractionKind.NOTE and not (data.get("note") or "").strip():
            self.add_error("note", _("A note needs some text."))
        if data.get("outcome") == InteractionOutcome.FOLLOW_UP:
            due = data.get("follow_up_on")
            if due is None and "follow_up_on" not in self.errors:
                self.add_error("follow_up_on", _("Choose the day to follow up."))
            elif due is not None and due < timezone.localdate():
                self.add_error("follow_up_on", _("The follow-up day cannot be in the past."))
        else:
            data["follow_up_on"] = None
        return data
