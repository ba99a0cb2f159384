from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from .models import AuditAction
from .selectors import AuditFilters


class AuditFilterForm(forms.Form):
    """The audit log's filters; an invalid one is ignored (and said so), never a 500."""

    action = forms.ChoiceField(label=_("Action"), required=False,
                               choices=[("", _("All actions")), *AuditAction.choices])
    who = forms.CharField(label=_("User"), required=False, max_length=150, strip=True)
    object = forms.CharField(label=_("Object"), required=False, max_length=128, strip=True)
    date_from = forms.DateField(label=pgettext_lazy("date range", "From"), required=False)
    date_to = forms.DateField(label=pgettext_lazy("date range", "To"), required=False)

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The end date is before the start date."))
        return data

    def filters(self) -> AuditFilters:
        data = self.cleaned_data if self.is_valid() else {
            k: v for k, v in getattr(self, "cleaned_data", {}).items() if k not in self.errors}
        return AuditFilters(action=data.get("action") or "", who=data.get("who") or "",
                            object_id=data.get("object") or "",
                            date_from=data.get("date_from"), date_to=data.get("date_to"))
