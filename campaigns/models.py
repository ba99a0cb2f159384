from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from core.models import Job, TimeStampedModel


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", pgettext_lazy("campaign status", "Draft")
    SUBMITTED = "submitted", pgettext_lazy("campaign status", "Submitted for approval")
    APPROVED = "approved", pgettext_lazy("campaign status", "Approved")
    REJECTED = "rejected", pgettext_lazy("campaign status", "Rejected")
    SCHEDULED = "scheduled", pgettext_lazy("campaign status", "Launching")
    RUNNING = "running", pgettext_lazy("campaign status", "Running")
    PAUSED = "paused", pgettext_lazy("campaign status", "Paused")
    COMPLETED = "completed", pgettext_lazy("campaign status", "Completed")
    CANCELLED = "cancelled", pgettext_lazy("campaign status", "Cancelled")


class Scenario(models.TextChoices):
    """What makes the contact natural (shared/DOMAIN.md "Scenarios")."""

    AD_HOC = "ad_hoc", _("Ad hoc")
    ZOMBIE_ACCOUNT = "zombie_account", _("Zombie account")
    DORMANT = "dormant", pgettext_lazy("scenario", "Dormant")
    CASH_INFLOW = "cash_inflow", _("Large cash inflow")
    PRODUCT_MATURITY = "product_maturity", _("Product maturity")
    RISK_EXPIRING = "risk_expiring", _("Risk assessment expiring")
    BIRTHDAY = "birthday", _("Birthday")
    HOLIDAY = "holiday", _("Holiday greeting")
    ONBOARDING = "onboarding", _("Onboarding")
    MARKET_TURBULENCE = "market_turbulence", _("Market turbulence")


# Service messages required by regulation: exempt from the caps, but counted.
EXEMPT_SCENARIOS = (Scenario.RISK_EXPIRING,)


class GoalMetric(models.TextChoices):
    CONVERSION = "conversion", _("Bought an offered product")
    FUNDED = "funded", _("Funded the account")
    NET_INFLOW = "net_inflow", _("Net inflow")
    AUM = "aum", _("Assets under management")
    RESPONSE = "response", _("Responded")


class ExclusionReason(models.TextChoices):
    """Why a client of the audience is on the target list but not contacted (shared/API.md)."""

    CLOSED = "closed", _("Account closed")
    NO_CONSENT = "no_consent", _("No consent for the channel")
    UNSUBSCRIBED = "unsubscribed", _("Opted out of the channel")
    NO_CONTACT = "no_contact", _("No contact details for the channel")
    RISK_EXPIRED = "risk_expired", _("Risk assessment missing or expired")
    UNSUITABLE = "unsuitable", _("Offered products above the client's risk level")
    HIGHER_PRIORITY = "higher_priority", _("Taken by a higher-priority campaign")
    CAPPED = "capped", _("Contact cap reached")


CONTROL = "control"
# An always-on campaign's member goes through the steps once per entry: the ledger numbers
# the contact of step i in entry r as r * STEP_STRIDE + i (its unique (source, id, step,
# client) then holds per entry). Launched campaigns have one entry: step number = index.
STEP_STRIDE = 10


def step_index(step_no: int) -> int:
    """The index in `Campaign.steps` of a ledger contact's step number."""
    return step_no % STEP_STRIDE


class Campaign(TimeStampedModel):
    """A campaign (shared/DOMAIN.md "Campaigns"): goal, audience, products, steps with script
    variants, a holdout. What it says and who gets it is validated by campaigns.services
    (campaign_validate) and frozen by approval (campaigns.approval)."""

    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(pgettext_lazy("campaign", "Name"), max_length=200)
    scenario = models.CharField(_("scenario"), max_length=20, choices=Scenario.choices,
                                default=Scenario.AD_HOC)
    goal = models.JSONField(_("goal"), default=dict)
    audience = models.JSONField(_("audience"), default=dict)
    products = models.JSONField(_("products offered"), default=list, blank=True)
    priority = models.PositiveSmallIntegerField(_("priority"), default=5)
    holdout_pct = models.PositiveSmallIntegerField(_("holdout (%)"), default=10)
    starts_at = models.DateTimeField(_("starts"), null=True, blank=True)
    ends_at = models.DateTimeField(_("ends"), null=True, blank=True)
    always_on = models.BooleanField(_("always on"), default=False)
    # Always on: a client whose journey is over enters again only this many days after their
    # last entry (campaigns.journeys).
    reentry_cooldown_days = models.PositiveSmallIntegerField(_("re-entry cooldown (days)"),
                                                             default=30)
    journey_day = models.DateField(_("journey advanced on"), null=True, blank=True)
    # Market turbulence: the affected product types; RM calls go first to the clients with
    # the most money in them (campaigns.launch._calls_create).
    exposure_product_types = models.JSONField(_("affected product types"), default=list,
                                              blank=True)
    steps = models.JSONField(_("steps"), default=list)
    status = models.CharField(_("status"), max_length=10, choices=CampaignStatus.choices,
                              default=CampaignStatus.DRAFT, db_index=True)
    content_version = models.PositiveIntegerField(_("content version"), default=1)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("author"),
                               on_delete=models.PROTECT, related_name="+")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("approved by"),
                                    null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="+")
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True)
    approved_hash = models.CharField(_("approved content hash"), max_length=64, blank=True)
    approved_snapshot = models.JSONField(_("approved snapshot"), null=True, blank=True)
    review_comment = models.TextField(_("reviewer's comment"), blank=True)
    launched_at = models.DateTimeField(_("launched at"), null=True, blank=True)
    # The trading day step 0 runs on; later steps count their delays in trading days from it.
    launch_day = models.DateField(_("launch day"), null=True, blank=True)
    steps_done = models.PositiveSmallIntegerField(_("steps done"), default=0)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        constraints = [
            models.CheckConstraint(condition=Q(status__in=CampaignStatus.values),
                                   name="campaign_status_valid"),
            models.CheckConstraint(condition=Q(priority__gte=1, priority__lte=9),
                                   name="campaign_priority_1_to_9"),
            models.CheckConstraint(condition=Q(holdout_pct__lte=50),
                                   name="campaign_holdout_at_most_half"),
        ]

    def __str__(self):
        return f"{self.name} ({self.code})"

    @property
    def arms(self) -> list[str]:
        """control (when there is a holdout) and the first step's variant codes."""
        variants = [v["code"] for v in (self.steps[0]["variants"] if self.steps else [])]
        return ([CONTROL] if self.holdout_pct else []) + variants


class CampaignEvent(models.Model):
    """The campaign's own history (who submitted, approved, launched ...), beside the audit
    log, for its page."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(auto_now_add=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=20)
    comment = models.TextField(blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{self.campaign_id} {self.action}"


class CampaignMember(models.Model):
    """The target list frozen at launch: one row per audience client, with its arm or the
    reason it was excluded (decided before randomisation). A member whose contacts a
    higher-priority campaign took back later (campaigns.launch) records "higher_priority"
    beside the arm it had been drawn for."""

    # No index of its own: the unique (campaign, client) serves lookups by campaign. No
    # database constraint either: its deferred check ran once per row against the same
    # campaign row (~11 s per million members, bench/RESULTS.md "campaigns"), and the rows are
    # written only by the launch, under the lock of a campaign row that then exists until
    # the list does -- a launched campaign is cancelled, never deleted (campaign_delete), and
    # Django's collector still cascades a deletion.
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="members",
                                 db_index=False, db_constraint=False)
    # The client's constraint stays: clients.demo.demo_wipe empties the client tables with
    # TRUNCATE ... CASCADE, which reaches this table only through it (client ids restart).
    client = models.ForeignKey("clients.Client", on_delete=models.CASCADE,
                               related_name="campaign_memberships")
    tier = models.CharField(_("value tier"), max_length=12, blank=True)
    arm = models.CharField(_("arm"), max_length=16, blank=True)
    exclusion_reason = models.CharField(_("excluded because"), max_length=16,
                                        choices=ExclusionReason.choices, blank=True)
    # The offered product this client is suitable for (the first in the campaign's order).
    product_code = models.CharField(_("offered product"), max_length=32, blank=True)
    entered_at = models.DateTimeField(_("entered at"))
    # The trading day the member's step 0 counts from: the launch day, or for an always-on
    # campaign the day they entered (again: `round` counts the entries, campaigns.journeys).
    entry_day = models.DateField(_("entry day"), null=True, blank=True)
    round = models.PositiveSmallIntegerField(_("entry"), default=0)
    exited_at = models.DateTimeField(_("left the journey at"), null=True, blank=True)

    class Meta:
        verbose_name = _("campaign member")
        verbose_name_plural = _("campaign members")
        constraints = [models.UniqueConstraint(fields=["campaign", "client"],
                                               name="campaign_member_once")]
        # The reads by arm -- results, later steps, the launch's counts, the eligible on the
        # list page -- are of the eligible only: one partial index holds those (a quarter of a
        # typical list) instead of two over every row. The rest of the list is read through
        # the unique (campaign, client).
        indexes = [models.Index(fields=["campaign", "arm"], name="campaign_member_eligible",
                                condition=Q(exclusion_reason=""))]

    def __str__(self):
        return f"{self.campaign_id}:{self.client_id} {self.arm or self.exclusion_reason}"


class CampaignLaunch(Job):
    """The launch job: freeze the target list, assign arms, reserve step 0's contacts. One
    transaction (a killed worker leaves nothing half-done), so progress is by phase."""

    PHASES = ("freeze", "assign", "reserve")

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="launch")
    phase = models.CharField(_("phase"), max_length=10, blank=True)
    counts = models.JSONField(_("counts"), default=dict, blank=True)
    timings = models.JSONField(_("timings (s)"), default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("by"), null=True,
                                   blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = _("campaign launch")
        verbose_name_plural = _("campaign launches")

    def __str__(self):
        return f"launch {self.campaign_id} {self.status}"
