"""Rollups behind the analytics pages and API (docs/architecture.md "Analytics").

Two kinds of table, both derived and regenerable from clients, transactions and scores:

- per-client rows (`ClientFunnel`, `ClientDay`, `ClientMonthActivity`): what one client
  contributes, kept so that a refresh can take a touched client's old contribution back out
  of the aggregates exactly before adding the new one;
- aggregates additive over (branch, RM, tier) (`DailyFigures`, `CohortActivity`): a filter by
  branch, RM or tier is a sum over a few thousand rows;
- the same per segment, branch and tier (`SegmentDailyFigures`, `SegmentCohortActivity`), with
  the memberships they were computed with (`SegmentMember`): a segment filter is a sum too;
  and per pair of a segment and a persona (`SegmentPairFigures`): the persona comparison
  within a segment filter.

Client ids, branch ids and RM ids are plain integers (no foreign key): a deleted client's rows
must stay until a refresh takes them out of the aggregates, and 0 stands for "none" so that the
aggregates' unique keys (and their ON CONFLICT upserts) work on PostgreSQL and SQLite alike.
Branch, RM and tier are each client's current ones as of the last refresh.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.models import Job

# Clients without an opening date count among the clients from the start of time: their
# "opening" is this day, which no date filter reaches.
UNKNOWN_OPENED = "1900-01-01"


class ClientFunnel(models.Model):
    """One client's dimensions and funnel dates as of the last refresh."""

    client_id = models.BigIntegerField(primary_key=True)
    branch_id = models.BigIntegerField(default=0)
    rm_id = models.BigIntegerField(default=0)
    tier = models.CharField(max_length=12, blank=True)
    opened_on = models.DateField()
    first_funded_on = models.DateField(null=True)
    aum = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    first_purchase_on = models.DateField(null=True)
    # The second purchase or the first advisory service, whichever came first.
    repeat_on = models.DateField(null=True)

    class Meta:
        indexes = [models.Index(fields=["opened_on"], name="an_funnel_opened"),
                   models.Index(fields=["rm_id", "opened_on"], name="an_funnel_rm"),
                   models.Index(fields=["branch_id", "opened_on"], name="an_funnel_branch")]

    def __str__(self):
        return f"{self.client_id} opened {self.opened_on}"


class ClientDay(models.Model):
    """A client's purchases on one day, and the change in their being active that day: +1 on
    the first day of a run of activity, -1 on the day after it ends (an active client has a
    purchase in the 30 days ending on the day). Rows with no purchase carry only the -1."""

    id = models.BigAutoField(primary_key=True)
    client_id = models.BigIntegerField()
    day = models.DateField()
    purchases = models.IntegerField(default=0)
    amount = models.DecimalField(max_digits=20, decimal_places=2, default=0)
    revenue = models.DecimalField(max_digits=20, decimal_places=2, default=0)
    active_delta = models.SmallIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client_id", "day"],
                                               name="an_client_day_unique")]

    def __str__(self):
        return f"{self.client_id} {self.day}"


class ClientMonthActivity(models.Model):
    """A client's purchases in one calendar month (only months with a purchase)."""

    id = models.BigAutoField(primary_key=True)
    client_id = models.BigIntegerField()
    month = models.DateField(help_text="first day of the month")
    purchases = models.IntegerField(default=0)
    amount = models.DecimalField(max_digits=20, decimal_places=2, default=0)
    revenue = models.DecimalField(max_digits=20, decimal_places=2, default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client_id", "month"],
                                               name="an_client_month_unique")]
        indexes = [models.Index(fields=["month"], name="an_client_month_month")]

    def __str__(self):
        return f"{self.client_id} {self.month:%Y-%m}"


class DailyMeasures(models.Model):
    """What a day adds up, per the keys of the table: accounts opened (those since funded,
    their AUM), purchases, amount, revenue and the net change in active clients."""

    new_accounts = models.IntegerField(default=0)
    new_funded = models.IntegerField(default=0)
    new_aum = models.DecimalField(max_digits=22, decimal_places=2, default=0)
    purchases = models.IntegerField(default=0)
    amount = models.DecimalField(max_digits=22, decimal_places=2, default=0)
    revenue = models.DecimalField(max_digits=22, decimal_places=2, default=0)
    active_delta = models.IntegerField(default=0)

    class Meta:
        abstract = True


class ClientDims(models.Model):
    """The clients' branch, RM and value tier (as of the last refresh), 0/"" for none."""

    branch_id = models.BigIntegerField(default=0)
    rm_id = models.BigIntegerField(default=0)
    tier = models.CharField(max_length=12, blank=True)

    class Meta:
        abstract = True


class DailyFigures(ClientDims, DailyMeasures):
    """Per day and (branch, RM, tier)."""

    id = models.BigAutoField(primary_key=True)
    day = models.DateField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "branch_id", "rm_id", "tier"],
                                               name="an_daily_unique")]
        indexes = [models.Index(fields=["rm_id", "day"], name="an_daily_rm"),
                   models.Index(fields=["branch_id", "day"], name="an_daily_branch")]

    def __str__(self):
        return f"{self.day} {self.branch_id}/{self.rm_id}/{self.tier}"


class DailyBranchFigures(DailyMeasures):
    """DailyFigures summed over RM and tier: what an unfiltered or branch-filtered page reads
    (a few rows per day instead of one per RM and tier)."""

    id = models.BigAutoField(primary_key=True)
    day = models.DateField()
    branch_id = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["day", "branch_id"],
                                               name="an_daily_branch_unique")]

    def __str__(self):
        return f"{self.day} {self.branch_id}"


class SegmentDims(models.Model):
    """The dimensions of the segment figures: branch and value tier, not the RM (one per
    thousand clients, it would leave nearly one row per member and day; a segment filter
    within an RM's book reads the few members' per-client rows instead)."""

    segment_id = models.BigIntegerField()
    branch_id = models.BigIntegerField(default=0)
    tier = models.CharField(max_length=12, blank=True)

    class Meta:
        abstract = True


class SegmentDailyFigures(SegmentDims, DailyMeasures):
    """DailyFigures of one segment's members (as of the last refresh: `SegmentMember`), per
    branch and tier: what a segment filter and the segment comparison read, instead of the
    members' per-client rows."""

    id = models.BigAutoField(primary_key=True)
    day = models.DateField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["segment_id", "day", "branch_id", "tier"],
                                               name="an_segment_daily_unique")]

    def __str__(self):
        return f"{self.segment_id} {self.day} {self.branch_id}/{self.tier}"


class SegmentPairFigures(SegmentDims, DailyMeasures):
    """DailyFigures of the clients in both a segment (`segment_id`) and a persona (`other_id`,
    another segment), per branch and tier: the persona comparison within a segment filter
    reads these instead of the filter's members' per-client rows. Kept for every segment
    against the personas only (a client is in a few personas, so the pairs grow with the
    memberships, not with their square); a segment with itself is `SegmentDailyFigures`."""
    id = models.BigAutoField(primary_key=True)
    other_id = models.BigIntegerField()
    day = models.DateField()

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["segment_id", "other_id", "day", "branch_id", "tier"],
            name="an_segment_pair_unique")]

    def __str__(self):
        return f"{self.segment_id}&{self.other_id} {self.day} {self.branch_id}/{self.tier}"


class CohortCount(models.Model):
    """Clients opened in `cohort` (a month) with a purchase in `month`, per the keys of the
    table."""

    id = models.BigAutoField(primary_key=True)
    cohort = models.DateField()
    month = models.DateField()
    clients = models.IntegerField(default=0)

    class Meta:
        abstract = True


class CohortActivity(ClientDims, CohortCount):
    """Clients opened in `cohort` (a month) with a purchase in `month`, per (branch, RM, tier)."""

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["cohort", "month", "branch_id", "rm_id", "tier"], name="an_cohort_unique")]
        indexes = [models.Index(fields=["rm_id", "cohort"], name="an_cohort_rm"),
                   models.Index(fields=["branch_id", "cohort"], name="an_cohort_branch")]

    def __str__(self):
        return f"{self.cohort:%Y-%m} {self.month:%Y-%m} {self.branch_id}/{self.rm_id}/{self.tier}"


class CohortBranch(CohortCount):
    """CohortActivity summed over RM and tier."""

    branch_id = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["cohort", "month", "branch_id"],
                                               name="an_cohort_branch_unique")]

    def __str__(self):
        return f"{self.cohort:%Y-%m} {self.month:%Y-%m} {self.branch_id}"


class SegmentCohortActivity(SegmentDims, CohortCount):
    """CohortActivity of one segment's members (as of the last refresh), per branch and tier."""

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["segment_id", "cohort", "month", "branch_id", "tier"],
            name="an_segment_cohort_unique")]

    def __str__(self):
        return f"{self.segment_id} {self.cohort:%Y-%m} {self.month:%Y-%m}"


class SegmentMember(models.Model):
    """The segment memberships the segment figures were last computed with: a refresh moves
    the figures of the pairs that joined or left since, and the analytics pages filter by
    segment on these (so every figure on a page is as of the same refresh)."""

    id = models.BigAutoField(primary_key=True)
    segment_id = models.BigIntegerField()
    client_id = models.BigIntegerField()
    # The segment is a persona (fixed for a segment's life): its pairs with the client's other
    # segments are in `SegmentPairFigures`. Stored so that a refresh takes out exactly the
    # pairs it put in, even of a segment deleted since.
    persona = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client_id", "segment_id"],
                                               name="an_segment_member_unique")]
        indexes = [models.Index(fields=["segment_id", "client_id"], name="an_segment_member_seg")]

    def __str__(self):
        return f"{self.segment_id}:{self.client_id}"


class TouchedClient(models.Model):
    """Work table of a refresh: the client ids it is bringing up to date."""

    client_id = models.BigIntegerField(primary_key=True)

    def __str__(self):
        return str(self.client_id)


class RefreshKind(models.TextChoices):
    FULL = "full", _("Full rebuild")
    INCREMENTAL = "incremental", _("Incremental")


class AnalyticsRefresh(Job):
    """One refresh of the rollups: a full rebuild (by client id chunks, resumable) or an
    incremental one (the clients touched since the last refresh)."""

    kind = models.CharField(_("kind"), max_length=12, choices=RefreshKind.choices)
    trigger = models.CharField(_("started from"), max_length=20, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("by"), null=True,
                                   blank=True, on_delete=models.SET_NULL, related_name="+")
    as_of = models.DateField(_("figures as of"), null=True, blank=True)
    # The last transaction id the refresh has read (ids only grow): the next incremental
    # refresh takes the clients of transactions above it as touched.
    txn_watermark = models.BigIntegerField(default=0)
    # A full rebuild: the tables were emptied, and chunks of client ids below `next_client_id`
    # are done (a re-run after a killed worker resumes there).
    phase = models.CharField(max_length=12, blank=True)
    next_client_id = models.BigIntegerField(default=0)
    touched = models.PositiveIntegerField(_("clients refreshed"), default=0)
    timings = models.JSONField(_("timings (s)"), default=dict, blank=True)
    heartbeat_at = models.DateTimeField(_("last sign of life"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("analytics refresh")
        verbose_name_plural = _("analytics refreshes")
        constraints = [models.UniqueConstraint(fields=["status"],
                                               condition=Q(status__in=["queued", "running"]),
                                               name="analytics_one_active_refresh")]

    def __str__(self):
        return f"{self.kind} {self.status} ({self.created_at:%Y-%m-%d %H:%M})"
