"""Segments: personas, value tiers, service levels, rule segments and static lists.

Membership is materialised (SegmentMembership) and refreshed set-based; every save of a rule is a
new SegmentRuleVersion and membership records which version produced it.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import get_language, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from core.models import Job, JobStatus, TimeStampedModel


class SegmentKind(models.TextChoices):
    PERSONA = "persona", _("Persona")
    TIER = "tier", _("Value tier")
    SERVICE_LEVEL = "service_level", _("Service level")
    RULE = "rule", _("Rule segment")
    STATIC = "static", _("Static list")
    SCENARIO = "scenario", pgettext_lazy("segment kind", "Scenario")


class Segment(TimeStampedModel):
    code = models.SlugField(_("code"), max_length=64, unique=True)
    kind = models.CharField(_("kind"), max_length=16, choices=SegmentKind.choices)
    name_zh = models.CharField(_("name (Chinese)"), max_length=100, blank=True)
    name_en = models.CharField(_("name (English)"), max_length=100, blank=True)
    description_zh = models.TextField(_("description (Chinese)"), blank=True)
    description_en = models.TextField(_("description (English)"), blank=True)
    # Current rule (a copy of the latest SegmentRuleVersion.rule) for persona/tier/level/rule kinds.
    rule = models.JSONField(_("rule"), null=True, blank=True)
    rule_version = models.PositiveIntegerField(_("rule version"), default=0)
    # Personas: {"zh-hans": {"traits", "channels", "service"}, "en": {...},
    #            "product_types": ["fixed_income", ...]}
    playbook = models.JSONField(_("playbook"), default=dict, blank=True)
    is_system = models.BooleanField(_("seeded by the product"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    size = models.PositiveIntegerField(_("members"), default=0)
    refreshed_at = models.DateTimeField(_("refreshed at"), null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("created by"),
                                   null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["kind", "code"]
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=SegmentKind.values),
                                   name="segment_kind_valid"),
            models.CheckConstraint(condition=~Q(name_zh="", name_en=""),
                                   name="segment_has_a_name"),
        ]

    def __str__(self):
        return self.name

    @property
    def name(self) -> str:
        if (get_language() or "").startswith("zh"):
            return self.name_zh or self.name_en
        return self.name_en or self.name_zh

    @property
    def description(self) -> str:
        if (get_language() or "").startswith("zh"):
            return self.description_zh or self.description_en
        return self.description_en or self.description_zh


class SegmentRuleVersion(models.Model):
    """Every save of a segment's rule."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField(_("version"))
    rule = models.JSONField(_("rule"))
    created_at = models.DateTimeField(_("saved at"), auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("saved by"),
                                   null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["segment", "-version"]
        constraints = [models.UniqueConstraint(fields=["segment", "version"],
                                               name="segment_rule_version_unique")]

    def __str__(self):
        return f"{self.segment_id} v{self.version}"


class SegmentMembership(models.Model):
    """A client in a segment, as of the last refresh (or added to a static list)."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships")
    client = models.ForeignKey("clients.Client", on_delete=models.CASCADE,
                               related_name="segment_memberships")
    rule_version = models.PositiveIntegerField(_("rule version"), default=0)
    since = models.DateTimeField(_("member since"), auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["segment", "client"],
                                               name="segment_membership_unique")]
        indexes = [models.Index(fields=["client", "segment"], name="membership_client")]

    def __str__(self):
        return f"{self.segment_id}:{self.client_id}"


RefreshStatus = JobStatus


class SegmentRefresh(Job):
    """One refresh of one segment's membership: the job row and its result."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="refreshes")
    trigger = models.CharField(_("started from"), max_length=20, blank=True)
    rule_version = models.PositiveIntegerField(_("rule version"), default=0)
    size = models.PositiveIntegerField(_("members"), null=True, blank=True)
    joined = models.PositiveIntegerField(_("joined"), null=True, blank=True)
    left = models.PositiveIntegerField(_("left"), null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("by"), null=True,
                                   blank=True, on_delete=models.SET_NULL, related_name="+")
    # Written when the work starts and after every chunk: a running refresh whose heartbeat
    # is older than SEGMENT_REFRESH_STALE_SECONDS belongs to a worker that died.
    heartbeat_at = models.DateTimeField(_("last sign of life"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("segment refresh")
        verbose_name_plural = _("segment refreshes")
        indexes = [models.Index(fields=["segment", "-created_at"], name="refresh_segment_time")]
        constraints = [
            models.UniqueConstraint(fields=["segment"],
                                    condition=Q(status__in=list(Job.ACTIVE)),
                                    name="segment_one_active_refresh"),
        ]

    def __str__(self):
        return f"{self.segment_id} {self.status} ({self.created_at:%Y-%m-%d %H:%M})"


class MembershipChange(models.Model):
    """Who joined or left in a refresh (a bounded sample per refresh; counts are on the refresh)."""

    JOINED, LEFT = "joined", "left"
    refresh = models.ForeignKey(SegmentRefresh, on_delete=models.CASCADE, related_name="changes")
    client = models.ForeignKey("clients.Client", on_delete=models.CASCADE, related_name="+")
    change = models.CharField(max_length=6, choices=[(JOINED, _("joined")), (LEFT, _("left"))])

    class Meta:
        indexes = [models.Index(fields=["refresh", "change"], name="change_refresh")]

    def __str__(self):
        return f"{self.refresh_id} {self.change} {self.client_id}"
