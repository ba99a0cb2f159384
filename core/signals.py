import hashlib

from axes.models import AccessAttempt
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.backends.signals import connection_created
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from .models import AuditAction
from .services import audit_record


@receiver(user_logged_in)
def _login(sender, request, user, **kwargs):
    audit_record(action=AuditAction.LOGIN, actor=user, request=request)


@receiver(user_logged_out)
def _logout(sender, request, user, **kwargs):
    if user is not None:
        audit_record(action=AuditAction.LOGOUT, actor=user, request=request)


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs):
    detail = {"username": str(credentials.get("username", ""))[:150]}
    if getattr(request, "lockout_refused", False):
        detail["refused"] = "locked_out"  # refused unseen: the password was not checked
    audit_record(action=AuditAction.LOGIN_FAILED, actor=None, request=request, detail=detail)


@receiver(user_locked_out)
def _locked_out(sender, request, username, ip_address, **kwargs):
    """One row when a lockout begins (axes also signals each refused try during it)."""
    if getattr(request, "lockout_refused", False):
        return
    audit_record(action=AuditAction.LOGIN_LOCKED_OUT, actor=None, request=request,
                 object_type="user", object_id=str(username or "")[:128],
                 detail={"username": str(username or "")[:150], "ip_address": ip_address,
                         "scope": getattr(request, "lockout_scopes", []),
                         "minutes": settings.LOGIN_LOCKOUT_MINUTES})


@receiver(post_delete, sender=AccessAttempt)
def _lockout_cleared(sender, instance, **kwargs):
    """An administrator cleared failed logins that still counted (admin › Access attempts ›
    delete, or `axes_reset*`); axes' own clean-up of expired ones is not a clearing."""
    if instance.attempt_time <= timezone.now() - settings.AXES_COOLOFF_TIME:
        return
    audit_record(action=AuditAction.LOCKOUT_CLEARED, object_type="user",
                 object_id=str(instance.username or "")[:128],
                 detail={"account": instance.username or "", "ip_address": instance.ip_address,
                         "failures": instance.failures_since_start})


def _md5(text):
    return None if text is None else hashlib.md5(str(text).encode("utf-8")).hexdigest()


@receiver(connection_created)
def _sqlite_functions(sender, connection, **kwargs):
    """SQLite lacks PostgreSQL's md5(text), which set-based SQL shared by both databases uses
    (a campaign's deterministic arm assignment)."""
    if connection.vendor == "sqlite":
        connection.connection.create_function("md5", 1, _md5, deterministic=True)
