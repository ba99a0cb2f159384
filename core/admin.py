from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.translation import gettext_lazy as _

from .models import AuditAction, AuditLog, Branch, User
from .paginators import EstimatedCountPaginator
from .services import audit_record


class PersonalDataAdminMixin:
    """For the admin of a model that holds clients' personal data (phone, email, ID number).

    The admin shows those in full — an administrator corrects them — so opening a record is a
    `pii_viewed` audit row, one per page shown (a re-shown form after an error counts again),
    as when the client's own RM opens the client page. Lists must show such fields masked
    (core.masking) or not at all.
    """

    pii_fields: tuple[str, ...] = ()

    def pii_client_no(self, obj) -> str:
        return obj.client_no

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        obj = (getattr(response, "context_data", None) or {}).get("original")
        if response.status_code == 200 and obj is not None:
            audit_record(action=AuditAction.PII_VIEWED, actor=request.user, object_type="client",
                         object_id=self.pii_client_no(obj), request=request,
                         detail={"fields": list(self.pii_fields), "via": "admin"})
        return response


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    fieldsets = BaseUserAdmin.fieldsets + (
        (_("Brokerage"), {"fields": ("display_name", "branch", "is_service_account")}),
    )
    list_display = ("username", "display_name", "branch", "is_service_account", "is_active")
    list_filter = ("groups", "branch", "is_service_account", "is_active")
    list_select_related = ("branch",)


@admin.register(Branch)
class BranchAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "city")
    search_fields = ("code", "name", "city")


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    paginator = EstimatedCountPaginator  # millions of rows: no exact COUNT(*) per page
    show_full_result_count = False
    list_display = ("at", "actor_username", "action", "object_type", "object_id", "ip")
    list_filter = ("action",)
    search_fields = ("actor_username", "object_id")
    date_hierarchy = "at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
