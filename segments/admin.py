from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from core.errors import ApplicationError

from .models import Segment, SegmentRefresh, SegmentRuleVersion
from .services import segment_refresh_start


class RuleVersionInline(admin.TabularInline):
    model = SegmentRuleVersion
    extra = 0
    can_delete = False
    readonly_fields = ["version", "rule", "created_at", "created_by"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ["code", "name_zh", "name_en", "kind", "size", "refreshed_at", "rule_version",
                    "is_system", "is_active"]
    list_filter = ["kind", "is_system", "is_active"]
    search_fields = ["code", "name_zh", "name_en"]
    # Rules change through the services (validation, versions): read-only here.
    readonly_fields = ["code", "kind", "rule", "rule_version", "size", "refreshed_at",
                       "is_system", "created_by"]
    inlines = [RuleVersionInline]
    actions = ["refresh"]

    @admin.action(description=_("Refresh membership"))
    def refresh(self, request, queryset):
        started = 0
        for segment in queryset:
            try:
                segment_refresh_start(segment=segment, actor=request.user, trigger="admin")
                started += 1
            except ApplicationError as exc:
                self.message_user(request, exc.message, messages.WARNING)
        self.message_user(request, _("%(n)d refreshes queued.") % {"n": started})


@admin.register(SegmentRefresh)
class SegmentRefreshAdmin(admin.ModelAdmin):
    list_display = ["segment", "status", "trigger", "rule_version", "size", "joined", "left",
                    "created_at", "finished_at"]
    list_filter = ["status", "trigger"]
    readonly_fields = [f.name for f in SegmentRefresh._meta.fields]

    def has_add_permission(self, request):
        return False
