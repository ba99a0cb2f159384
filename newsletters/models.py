"""Newsletters for high-net-worth clients: publications, editions, approval, outbox, feedback."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.models import TimeStampedModel

# The email outbox lives in outreach (one dispatcher for newsletters and campaigns); its names
# are imported here because an edition's deliveries are newsletters' everyday vocabulary.
from outreach.models import (  # noqa: F401
    ContactSource,
    Delivery,
    DeliveryStatus,
    ExclusionReason,
)


class SenderMode(models.TextChoices):
    FIRM = "firm", _("The firm")
    RM = "rm", _("Each client's own RM, with the RM's signature")


class Cadence(models.TextChoices):
    WEEKLY = "weekly", _("Weekly")
    BIWEEKLY = "biweekly", _("Every two weeks")
    MONTHLY = "monthly", _("Monthly")
    QUARTERLY = "quarterly", _("Quarterly")
    AD_HOC = "ad_hoc", _("Ad hoc")


class Publication(TimeStampedModel):
    name = models.CharField(_("name"), max_length=120)
    slug = models.SlugField(_("code"), max_length=64, unique=True)
    description = models.TextField(_("description"), blank=True)
    audience = models.ForeignKey("segments.Segment", verbose_name=_("audience segment"),
                                 on_delete=models.PROTECT, related_name="publications")
    sender_mode = models.CharField(_("sender"), max_length=8, choices=SenderMode.choices,
                                   default=SenderMode.FIRM)
    from_name = models.CharField(_("sender name"), max_length=100)
    from_email = models.EmailField(_("sender address"))
    reply_to = models.EmailField(_("reply-to address"), blank=True,
                                 help_text=_("Replies arrive here and become RM follow-ups."))
    cadence = models.CharField(_("cadence"), max_length=10, choices=Cadence.choices,
                               default=Cadence.WEEKLY)
    tracking_enabled = models.BooleanField(
        _("open and click tracking"), default=False,
        help_text=_("Self-hosted only: no third party ever sees a client."))
    is_active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("created by"),
                                   null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["name"]
        verbose_name = _("publication")
        verbose_name_plural = _("publications")

    def __str__(self):
        return self.name


class EditionStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SUBMITTED = "submitted", _("Submitted for approval")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    SCHEDULED = "scheduled", _("Scheduled")
    SENDING = "sending", _("Sending")
    PAUSED = "paused", _("Paused")
    SENT = "sent", _("Sent")
    CANCELLED = "cancelled", _("Cancelled")


class Edition(TimeStampedModel):
    publication = models.ForeignKey(Publication, verbose_name=_("publication"),
                                    on_delete=models.PROTECT, related_name="editions")
    number = models.PositiveIntegerField(_("number"))
    subject = models.CharField(_("subject"), max_length=200)
    preheader = models.CharField(_("preheader"), max_length=200, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=EditionStatus.choices,
                              default=EditionStatus.DRAFT, db_index=True)
    # Bumped on every content change; approval and the archive name the version they saw.
    content_version = models.PositiveIntegerField(_("content version"), default=1)
    approved_version = models.PositiveIntegerField(_("approved version"), null=True, blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("author"),
                               on_delete=models.PROTECT, related_name="+")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("approved by"),
                                    null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True)
    # What compliance approved (newsletters.approval.edition_approval_snapshot) and its
    # core.approval.snapshot_hash; sending recomputes the hash and refuses on any difference.
    approved_hash = models.CharField(_("approved content hash"), max_length=64, blank=True,
                                     default="")
    approved_snapshot = models.JSONField(_("approved snapshot"), null=True, blank=True)
    review_comment = models.TextField(_("reviewer's comment"), blank=True)
    scheduled_at = models.DateTimeField(_("scheduled for"), null=True, blank=True, db_index=True)
    send_started_at = models.DateTimeField(_("sending started"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    audience_rule_version = models.PositiveIntegerField(_("audience rule version"), null=True,
                                                        blank=True)
    audience_frozen_at = models.DateTimeField(_("audience frozen at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("edition")
        verbose_name_plural = _("editions")
        constraints = [
            models.UniqueConstraint(fields=["publication", "number"],
                                    name="edition_number_unique"),
            models.CheckConstraint(condition=Q(status__in=EditionStatus.values),
                                   name="edition_status_valid"),
        ]

    @property
    def deliveries(self):
        """The edition's rows in the email outbox."""
        return edition_deliveries_of(self.pk)

    def __str__(self):
        return f"{self.publication} #{self.number}: {self.subject}"


def edition_deliveries_of(edition_id: int):
    """The outbox rows of one edition (source newsletter, the edition's id)."""
    return Delivery.objects.filter(source=ContactSource.NEWSLETTER, source_id=edition_id)


def with_editions(deliveries):
    """Attach `.edition` (with its publication) to newsletter deliveries, one query for all:
    the outbox row knows its source by id only (outreach may not import newsletters)."""
    deliveries = [d for d in deliveries if d is not None]
    ids = {d.source_id for d in deliveries if d.source == ContactSource.NEWSLETTER}
    editions = Edition.objects.select_related("publication").in_bulk(ids)
    for delivery in deliveries:
        delivery.edition = editions.get(delivery.source_id)
    return deliveries


class SectionKind(models.TextChoices):
    EDITORIAL = "editorial", _("Editorial / market view")
    RESEARCH = "research", _("Research report")
    HOLDINGS = "holdings", _("Your holdings")
    PICKS = "picks", _("Product picks")
    RM_NOTE = "rm_note", _("Personal note from your RM")


class EditionSection(models.Model):
    """An ordered part of an edition. Editors write Markdown (sanitised), never template code.

    data by kind: research {"title", "summary", "url"}; holdings {"intro", "top_n",
    "notes_by_product": {code: markdown}, "notes_by_type": {product_type: markdown}};
    picks {"product_codes": [...], "notes": {code: markdown}}; rm_note {"fallback": markdown}.
    """

    edition = models.ForeignKey(Edition, on_delete=models.CASCADE, related_name="sections")
    position = models.PositiveSmallIntegerField(_("position"))
    kind = models.CharField(_("kind"), max_length=10, choices=SectionKind.choices)
    title = models.CharField(_("title"), max_length=200, blank=True)
    body = models.TextField(_("text (Markdown)"), blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True)

    class Meta:
        ordering = ["edition", "position"]
        constraints = [models.UniqueConstraint(fields=["edition", "position"],
                                               name="section_position_unique")]

    def __str__(self):
        return f"{self.edition_id}#{self.position} {self.kind}"


class EditionEvent(models.Model):
    """Every status change of an edition: who, when, from what to what, with the comment."""

    edition = models.ForeignKey(Edition, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(auto_now_add=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="+")
    from_status = models.CharField(max_length=10, blank=True)
    to_status = models.CharField(max_length=10)
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["edition", "at", "id"]

    def __str__(self):
        return f"{self.edition_id}: {self.from_status} -> {self.to_status}"


class EditionArchive(models.Model):
    """An edition exactly as sent: content snapshot, audience and versions."""

    edition = models.OneToOneField(Edition, on_delete=models.CASCADE, related_name="archive")
    content_version = models.PositiveIntegerField()
    content = models.JSONField(help_text="subject, preheader, sections as sent")
    template_version = models.CharField(max_length=40)
    audience_segment = models.CharField(max_length=64)
    audience_rule_version = models.PositiveIntegerField(null=True, blank=True)
    recipients = models.PositiveIntegerField(default=0)
    excluded = models.JSONField(default=dict, help_text="counts per exclusion reason")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.edition_id} v{self.content_version}"


class ConsentMethod(models.TextChoices):
    """How a client gave a consent that their RM recorded."""

    PHONE = "phone", _("On a phone call")
    IN_BRANCH = "in_branch", _("In person at the branch")
    SIGNED_FORM = "signed_form", _("Signed form")
    EMAIL = "email", _("By email from the client")


class Suppression(models.Model):
    """Who must not get email: unsubscribed (from one publication or all) or hard-bounced.

    A row is never deleted: a re-subscription the client asks their RM for lifts it (lifted_*),
    and only rows in force (lifted_at empty) keep a client out of the outbox.
    """

    UNSUBSCRIBED, BOUNCED = "unsubscribed", "bounced"
    client = models.ForeignKey("clients.Client", on_delete=models.CASCADE,
                               related_name="email_suppressions")
    publication = models.ForeignKey(Publication, null=True, blank=True, on_delete=models.CASCADE,
                                    help_text="empty = every publication")
    reason = models.CharField(max_length=12, choices=[(UNSUBSCRIBED, _("Unsubscribed")),
                                                      (BOUNCED, _("Bounced"))])
    source_delivery = models.ForeignKey(Delivery, null=True, blank=True,
                                        on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    lifted_at = models.DateTimeField(_("lifted at"), null=True, blank=True)
    lifted_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("lifted by"),
                                  null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    lifted_how = models.CharField(_("consent given"), max_length=12, blank=True,
                                  choices=ConsentMethod.choices)
    lifted_note = models.TextField(_("note"), max_length=1000, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client", "publication", "reason"],
                                    condition=Q(lifted_at__isnull=True),
                                    name="suppression_unique_in_force"),
            models.CheckConstraint(condition=Q(lifted_at__isnull=True) | ~Q(lifted_how=""),
                                   name="suppression_lifted_says_how"),
        ]

    def __str__(self):
        return f"{self.client_id} {self.reason} {self.publication_id or '*'}"


class Feedback(models.Model):
    """A client's rating (1-5) and/or comment on a delivered edition; no login needed."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="feedback")
    rating = models.PositiveSmallIntegerField(_("rating"), null=True, blank=True)
    comment = models.TextField(_("comment"), blank=True, max_length=4000)
    is_reply = models.BooleanField(_("email reply"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(rating__isnull=True)
                                   | Q(rating__gte=1, rating__lte=5),
                                   name="feedback_rating_1_to_5"),
        ]

    def __str__(self):
        return f"{self.delivery_id} {self.rating or '-'}"
