from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from core.models import TimeStampedModel


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


class TaskStatus(models.TextChoices):
    OPEN = "open", _("Open")
    DONE = "done", _("Done")
    CANCELLED = "cancelled", _("Cancelled")


class TaskOutcome(models.TextChoices):
    """What came of a call or a message on the RM's list (shared/API.md "outcomes")."""

    REACHED = "reached", pgettext_lazy("call outcome", "Reached")
    NO_ANSWER = "no_answer", pgettext_lazy("call outcome", "No answer")
    WRONG_NUMBER = "wrong_number", pgettext_lazy("call outcome", "Wrong number")
    INTERESTED = "interested", pgettext_lazy("call outcome", "Interested")
    NOT_INTERESTED = "not_interested", pgettext_lazy("call outcome", "Not interested")
    BOUGHT = "bought", pgettext_lazy("call outcome", "Bought")
    DO_NOT_CALL = "do_not_call", pgettext_lazy("call outcome", "Do not call")


class TaskSource(models.TextChoices):
    NEWSLETTER_COMMENT = "newsletter_comment", _("Newsletter comment")
    NEWSLETTER_REPLY = "newsletter_reply", _("Newsletter reply")
    NEWSLETTER_RATING = "newsletter_rating", _("Low newsletter rating")
    CAMPAIGN = "campaign", _("Campaign")
    FOLLOW_UP = "follow_up", _("Call follow-up")
    MANUAL = "manual", _("Manual")


class RMTask(TimeStampedModel):
    """A follow-up on the RM's list: a client's newsletter comment, reply or low rating, a call's
    "follow up later", one made by hand; campaign calls come next (#11)."""

    client = models.ForeignKey("clients.Client", verbose_name=_("client"), null=True, blank=True,
                               on_delete=models.CASCADE, related_name="tasks")
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("assigned to"),
                                 null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="tasks")
    source = models.CharField(_("source"), max_length=24, choices=TaskSource.choices)
    title = models.CharField(_("title"), max_length=200)
    detail = models.TextField(_("detail"), blank=True)
    status = models.CharField(_("status"), max_length=10, choices=TaskStatus.choices,
                              default=TaskStatus.OPEN, db_index=True)
    due_on = models.DateField(_("due on"), null=True, blank=True)
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    outcome = models.CharField(_("outcome"), max_length=16, choices=TaskOutcome.choices,
                               blank=True)
    outcome_note = models.TextField(_("outcome note"), blank=True)
    outcome_at = models.DateTimeField(_("outcome recorded at"), null=True, blank=True)
    # What created it, e.g. ("newsletters.feedback", 42), so a retry never makes two tasks.
    origin_type = models.CharField(max_length=40, blank=True)
    origin_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["status", "-created_at"]
        verbose_name = _("RM task")
        verbose_name_plural = _("RM tasks")
        # task_due: the home pages' calls due and the team's figures, by assignee and due day.
        indexes = [models.Index(fields=["assignee", "status", "-created_at"], name="task_inbox"),
                   models.Index(fields=["assignee", "due_on"], name="task_due"),
                   models.Index(fields=["client", "-created_at"], name="task_client")]
        constraints = [
            models.UniqueConstraint(fields=["origin_type", "origin_id"],
                                    condition=~models.Q(origin_type=""),
                                    name="task_unique_origin"),
        ]

    def __str__(self):
        return self.title


class Channel(models.TextChoices):
    """The ways a client is contacted (shared/DOMAIN.md "Campaigns")."""

    EMAIL = "email", pgettext_lazy("channel", "Email")
    SMS = "sms", pgettext_lazy("channel", "SMS")
    PUSH = "app_push", pgettext_lazy("channel", "App push")
    WECHAT = "wechat", pgettext_lazy("channel", "WeChat via the RM")
    PHONE = "phone", pgettext_lazy("channel", "Phone call by the RM")


ALL_CHANNELS = "all"


class ContactPolicy(models.Model):
    """The contact policy, one row (shared/DOMAIN.md "Contact policy"): caps per channel (or
    for all channels together) in a rolling window of days, and quiet hours for some channels,
    in Asia/Shanghai time. Read through outreach.selectors.contact_policy_get (the domain's
    defaults until someone saves one), written through outreach.services.contact_policy_set."""

    caps = models.JSONField(_("caps"), default=list)
    quiet_hours = models.JSONField(_("quiet hours"), default=dict)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("changed by"),
                                   null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    updated_at = models.DateTimeField(_("changed at"), auto_now=True)

    class Meta:
        verbose_name = _("contact policy")
        verbose_name_plural = _("contact policy")

    def __str__(self) -> str:
        return str(self._meta.verbose_name)


class ContactSource(models.TextChoices):
    CAMPAIGN = "campaign", _("Campaign")
    NEWSLETTER = "newsletter", _("Newsletter")


class ContactStatus(models.TextChoices):
    """Where one contact stands. PLANNED reserves room under the caps; QUEUED is with its
    channel (the outbox, the gateway, the RM's call list); the rest are outcomes."""

    PLANNED = "planned", pgettext_lazy("contact status", "Planned")
    QUEUED = "queued", pgettext_lazy("contact status", "Queued")
    SENT = "sent", pgettext_lazy("contact status", "Sent")
    DELIVERED = "delivered", pgettext_lazy("contact status", "Delivered")
    RESPONDED = "responded", pgettext_lazy("contact status", "Responded")
    FAILED = "failed", pgettext_lazy("contact status", "Failed")
    CAPPED = "capped", pgettext_lazy("contact status", "Held back by the contact policy")
    SKIPPED = "skipped", pgettext_lazy("contact status", "Skipped")
    CANCELLED = "cancelled", pgettext_lazy("contact status", "Cancelled")


# Contacts that count against the caps: reserved, on their way or made. A failed, capped,
# skipped or cancelled contact never reached the client.
COUNTED_STATUSES = (ContactStatus.PLANNED, ContactStatus.QUEUED, ContactStatus.SENT,
                    ContactStatus.DELIVERED, ContactStatus.RESPONDED)
CONTACTED_STATUSES = (ContactStatus.SENT, ContactStatus.DELIVERED, ContactStatus.RESPONDED)


class Contact(models.Model):
    """The contact ledger: one row per attempt to reach a client on a channel, from any
    campaign step or newsletter send -- "what exactly did we send this client, and why them".
    Caps are counted here (outreach.caps), so every sender shares one count."""

    client = models.ForeignKey("clients.Client", verbose_name=_("client"),
                               on_delete=models.CASCADE, related_name="contacts")
    source = models.CharField(_("source"), max_length=12, choices=ContactSource.choices)
    source_id = models.PositiveIntegerField(_("source id"))
    step = models.PositiveSmallIntegerField(_("step"), default=0)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    variant = models.CharField(_("variant"), max_length=16, blank=True)
    content_version = models.PositiveIntegerField(_("content version"), default=1)
    priority = models.PositiveSmallIntegerField(_("priority"), default=5)
    # Service messages required by regulation: never held back by a cap, but counted.
    exempt = models.BooleanField(_("exempt from caps"), default=False)
    status = models.CharField(_("status"), max_length=10, choices=ContactStatus.choices,
                              default=ContactStatus.PLANNED)
    planned_on = models.DateField(_("planned for"))
    at = models.DateTimeField(_("at"), null=True, blank=True)
    provider_id = models.CharField(_("provider id"), max_length=64, blank=True)
    error = models.CharField(_("error"), max_length=300, blank=True)
    # What exactly went out (SMS and push text as sent; calls: the script on the RM's task).
    title = models.CharField(_("title"), max_length=200, blank=True)
    body = models.TextField(_("text sent"), blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    # A sender's claim on a queued contact; a stale claim (dead worker) is handed back.
    claimed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        constraints = [
            models.UniqueConstraint(fields=["source", "source_id", "step", "client"],
                                    name="contact_once_per_step"),
            models.CheckConstraint(condition=models.Q(status__in=ContactStatus.values),
                                   name="contact_status_valid"),
        ]
        indexes = [
            # Cap counting: a client's contacts around a day.
            models.Index(fields=["client", "planned_on"], name="contact_client_day"),
            models.Index(fields=["source", "source_id", "step", "status"],
                         name="contact_source_step"),
            # The gateway sender's queue: queued SMS and push contacts.
            models.Index(fields=["channel", "next_attempt_at"], name="contact_gateway_due",
                         condition=models.Q(status="queued", channel__in=["sms", "app_push"])),
        ]

    def __str__(self):
        return f"{self.source}:{self.source_id}/{self.step} -> {self.client_id} {self.status}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    RETRY = "retry", _("Waiting to retry")
    FAILED = "failed", _("Failed")
    EXCLUDED = "excluded", _("Excluded")
    CANCELLED = "cancelled", _("Cancelled")


class ExclusionReason(models.TextChoices):
    """Why a newsletter's audience member got no email (campaigns decide theirs at launch and
    record them on the campaign's target list)."""

    NO_CONSENT = "no_consent", _("No email consent")
    UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
    NO_ADDRESS = "no_address", _("No email address")
    BOUNCED = "bounced", _("Bounced before")


class Delivery(models.Model):
    """The email outbox: one row per message to one client, from a newsletter edition or a
    campaign's email step (source, source_id, step), frozen when it is queued. One dispatcher
    sends every row (outreach.email): claimed in chunks, marked sent before the next message
    goes out, so a killed worker repeats at most the one message in flight."""

    # Every index here is paid on each claim and each "sent" mark (status changes, so no HOT
    # update): the source is served by the (source, source_id, status) index, and the unique
    # keys are UniqueConstraints so PostgreSQL gets no LIKE (varchar_pattern_ops) twins that
    # no lookup uses.
    source = models.CharField(_("source"), max_length=12, choices=ContactSource.choices,
                              default=ContactSource.NEWSLETTER)
    source_id = models.PositiveIntegerField(_("source id"))
    step = models.PositiveSmallIntegerField(_("step"), default=0)
    client = models.ForeignKey("clients.Client", on_delete=models.CASCADE,
                               related_name="email_deliveries")
    status = models.CharField(_("status"), max_length=10, choices=DeliveryStatus.choices,
                              default=DeliveryStatus.PENDING)
    exclusion_reason = models.CharField(_("excluded because"), max_length=16,
                                        choices=ExclusionReason.choices, blank=True)
    to_email = models.EmailField(_("to"), blank=True)
    message_id = models.CharField(_("Message-ID"), max_length=200)
    token = models.CharField(max_length=64,
                             help_text="random key of the signed links in this message")
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    clicks = models.PositiveIntegerField(default=0)
    # The personal data the message was rendered from, so it can be shown again exactly as sent.
    context = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        constraints = [
            models.UniqueConstraint(fields=["source", "source_id", "step", "client"],
                                    name="delivery_once_per_step"),
            models.UniqueConstraint(fields=["message_id"], name="delivery_message_id_unique"),
            models.UniqueConstraint(fields=["token"], name="delivery_token_unique"),
            models.CheckConstraint(condition=models.Q(status__in=DeliveryStatus.values),
                                   name="delivery_status_valid"),
        ]
        indexes = [
            models.Index(fields=["source", "source_id", "status"], name="delivery_source_status"),
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due",
                         condition=models.Q(status__in=["pending", "retry"])),
        ]

    def __str__(self):
        return f"{self.source}:{self.source_id}/{self.step}->{self.client_id} {self.status}"


class OptOut(models.Model):
    """A client's opt-out from a channel ("reply TD", an unsubscribe from every marketing
    email): it holds for every campaign at once."""

    client = models.ForeignKey("clients.Client", verbose_name=_("client"),
                               on_delete=models.CASCADE, related_name="opt_outs")
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    source = models.CharField(_("source"), max_length=40, blank=True)
    created_at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        verbose_name = _("opt-out")
        verbose_name_plural = _("opt-outs")
        constraints = [models.UniqueConstraint(fields=["client", "channel"],
                                               name="optout_once_per_channel")]

    def __str__(self):
        return f"{self.client_id} {self.channel}"


class ForbiddenPhrase(models.Model):
    """Phrases regulators forbid in financial marketing; they block submission."""

    phrase = models.CharField(_("phrase"), max_length=100, unique=True)
    is_builtin = models.BooleanField(_("built in"), default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["phrase"]
        verbose_name = _("forbidden phrase")
        verbose_name_plural = _("forbidden phrases")

    def __str__(self):
        return self.phrase
