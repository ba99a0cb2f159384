"""Pages of the client book: "My clients" and the client 360 view."""

import math
from dataclasses import dataclass
from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.db.models import Q, QuerySet, Sum
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _

from core.access import ALL_CLIENTS_ROLES, can_log_interaction, can_see_pii, role_of
from core.errors import ApplicationError
from core.models import AuditAction, Role
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

# An exact COUNT(*) over a million rows is a sequential (or full index-only) scan on PostgreSQL
# and costs far more than the 25 rows we show. Lists therefore count at most COUNT_CAP + 1 rows
# ("10,000+"), and the unfiltered list of ops/compliance/admin - the whole table - shows the
# planner's estimate from pg_class.reltuples ("about N"), which costs nothing.
COUNT_CAP = 10_000
# OFFSET pagination costs grow with the page number (page 2,000 of a million: ~350 ms of SQL),
# so a list pages through its first COUNT_CAP rows only; past that, users refine the search.
MAX_ROWS_PAGED = COUNT_CAP
RECENT_PURCHASES = 20
RECENT_INTERACTIONS = 50


@dataclass
class ListPage:
    rows: list
    number: int
    per_page: int
    has_next: bool
    total: int
    total_kind: str  # "exact", "capped" or "estimate"
    at_depth_limit: bool = False

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def num_pages(self) -> int | None:
        if self.total_kind != "exact":
            return None
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def start_index(self) -> int:
        return (self.number - 1) * self.per_page + 1 if self.rows else 0

    @property
    def end_index(self) -> int:
        return (self.number - 1) * self.per_page + len(self.rows)


def _table_estimate(model) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                       [model._meta.db_table])
        row = cursor.fetchone()
    return int(row[0]) if row else -1


def _count(qs: QuerySet, *, whole_table: bool) -> tuple[int, str]:
    if whole_table and connection.vendor == "postgresql":
        estimate = _table_estimate(qs.model)
        if estimate > COUNT_CAP:  # -1 when never analysed; small tables are counted exactly
            return estimate, "estimate"
    n = qs.order_by()[: COUNT_CAP + 1].count()
    return (COUNT_CAP, "capped") if n > COUNT_CAP else (n, "exact")


def _paginate(qs: QuerySet, *, page: int, per_page: int, whole_table: bool,
              fetch=None) -> ListPage:
    """A page of `qs`; `fetch(offset, limit, total_kind)` reads the rows when slicing `qs` is
    not enough (it may choose its plan by the list's size)."""
    last_page = max(1, MAX_ROWS_PAGED // per_page)
    page = min(page, last_page)
    offset = (page - 1) * per_page
    total, kind = _count(qs, whole_table=whole_table)
    if fetch is None:
        def fetch(start, limit, kind):
            return list(qs[start: start + limit])
    rows = fetch(offset, per_page + 1, kind)  # one extra row tells whether a next exists
    more = len(rows) > per_page
    return ListPage(rows=rows[:per_page], number=page, per_page=per_page,
                    has_next=more and page < last_page, total=total, total_kind=kind,
                    at_depth_limit=more and page >= last_page)


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
    page = _paginate(qs, page=p["page"], per_page=p["per_page"],
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


def _open_tasks(client: Client, user) -> list:
    from campaigns.views import open_tasks_for_client

    return open_tasks_for_client(client=client, user=user)


def _segments_card(client: Client) -> dict:
    from segments.views import client_segments_card  # segments.views imports this module

    return client_segments_card(client)


def _email_consent_card(client: Client, user) -> dict:
    from newsletters.consent_views import client_email_consent_card  # newsletters sit above

    return client_email_consent_card(client=client, user=user)


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
        "open_tasks": _open_tasks(client, request.user),
        **score_card(client),
        **_segments_card(client),
        **_email_consent_card(client, request.user),
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
