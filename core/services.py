from django.contrib.auth.models import Group
from django.db import transaction
from rest_framework.authtoken.models import Token

from .access import is_own_rm
from .errors import ApplicationError
from .middleware import client_ip, current_request
from .models import AuditAction, AuditLog, Branch, Role, User


def audit_record(*, action: str, actor=None, object_type: str = "", object_id: str = "",
                 detail: dict | None = None, request=None) -> AuditLog | None:
    request = request or current_request()
    if action == AuditAction.ACCESS_DENIED and request is not None:
        if getattr(request, "_access_denied_audited", False):
            return None  # one denial, one row (a selector and the API handler both report it)
        request._access_denied_audited = True
    if actor is None and request is not None and getattr(request, "user", None) is not None:
        actor = request.user if request.user.is_authenticated else None
    return AuditLog.objects.create(
        actor=actor,
        actor_username=(actor.get_username() if actor else (detail or {}).get("username", "")),
        action=action,
        object_type=object_type,
        object_id=str(object_id)[:128],
        path=(request.get_full_path()[:512] if request is not None else ""),
        ip=client_ip(request),
        user_agent=(request.META.get("HTTP_USER_AGENT", "")[:256] if request is not None else ""),
        detail=detail or {},
    )


def own_rm_required(*, actor, client, attempted: str, message: str) -> None:
    """Writing into a client's record (interactions, a stated consent) is the client's own RM's
    alone: anyone else gets a 403 ApplicationError, audited as ACCESS_DENIED. Call it before a
    transaction opens, so that the denial's audit row outlives the refusal."""
    if is_own_rm(actor, client):
        return
    audit_record(action=AuditAction.ACCESS_DENIED, actor=actor, object_type="client",
                 object_id=client.client_no, detail={"attempted": attempted})
    raise ApplicationError(message, code="permission_denied", status=403)


def branch_upsert(*, code: str, name: str, city: str = "") -> tuple[Branch, bool]:
    code = (code or "").strip()
    if not code:
        raise ApplicationError("Branch code is required.", fields={"code": ["required"]})
    branch, created = Branch.objects.update_or_create(code=code,
                                                      defaults={"name": name, "city": city})
    return branch, created


@transaction.atomic
def user_set_role(*, user: User, role: str) -> User:
    if role not in Role.values:
        raise ApplicationError(f"Unknown role {role!r}; one of {', '.join(Role.values)}.",
                               fields={"role": [f"unknown: {role}"]})
    for name in Role.values:
        Group.objects.get_or_create(name=name)
    user.groups.set([Group.objects.get(name=role)])
    is_admin = role == Role.ADMIN
    if user.is_staff != is_admin or user.is_superuser != is_admin:
        user.is_staff = user.is_superuser = is_admin
        user.save(update_fields=["is_staff", "is_superuser"])
    user._cached_role = role
    return user


@transaction.atomic
def staff_user_upsert(*, username: str, role: str, branch_code: str | None = None,
                      display_name: str = "", password: str | None = None,
                      is_service_account: bool = False) -> tuple[User, bool]:
    branch = None
    if branch_code:
        branch = Branch.objects.filter(code=branch_code).first()
        if branch is None:
            raise ApplicationError(f"Branch {branch_code!r} does not exist.",
                                   fields={"branch": [f"unknown branch: {branch_code}"]})
    user, created = User.objects.get_or_create(username=username)
    user.branch = branch if branch is not None else user.branch
    user.display_name = display_name or user.display_name
    user.is_service_account = is_service_account or (user.is_service_account and not password)
    if password:
        user.set_password(password)
    elif created:
        user.set_unusable_password()
    user.save()
    user_set_role(user=user, role=role)
    return user, created


@transaction.atomic
def api_token_issue(*, username: str, role: str, branch_code: str | None = None) -> Token:
    existing = User.objects.filter(username=username).first()
    is_service_account = existing is None or existing.is_service_account
    user, _ = staff_user_upsert(username=username, role=role, branch_code=branch_code,
                                is_service_account=is_service_account)
    Token.objects.filter(user=user).delete()
    token = Token.objects.create(user=user)
    audit_record(action=AuditAction.TOKEN_ISSUED, actor=None, object_type="user",
                 object_id=username, detail={"role": role, "username": username})
    return token
