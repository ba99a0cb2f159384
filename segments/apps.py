from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SegmentsConfig(AppConfig):
    name = "segments"
    verbose_name = _("Segments")

    def ready(self) -> None:
        from clients.scoring.signals import scoring_run_succeeded

        from .services import segments_after_scoring

        scoring_run_succeeded.connect(segments_after_scoring,
                                      dispatch_uid="segments_refresh_after_scoring")
