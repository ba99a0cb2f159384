from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from .audit_format import detail_lines, detail_text, object_type_label
from .forms import AuditFilterForm
from .lockout import lockout_policy
from .models import AuditAction, User
from .permissions import capability_required
from .selectors import WHO_MAX_USERS, audit_count_upto, audit_entries, audit_page
from .services import audit_record
from .spreadsheet import csv_lines, xlsx_bytes

AUDIT_PAGE_SIZE = 50
AUDIT_EXPORT_CHUNK = 2000
AUDIT_XLSX_MAX_ROWS = 100_000  # larger exports are CSV (streamed, no limit)
EXPORT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class LoginView(auth_views.LoginView):
    """Django's login, saying up front that repeated failures lock the account."""

    template_name = "core/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), **lockout_policy()}


def login_locked_out(request, original_response=None, credentials=None):
    """django-axes' lockout response (AXES_LOCKOUT_CALLABLE): the login page, saying when to
    try again, with 429 — for the site's login and the Django admin's alike."""
    from axes.handlers.proxy import AxesProxyHandler

    handler = AxesProxyHandler.get_implementation()
    policy = lockout_policy()
    minutes = (handler.minutes_left(request, credentials) if hasattr(handler, "minutes_left")
               else policy["lockout_minutes"])
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    context = {
        "form": AuthenticationForm(request, initial={"username": str(username)[:150]}),
        "locked_out": True,
        "minutes_left": minutes,
        "next": request.POST.get("next", ""),
        **policy,
    }
    return render(request, "core/login.html", context, status=settings.AXES_HTTP_RESPONSE_CODE)


@capability_required("audit.read")
def audit_log(request):
    """The audit log for compliance and admins; anyone else gets a 403 that is itself audited."""
    form = AuditFilterForm(request.GET or None)
    return _render_page(request, form, before=request.GET.get("before"),
                        after=request.GET.get("after"))


def _render_page(request, form, *, before=None, after=None, status=200, **extra):
    filters = form.filters()
    page = audit_page(filters=filters, before=before, after=after, size=AUDIT_PAGE_SIZE)
    for entry in page:
        entry.object_label = object_type_label(entry.object_type)
        entry.detail_lines = detail_lines(entry.detail)
    many = bool(filters.who) and User.objects.filter(
        username__startswith=filters.who).count() > WHO_MAX_USERS
    return render(request, "core/audit_log.html", {
        "page": page, "form": form, "who_truncated": many, "who_max": WHO_MAX_USERS, **extra},
        status=status)


def _export_header() -> list[str]:
    return [_("Time"), _("User"), _("Action"), _("Object type"), _("Object"), _("IP address"),
            _("Path"), _("Detail")]


def _export_rows(entries):
    # Labels are read now, in the request's language: a streamed body is written later.
    actions = {value: str(label) for value, label in AuditAction.choices}
    yield _export_header()
    for entry in entries.iterator(chunk_size=AUDIT_EXPORT_CHUNK):
        yield [timezone.localtime(entry.at).strftime("%Y-%m-%d %H:%M:%S"),
               entry.actor_username, actions.get(entry.action, entry.action),
               object_type_label(entry.object_type), entry.object_id, entry.ip or "",
               entry.path, detail_text(entry.detail)]


@capability_required("audit.read")
def audit_log_export(request):
    """The rows the filters select, as CSV (streamed) or XLSX; the export is itself audited."""
    fmt = request.GET.get("format", "csv")
    if fmt not in EXPORT_TYPES:
        fmt = "csv"
    form = AuditFilterForm(request.GET)
    filters = form.filters()
    if fmt == "xlsx" and audit_count_upto(filters=filters, cap=AUDIT_XLSX_MAX_ROWS) \
            > AUDIT_XLSX_MAX_ROWS:
        return _render_page(request, form, status=400, export_error=_(
            "More than %(n)s rows: export CSV, or narrow the dates.")
            % {"n": f"{AUDIT_XLSX_MAX_ROWS:,}"})
    audit_record(action=AuditAction.EXPORT, actor=request.user, object_type="audit_log",
                 request=request, detail={"format": fmt, **filters.as_detail()})
    entries = audit_entries(filters=filters)
    filename = f"audit-log-{timezone.localtime():%Y%m%d-%H%M}.{fmt}"
    if fmt == "csv":
        response = StreamingHttpResponse(csv_lines(_export_rows(entries)),
                                         content_type=EXPORT_TYPES[fmt])
    else:
        response = HttpResponse(xlsx_bytes(_export_rows(entries), title=_("Audit log")),
                                content_type=EXPORT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
