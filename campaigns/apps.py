from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = _("Campaigns")

    def ready(self):
        from clients.signals import follow_up_requested

        from .services import task_from_follow_up

        follow_up_requested.connect(task_from_follow_up,
                                    dispatch_uid="campaigns.task_from_follow_up")
