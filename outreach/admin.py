from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.admin import PersonalDataAdminMixin

from .calendar import calendar_known
from .models import Delivery, TradingDayOverride
from .services import trading_day_override_delete, trading_day_override_set


@admin.register(TradingDayOverride)
class TradingDayOverrideAdmin(admin.ModelAdmin):
    """Corrections of the trading calendar; every change goes through the service (audited)."""

    list_display = ("day", "is_trading_day", "note", "official_schedule_known", "changed_by",
                    "changed_at")
    list_filter = ("is_trading_day",)
    date_hierarchy = "day"
    fields = ("day", "is_trading_day", "note")
    search_fields = ("note",)

    @admin.display(boolean=True, description=_("official schedule known"))
    def official_schedule_known(self, obj):
        return calendar_known(obj.day)

    def save_model(self, request, obj, form, change):
        if change and "day" in form.changed_data:
            trading_day_override_delete(override=TradingDayOverride.objects.get(pk=obj.pk),
                                        actor=request.user)
            obj.pk = None
        saved = trading_day_override_set(day=obj.day, is_trading_day=obj.is_trading_day,
                                         note=obj.note, actor=request.user)
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        trading_day_override_delete(override=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            trading_day_override_delete(override=obj, actor=request.user)


@admin.register(Delivery)
class DeliveryAdmin(PersonalDataAdminMixin, admin.ModelAdmin):
    """Opening a delivery shows the client's address in full: audited (pii_viewed)."""

    pii_fields = ("to_email",)

    def pii_client_no(self, obj):
        return obj.client.client_no

    list_display = ["source", "source_id", "step", "client", "status", "exclusion_reason",
                    "sent_at", "attempts"]
    list_filter = ["source", "status", "exclusion_reason"]
    search_fields = ["client__client_no", "message_id"]
    raw_id_fields = ["client"]
    readonly_fields = ["token", "message_id", "context"]
