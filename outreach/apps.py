from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OutreachConfig(AppConfig):
    """What touches a client, shared by newsletters and campaigns (shared/DESIGN.md "Layout").
    So far: the trading calendar and RM tasks (the call list). The contact ledger, contact
    policy and channels (the email outbox among them) come with the campaigns work (#11)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "outreach"
    verbose_name = _("Outreach")

    def ready(self):
        from clients.signals import follow_up_requested
        from segments.rules import trading_calendar_register

        from .calendar import trading_days
        from .services import task_from_follow_up

        follow_up_requested.connect(task_from_follow_up,
                                    dispatch_uid="outreach.task_from_follow_up")
        trading_calendar_register(trading_days)
