from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class TradingDayOverride(models.Model):
    """An admin's correction of the trading calendar for one day: the official holiday
    schedule is published a year at a time (outreach.calendar), and exchanges sometimes close
    for other reasons. A row wins over the published calendar for its day."""

    day = models.DateField(_("day"), unique=True)
    is_trading_day = models.BooleanField(_("trading day"))
    note = models.CharField(_("note"), max_length=200, blank=True,
                            help_text=_("Why, e.g. the exchange's notice."))
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("changed by"),
                                   null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    changed_at = models.DateTimeField(_("changed at"), auto_now=True)

    class Meta:
        ordering = ["day"]
        verbose_name = _("trading calendar correction")
        verbose_name_plural = _("trading calendar corrections")

    def __str__(self) -> str:
        return f"{self.day.isoformat()} {'+' if self.is_trading_day else '-'}"
