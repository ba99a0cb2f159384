"""The newsletter side of a client's email consent, shown on the client 360 page.

The 360 page (clients) shows this card through the `{% email_consent_card client %}` tag
(newsletters/templatetags/newsletters_cards.py), as it shows the cards of segments and
campaigns, so clients never imports newsletters. The card says when
and how the client unsubscribed, and the client's own RM records a re-subscription the client
asked for (`resubscribe`, which calls services.newsletter_resubscribe).
"""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clients.models import Client
from clients.selectors import client_get
from core.access import can_record_consent
from core.errors import ApplicationError

from .models import ConsentMethod, Suppression
from .selectors import client_email_suppressions
from .services import newsletter_resubscribe, newsletter_resubscribe_check

ALL = "all"


class ResubscribeForm(forms.Form):
    how = forms.ChoiceField(label=gettext_lazy("How the client gave consent"),
                            choices=[("", "—"), *ConsentMethod.choices])
    which = forms.ChoiceField(label=gettext_lazy("Newsletters"), required=False)
    note = forms.CharField(label=gettext_lazy("Note (optional)"), required=False,
                           max_length=1000, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, unsubscribes: list[Suppression], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["which"].choices = [(ALL, _("All of them")), *(
            (str(s.pk), str(s.publication) if s.publication_id else _("Every newsletter"))
            for s in unsubscribes)]
        self.show_which = len(unsubscribes) > 1

    def suppression_ids(self) -> list[int] | None:
        which = self.cleaned_data.get("which") or ALL
        return None if which == ALL else [int(which)]


def client_email_consent_card(*, client: Client, user, form: ResubscribeForm | None = None,
                              just_saved: bool = False) -> dict:
    """Context of newsletters/_email_consent.html: the client's email suppressions in force,
    the lifted ones as history, and the re-subscription form for the client's own RM."""
    rows = client_email_suppressions(client=client)
    unsubscribes = [s for s in rows if s.reason == Suppression.UNSUBSCRIBED and not s.lifted_at]
    bounces = [s for s in rows if s.reason == Suppression.BOUNCED and not s.lifted_at]
    may_resubscribe = bool(unsubscribes) and can_record_consent(user, client)
    if may_resubscribe and form is None:
        form = ResubscribeForm(unsubscribes=unsubscribes)
    return {"email_consent": {
        "unsubscribes": unsubscribes,
        "bounces": bounces,
        "history": [s for s in rows if s.lifted_at],
        "form": form if may_resubscribe else None,
        "just_saved": just_saved,
    }}


def _is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


@login_required
def resubscribe(request, client_no: str):
    # Scope first: an out-of-scope client is a 404 (audited) whatever the method.
    client = client_get(user=request.user, client_no=client_no)
    if request.method != "POST":
        return redirect("clients:client_detail", client_no=client.client_no)
    try:
        newsletter_resubscribe_check(client=client, actor=request.user)
    except ApplicationError:
        return render(request, "403.html", status=403)
    card = client_email_consent_card(client=client, user=request.user)["email_consent"]
    form = ResubscribeForm(request.POST, unsubscribes=card["unsubscribes"])
    saved = False
    if form.is_valid():
        try:
            newsletter_resubscribe(client=client, actor=request.user,
                                   how=form.cleaned_data["how"], note=form.cleaned_data["note"],
                                   suppression_ids=form.suppression_ids())
            saved = True
        except ApplicationError as exc:
            form.add_error(None, exc.message)
    if not _is_htmx(request):
        if saved:
            messages.success(request, _("The re-subscription was recorded."))
        else:
            messages.error(request, " ".join(str(e) for errors in form.errors.values()
                                             for e in errors))
        return redirect("clients:client_detail", client_no=client.client_no)
    # htmx swaps only 2xx answers: a form with errors comes back 200 with its messages.
    context = {"client": client, **client_email_consent_card(
        client=client, user=request.user, form=None if saved else form, just_saved=saved)}
    return render(request, "newsletters/_email_consent.html", context)
