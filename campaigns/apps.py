from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = _("Campaigns")


    def ready(self):
        # Campaign contacts on the SMS and push gateway get their text from the campaign's
        # script (outreach renders nothing itself: it may not import campaigns).
        from outreach.channels.render import register_renderer

        from .launch import contacts_render

        register_renderer("campaign", contacts_render)
        # Email steps go through the one email dispatcher (outreach.email), as newsletters do.
        from .email import register

        register()
