from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = _("Analytics")

    def ready(self) -> None:
        from clients.scoring.signals import scoring_run_succeeded
        from clients.signals import import_succeeded
        from segments.signals import members_changed

        from .services import refresh_after_event

        scoring_run_succeeded.connect(refresh_after_event,
                                      dispatch_uid="analytics_refresh_after_scoring")
        import_succeeded.connect(refresh_after_event,
                                 dispatch_uid="analytics_refresh_after_import")
        members_changed.connect(refresh_after_event,
                                dispatch_uid="analytics_refresh_after_segment_change")
