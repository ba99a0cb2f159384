from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render

from .access import has_role
from .models import AuditAction, AuditLog, Role
from .services import audit_record


@login_required
def audit_log(request):
    if not has_role(request.user, Role.COMPLIANCE, Role.ADMIN):
        audit_record(action=AuditAction.ACCESS_DENIED, actor=request.user, object_type="audit_log")
        return render(request, "403.html", status=403)
    entries = AuditLog.objects.select_related("actor")
    action = request.GET.get("action", "")
    if action in AuditAction.values:
        entries = entries.filter(action=action)
    who = request.GET.get("who", "").strip()
    if who:
        entries = entries.filter(actor_username__startswith=who)
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    return render(request, "core/audit_log.html",
                  {"page": page, "actions": AuditAction.choices, "action": action, "who": who})
