"""Pages of the client book: "My clients" and the client 360 view.

The 360 page shows cards of the apps above clients (segments, newsletters, outreach) through
their template tags (`{% segments_card client %}` …, loaded in clients/client_detail.html), so
this module imports none of them: clients sits below them in the layers (DESIGN.md).
"""

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q, Sum
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _

from core.access import ALL_CLIENTS_ROLES, can_log_interaction, can_see_pii, role_of
from core.errors import ApplicationError
from core.models import AuditAction, Role
from core.pagination import paginate
from core.services import audit_record

from .forms import SCORE_SORTS, SORTS, ClientListForm, InteractionForm
from .models import Client, ProductType, Transaction
from .scoring.views import score_card
from .selectors import (
    client_filter,
    client_get,
    client_queryset_for,
    client_score_slice,
    client_search,
    current_score_pointer,
    holdings_for_client,
    interactions_for_client,
    transactions_for_client,
)
from .services import interaction_author_check, interaction_log

RECENT_PURCHASES = 20
RECENT_INTERACTIONS = 50


def _is_htmx_partial(request) -> bool:
    return (request.headers.get("HX-Request") == "true"
            and request.headers.get("HX-History-Restore-Request") != "true")


@login_required
def client_list(request):
    form = ClientListForm(request.GET)
    p = form.params()
    qs = client_queryset_for(request.user).select_related("branch", "rm", "current_score")
    qs = client_search(qs, p["q"])
    qs = client_filter(qs, risk_level=p["risk_level"], service_level=p["service_level"],
                       status=p["status"], assessment_expired=p["assessment_expired"],
                       tier=p["tier"])
    fetch = None
    if p["sort"] in SCORE_SORTS:
        # Scored clients, then the unscored ones (selectors.client_score_slice): one extra tiny
        # query for the ScoringCurrent pointer. A list counted exactly (at most COUNT_CAP
        # clients) sorts its own rows; a bigger one walks the index on the current scores.
        pointer = current_score_pointer()
        descending = p["sort"] == "-total_score"

        def fetch(offset, limit, kind):
            return client_score_slice(qs, descending=descending, offset=offset, limit=limit,
                                      pointer=pointer, walk_index=kind != "exact")
    else:
        qs = qs.order_by(*SORTS[p["sort"]])
    role = role_of(request.user)
    page = paginate(qs, page=p["page"], per_page=p["per_page"],
                     whole_table=role in ALL_CLIENTS_ROLES and not form.has_filters(),
                     fetch=fetch)
    context = {"form": form, "page": page, "sort": p["sort"],
               "show_branch": role not in (None, "rm"), "show_rm": role != "rm",
               "can_select": role in {Role.OPS, Role.ADMIN}}
    template = ("clients/_client_table.html" if _is_htmx_partial(request)
                else "clients/client_list.html")
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _contribution(client: Client) -> dict:
    since = timezone.now() - timedelta(days=365)
    return Transaction.objects.filter(client=client).aggregate(
        total=Sum("revenue"), last_12m=Sum("revenue", filter=Q(traded_at__gte=since)))


def _allocation(holdings: list) -> list[dict]:
    by_type: dict[str, float] = {}
    for h in holdings:
        by_type[h.product.product_type] = by_type.get(h.product.product_type, 0.0) + float(
            h.market_value)
    return [{"name": str(ProductType(t).label) if t in ProductType.values else t,
             "value": round(v, 2)} for t, v in sorted(by_type.items(), key=lambda kv: -kv[1])]


def _render_detail(request, client: Client, form: InteractionForm, *, status: int = 200):
    show_pii = can_see_pii(request.user, client)
    if show_pii:
        audit_record(action=AuditAction.PII_VIEWED, actor=request.user, object_type="client",
                     object_id=client.client_no, request=request,
                     detail={"fields": ["phone", "email", "id_number"]})
    holdings = list(holdings_for_client(client=client))
    context = {
        "client": client,
        "show_pii": show_pii,
        "holdings": holdings,
        "holdings_total": sum((h.market_value for h in holdings), start=0),
        "holdings_as_of": holdings[0].as_of if holdings else None,
        "allocation": _allocation(holdings),
        "purchases": transactions_for_client(client=client)[:RECENT_PURCHASES],
        "interactions": interactions_for_client(client=client)[:RECENT_INTERACTIONS],
        "contribution": _contribution(client),
        "form": form,
        "can_log_interaction": can_log_interaction(request.user, client),
        **score_card(client),
    }
    return render(request, "clients/client_detail.html", context, status=status)


@login_required
def client_detail(request, client_no):
    client = client_get(user=request.user, client_no=client_no)
    return _render_detail(request, client, InteractionForm())


@login_required
def interaction_create(request, client_no):
    # Scope first: an out-of-scope client is a 404 (audited) whatever the method.
    client = client_get(user=request.user, client_no=client_no)
    if request.method != "POST":
        return redirect("clients:client_detail", client_no=client.client_no)
    try:
        interaction_author_check(client=client, author=request.user)
    except ApplicationError:
        return render(request, "403.html", status=403)
    form = InteractionForm(request.POST)
    if form.is_valid():
        try:
            interaction_log(client=client, author=request.user, **form.cleaned_data)
        except ApplicationError as exc:
            for field, errors in exc.fields.items():
                form.add_error(field if field in form.fields else None, errors)
            if not exc.fields:
                form.add_error(None, exc.message)
    saved = form.is_bound and not form.errors
    if _is_htmx_partial(request):
        # htmx swaps only 2xx answers, so a form with errors comes back 200 with its messages.
        context = {"client": client, "form": InteractionForm() if saved else form,
                   "interactions": interactions_for_client(client=client)[:RECENT_INTERACTIONS],
                   "can_log_interaction": True, "just_saved": saved}
        return render(request, "clients/_interactions.html", context)
    if saved:
        messages.success(request, _("The interaction was logged."))
        return redirect("clients:client_detail", client_no=client.client_no)
    return _render_detail(request, client, form, status=400)
