"""Forms of the RM task pages."""

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import TaskOutcome
from .services import NOTE_MAX


class TaskForm(forms.Form):
    title = forms.CharField(label=_("Task"), max_length=200)
    client_no = forms.CharField(label=_("Client number (optional)"), required=False,
                                max_length=32)
    due_on = forms.DateField(label=_("Due on"), required=False,
                             widget=forms.DateInput(attrs={"type": "date"}))
    detail = forms.CharField(label=_("Note"), required=False, max_length=4000,
                             widget=forms.Textarea(attrs={"rows": 2}))

    def clean_client_no(self):
        return self.cleaned_data["client_no"].strip()


class TaskDueForm(forms.Form):
    due_on = forms.DateField(label=_("Due on"), required=False,
                             widget=forms.DateInput(attrs={"type": "date"}))


class TaskOutcomeForm(forms.Form):
    outcome = forms.ChoiceField(label=_("Outcome"), choices=TaskOutcome.choices)
    note = forms.CharField(label=_("Note"), required=False, max_length=NOTE_MAX)
