from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OutreachConfig(AppConfig):
    """What touches a client, shared by newsletters and campaigns (shared/DESIGN.md "Layout").
    So far: the trading calendar. The contact ledger, contact policy, channels and RM tasks
    move here with the campaigns work (issue #11)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "outreach"
    verbose_name = _("Outreach")
