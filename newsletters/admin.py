from django import forms
from django.contrib import admin

from outreach.models import ForbiddenPhrase

from .forms import HeaderFieldsChecked
from .models import Edition, EditionEvent, EditionSection, Publication
from .services import forbidden_phrases_audit


class PublicationAdminForm(HeaderFieldsChecked, forms.ModelForm):
    class Meta:
        model = Publication
        fields = ["name", "slug", "description", "audience", "sender_mode", "from_name",
                  "from_email", "reply_to", "cadence", "tracking_enabled", "is_active"]


@admin.register(Publication)
class PublicationAdmin(admin.ModelAdmin):
    form = PublicationAdminForm
    list_display = ["name", "slug", "audience", "sender_mode", "cadence", "tracking_enabled",
                    "is_active"]
    list_filter = ["sender_mode", "cadence", "is_active"]
    search_fields = ["name", "slug"]


class SectionInline(admin.TabularInline):
    model = EditionSection
    extra = 0
    fields = ["position", "kind", "title"]
    readonly_fields = fields
    can_delete = False


class EventInline(admin.TabularInline):
    model = EditionEvent
    extra = 0
    fields = ["at", "actor", "from_status", "to_status", "comment"]
    readonly_fields = fields
    can_delete = False


@admin.register(Edition)
class EditionAdmin(admin.ModelAdmin):
    """Read-only: editions change only through the services (approval rules, events)."""

    list_display = ["publication", "number", "subject", "status", "content_version",
                    "approved_version", "scheduled_at", "sent_at"]
    list_filter = ["status", "publication"]
    search_fields = ["subject"]
    inlines = [SectionInline, EventInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ForbiddenPhrase)
class ForbiddenPhraseAdmin(admin.ModelAdmin):
    """Admins only (the admin site); every change is audited as PHRASES_CHANGED like the page.
    A phrase is added or removed, never rewritten in place."""

    list_display = ["phrase", "is_builtin", "created_by", "created_at"]
    readonly_fields = ["is_builtin", "created_by", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "phrase"] if obj is not None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        if not change:
            forbidden_phrases_audit(actor=request.user, added=[obj.phrase])

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        forbidden_phrases_audit(actor=request.user, removed=[obj.phrase])

    def delete_queryset(self, request, queryset):
        removed = list(queryset.filter(is_builtin=False).values_list("phrase", flat=True))
        queryset.filter(is_builtin=False).delete()
        if removed:
            forbidden_phrases_audit(actor=request.user, removed=removed)

    def has_delete_permission(self, request, obj=None):
        return obj is None or not obj.is_builtin
