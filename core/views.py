from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render

from .access import has_role
from .models import AuditAction, AuditLog, Role
from .services import audit_record

AUDIT_PAGE_SIZE = 50


@login_required
def audit_log(request):
    """The audit log for compliance and admins; anyone else gets a 403 that is itself audited."""
    if not has_role(request.user, Role.COMPLIANCE, Role.ADMIN):
        audit_record(action=AuditAction.ACCESS_DENIED, actor=request.user, object_type="audit_log",
                     request=request)
        return render(request, "403.html", status=403)
    entries = AuditLog.objects.order_by("-at", "-id")
    action = request.GET.get("action", "")
    if action not in AuditAction.values:
        action = ""
    if action:
        entries = entries.filter(action=action)
    who = request.GET.get("who", "").strip()[:150]
    if who:
        entries = entries.filter(actor_username__startswith=who)
    page = Paginator(entries, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "core/audit_log.html",
                  {"page": page, "actions": AuditAction.choices, "action": action, "who": who})
