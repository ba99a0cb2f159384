from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True


class Role(models.TextChoices):
    """Roles are Django groups of these names; a user holds one."""

    RM = "rm", _("Relationship manager")
    BRANCH_MANAGER = "branch_manager", _("Branch manager")
    OPS = "ops", _("Operations")
    COMPLIANCE = "compliance", _("Compliance")
    ADMIN = "admin", _("Administrator")


class JobStatus(models.TextChoices):
    """Status of every long job row (imports, scoring runs, segment refreshes)."""

    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")


def percent_of(done: int, total: int) -> int:
    """Whole percent of `done` out of `total` for a progress bar: 0 when there is no total yet,
    never above 100 (a counter can overshoot a total estimated up front)."""
    return min(100, 100 * done // total) if total else 0


class Job(models.Model):
    """A long job's row (import, scoring run, segment refresh): what pages poll and the API shows.

    Progress counts whatever unit the job splits its work into (rows, clients, chunks).
    """

    ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)

    status = models.CharField(_("status"), max_length=10, choices=JobStatus.choices,
                              default=JobStatus.QUEUED, db_index=True)
    progress_done = models.PositiveIntegerField(_("done"), default=0)
    progress_total = models.PositiveIntegerField(_("total"), default=0)
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def is_active(self) -> bool:
        """Queued or running: a page keeps polling it and no second one may start."""
        return self.status in self.ACTIVE

    @property
    def percent_done(self) -> int:
        if self.status == JobStatus.SUCCEEDED:
            return 100
        return percent_of(self.progress_done, self.progress_total)

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish; None until both are known."""
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class Branch(TimeStampedModel):
    code = models.CharField(_("branch code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)
    city = models.CharField(_("city"), max_length=50, blank=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("branch")
        verbose_name_plural = _("branches")

    def __str__(self):
        return f"{self.name} ({self.code})"


class User(AbstractUser):
    """Staff user (RM, branch manager, ops, compliance, admin) or an internal system's account."""

    branch = models.ForeignKey(
        Branch,
        verbose_name=_("branch"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="staff",
    )
    display_name = models.CharField(_("display name"), max_length=100, blank=True)
    is_service_account = models.BooleanField(
        _("service account"),
        default=False,
        help_text=_("An internal system that uses the API with a token."),
    )

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self):
        return self.display_name or self.get_full_name() or self.username

    @property
    def role(self) -> str | None:
        from .access import role_of

        return role_of(self)


class AuditAction(models.TextChoices):
    LOGIN = "login", _("Login")
    LOGIN_FAILED = "login_failed", _("Failed login")
    LOGOUT = "logout", _("Logout")
    ACCESS_DENIED = "access_denied", _("Access denied")
    PII_VIEWED = "pii_viewed", _("Personal data viewed in full")
    EXPORT = "export", _("Export")
    IMPORT = "import", _("Import")
    TOKEN_ISSUED = "token_issued", _("API token issued")
    NEWSLETTER_UNSUBSCRIBE = "newsletter_unsubscribe", _("Newsletter unsubscribe")
    NEWSLETTER_RESUBSCRIBE = "newsletter_resubscribe", _("Newsletter re-subscription")
    LOGIN_LOCKED_OUT = "login_locked_out", _("Login locked out")
    LOCKOUT_CLEARED = "lockout_cleared", _("Lockout cleared")
    SUBMITTED = "submitted", pgettext_lazy("audit event", "Submitted for approval")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    APPROVAL_REVOKED = "approval_revoked", _("Approval withdrawn by a change")
    SCHEDULED = "scheduled", _("Scheduled")
    SENT = "sent", _("Sending started")
    DISPATCH_CONTROLLED = "dispatch_controlled", _("Sending paused, resumed or cancelled")
    TEST_SENT = "test_sent", _("Test message sent")
    SEGMENT_SAVED = "segment_saved", _("Segment saved")
    SEGMENT_DELETED = "segment_deleted", _("Segment deleted")
    SCHEME_PUBLISHED = "scheme_published", _("Scoring scheme published")
    SCORING_STARTED = "scoring_started", _("Scoring run started")
    INTERACTION_LOGGED = "interaction_logged", _("Interaction recorded")
    PHRASES_CHANGED = "phrases_changed", _("Forbidden phrases changed")
    SETTINGS_CHANGED = "settings_changed", _("Settings changed")
    CONSENT_CHANGED = "consent_changed", _("Consent changed")
    CAMPAIGN_SAVED = "campaign_saved", _("Campaign saved")
    CAMPAIGN_DELETED = "campaign_deleted", _("Campaign deleted")
    LAUNCHED = "launched", _("Campaign launched")


class AuditLog(models.Model):
    """Append-only record of who did what, when and from where."""

    at = models.DateTimeField(_("at"), auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        User, verbose_name=_("actor"), null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_username = models.CharField(_("username"), max_length=150, blank=True)
    action = models.CharField(_("action"), max_length=32, choices=AuditAction.choices)
    object_type = models.CharField(_("object type"), max_length=64, blank=True)
    object_id = models.CharField(_("object"), max_length=128, blank=True)
    path = models.CharField(_("path"), max_length=512, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=256, blank=True)
    detail = models.JSONField(_("detail"), default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("audit log entry")
        verbose_name_plural = _("audit log")
        indexes = [
            models.Index(fields=["action", "-at"]),
            models.Index(fields=["actor", "-at"]),
            # "who saw or changed client X / edition N": the audit page's object filter
            models.Index(fields=["object_id", "-at"], name="core_audit_object_at"),
        ]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_username} {self.action} {self.object_id}"
