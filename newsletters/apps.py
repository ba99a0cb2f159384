from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NewslettersConfig(AppConfig):
    name = "newsletters"
    verbose_name = _("Newsletters")

    def ready(self):
        from . import signals  # noqa: F401 - approval covers products, segments, publications
        from .dispatch.source import register

        register()  # a source of the one email dispatcher (outreach.email)
