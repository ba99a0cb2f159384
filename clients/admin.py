from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.admin import PersonalDataAdminMixin
from core.masking import mask_phone
from core.paginators import EstimatedCountPaginator

from .models import CashFlow, Client, Holding, ImportJob, Interaction, Product, Transaction


class LargeTableAdmin(admin.ModelAdmin):
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50


@admin.register(Client)
class ClientAdmin(PersonalDataAdminMixin, LargeTableAdmin):
    """The list shows the phone masked; opening a client (phone, email, ID in full) is audited."""

    pii_fields = ("phone", "email", "id_number")
    list_display = ("client_no", "name", "masked_phone", "branch", "rm", "status", "risk_level",
                    "aum", "opened_on")
    list_filter = ("status", "risk_level", "investor_type", "branch")
    search_fields = ("=client_no", "name__startswith", "=phone_tail")
    raw_id_fields = ("rm", "branch")
    list_select_related = ("branch", "rm")
    readonly_fields = ("phone_tail", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("client_no", "name", "gender", "birth_date", "phone", "phone_tail",
                           "email", "id_number", "city", "occupation", "industry", "employer",
                           "education", "has_children")}),
        ("Account", {"fields": ("opened_on", "branch", "rm", "status", "source_channel")}),
        ("Investment", {"fields": ("risk_level", "risk_assessed_on", "risk_expires_on",
                                   "investor_type", "aum", "first_funded_on", "last_purchase_on")}),
        ("Consent", {"fields": ("consent_email", "consent_sms", "consent_phone",
                                "consent_updated_at")}),
        (None, {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(description=_("phone"))
    def masked_phone(self, obj):
        return mask_phone(obj.phone)


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("product_code", "name", "product_type", "risk_level", "is_active",
                    "maturity_date")
    list_filter = ("product_type", "risk_level", "is_active")
    search_fields = ("=product_code", "name")


@admin.register(Holding)
class HoldingAdmin(LargeTableAdmin):
    list_display = ("client", "product", "as_of", "quantity", "market_value", "maturity_date")
    raw_id_fields = ("client", "product")
    list_select_related = ("client", "product")
    search_fields = ("=client__client_no",)


@admin.register(Transaction)
class TransactionAdmin(LargeTableAdmin):
    list_display = ("txn_id", "client", "product", "traded_at", "amount", "revenue", "channel")
    raw_id_fields = ("client", "product")
    list_select_related = ("client", "product")
    search_fields = ("=txn_id", "=client__client_no")


@admin.register(CashFlow)
class CashFlowAdmin(LargeTableAdmin):
    """Read-only: cash flows come from the core system (bulk API, import), which also keeps
    the clients' first_funded_on; an edit here would bypass that."""

    list_display = ("flow_id", "client", "at", "kind", "amount")
    list_filter = ("kind",)
    raw_id_fields = ("client",)
    list_select_related = ("client",)
    search_fields = ("=flow_id", "=client__client_no")
    readonly_fields = ("flow_id", "client", "at", "amount", "kind")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Interaction)
class InteractionAdmin(LargeTableAdmin):
    list_display = ("client", "author", "kind", "outcome", "occurred_at")
    list_filter = ("kind", "outcome")
    raw_id_fields = ("client", "author")
    list_select_related = ("client", "author")


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ("created_at", "kind", "original_name", "status", "rows_total",
                    "rows_created", "rows_updated", "error_count", "created_by")
    list_filter = ("kind", "status")
    readonly_fields = [f.name for f in ImportJob._meta.fields]

    def has_add_permission(self, request):
        return False
