"""Value-scoring data: versioned schemes, runs split in chunks, scores kept as history."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.models import Job, JobStatus, TimeStampedModel


class Tier(models.TextChoices):
    GUIDING = "guiding", _("Key guiding client")
    DEVELOPMENT = "development", _("Key development client")
    POTENTIAL = "potential", _("Potential value-add client")
    LONG_TAIL = "long_tail", _("Long-tail client")


class ScoringScheme(models.Model):
    """One published version of the bands, window, thresholds and tier precedence.

    Bounds are the five increasing lower bounds of bands 2..6 (band 1 is below the first);
    a band includes its lower bound and excludes its upper one. A version that a run has used
    is never edited in place: ops publish a new version instead.
    """

    version = models.PositiveIntegerField(_("version"), unique=True)
    window_months = models.PositiveSmallIntegerField(_("window (months)"), default=12)
    amount_bounds = models.JSONField(_("amount band bounds (CNY)"))
    frequency_bounds = models.JSONField(_("frequency band bounds (purchases per month)"))
    benefit_bounds = models.JSONField(_("benefit band bounds (CNY)"))
    high_score = models.PositiveSmallIntegerField(_("'high' means a score of at least"), default=4)
    recent_days = models.PositiveSmallIntegerField(_("'recent' means a purchase within (days)"),
                                                   default=30)
    tier_precedence = models.JSONField(_("tier precedence"))
    note = models.CharField(_("note"), max_length=200, blank=True)
    published_at = models.DateTimeField(_("published at"), auto_now_add=True)
    published_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("published by"),
                                     null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")

    class Meta:
        ordering = ["-version"]
        verbose_name = _("scoring scheme")
        verbose_name_plural = _("scoring schemes")

    def __str__(self):
        return f"v{self.version}"


ScoringRunStatus = JobStatus


class ScoringRun(Job, TimeStampedModel):
    """Scoring of every client for one as-of date under one scheme version."""

    as_of = models.DateField(_("as of"))
    scheme = models.ForeignKey(ScoringScheme, verbose_name=_("scheme"), on_delete=models.PROTECT,
                               related_name="runs")
    trigger = models.CharField(_("started from"), max_length=20, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("by"), null=True,
                                   blank=True, on_delete=models.SET_NULL, related_name="+")
    # Job's progress, named for its unit here.
    progress_done = models.PositiveIntegerField(_("clients done"), default=0)
    progress_total = models.PositiveIntegerField(_("clients"), default=0)
    chunk_count = models.PositiveIntegerField(_("chunks"), default=0)
    chunks_done = models.PositiveIntegerField(_("chunks done"), default=0)
    tier_counts = models.JSONField(_("clients per tier"), default=dict, blank=True)
    timings = models.JSONField(_("timings (s)"), default=dict, blank=True)
    # The window aggregate (one GROUP BY over every client) sits in the staging table
    # scoring_agg_<id> once this is set; chunks read their id range from it.
    aggregated = models.BooleanField(_("window aggregated"), default=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("scoring run")
        verbose_name_plural = _("scoring runs")
        constraints = [
            # Two runs for the same date never run at once.
            models.UniqueConstraint(fields=["as_of"], condition=Q(status__in=list(Job.ACTIVE)),
                                    name="scoring_one_active_run_per_date"),
        ]

    def __str__(self):
        return f"{self.as_of} v{self.scheme_id} {self.status}"


class ScoringChunk(models.Model):
    """A client-id range of a run; done chunks are skipped when a run is resumed."""

    run = models.ForeignKey(ScoringRun, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    id_from = models.BigIntegerField()
    id_to = models.BigIntegerField(help_text="exclusive")
    clients = models.PositiveIntegerField(default=0)
    done = models.BooleanField(default=False)
    seconds = models.FloatField(null=True, blank=True)
    # Seconds spent per phase (aggregate, band, write); the run's timings are their sums.
    timings = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["run", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"],
                                               name="scoring_chunk_unique")]

    def __str__(self):
        return f"run {self.run_id} chunk {self.index} [{self.id_from}, {self.id_to})"


class ClientScore(models.Model):
    """One client's score for one as-of date and scheme version (history is kept)."""

    # No single-column index: the unique (client, scheme, as_of) serves lookups by client.
    # No database constraint either: its deferred check cost ~11 s per million rows written
    # (bench/RESULTS.md), and score rows are only ever written by the engine from client ids it
    # reads in the same transaction. Django's collector still cascades a client's deletion, and
    # clients.demo.demo_wipe truncates this table explicitly.
    client = models.ForeignKey("clients.Client", on_delete=models.CASCADE, related_name="scores",
                               db_index=False, db_constraint=False)
    # Provenance of a derived, regenerable table: no database constraint (cheaper COPY);
    # Django still applies PROTECT / SET_NULL.
    scheme = models.ForeignKey(ScoringScheme, on_delete=models.PROTECT, related_name="+",
                               db_constraint=False, db_index=False)
    run = models.ForeignKey(ScoringRun, null=True, blank=True, on_delete=models.SET_NULL,
                            related_name="+", db_constraint=False)
    as_of = models.DateField(_("as of"))
    amount = models.DecimalField(_("amount bought (CNY)"), max_digits=18, decimal_places=2)
    purchases = models.PositiveIntegerField(_("purchases in window"))
    frequency = models.DecimalField(_("purchases per month"), max_digits=10, decimal_places=4)
    benefit = models.DecimalField(_("revenue to the firm (CNY)"), max_digits=18, decimal_places=2)
    recency_days = models.PositiveIntegerField(_("days since last purchase"), null=True,
                                               blank=True)
    amount_score = models.PositiveSmallIntegerField(_("amount score"))
    frequency_score = models.PositiveSmallIntegerField(_("frequency score"))
    benefit_score = models.PositiveSmallIntegerField(_("benefit score"))
    total_score = models.PositiveSmallIntegerField(_("total score"))
    tier = models.CharField(_("value tier"), max_length=12, choices=Tier.choices)

    class Meta:
        verbose_name = _("client score")
        verbose_name_plural = _("client scores")
        constraints = [
            models.UniqueConstraint(fields=["client", "scheme", "as_of"],
                                    name="score_unique_per_client_scheme_date"),
            models.CheckConstraint(condition=Q(amount_score__gte=1, amount_score__lte=6,
                                               frequency_score__gte=1, frequency_score__lte=6,
                                               benefit_score__gte=1, benefit_score__lte=6),
                                   name="score_bands_1_to_6"),
            models.CheckConstraint(condition=Q(amount__gte=0, benefit__gte=0),
                                   name="score_amounts_non_negative"),
        ]
        # The unique (client, scheme, as_of) serves a client's history. score_asof_total serves
        # lists sorted by the current score: with as_of and scheme fixed (the ScoringCurrent
        # pointer, resolved first), an index scan yields (total_score, client_id) in order, so
        # a page is a LIMIT on it instead of a sort of every scored client.
        indexes = [models.Index(fields=["as_of", "scheme", "tier"], name="score_asof_tier"),
                   models.Index(fields=["as_of", "scheme", "total_score", "client"],
                                name="score_asof_total")]

    def __str__(self):
        return f"{self.client_id} {self.as_of} {self.tier} ({self.total_score})"


class ScoringCurrent(models.Model):
    """The one-row pointer to the (as-of date, scheme) whose scores are current.

    Finishing a run moves this pointer (unless a later date is already current): O(1), not a
    rewrite of a row per client. CurrentScore is a database view over it.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    as_of = models.DateField(_("as of"))
    scheme = models.ForeignKey(ScoringScheme, on_delete=models.PROTECT, related_name="+")
    run = models.ForeignKey(ScoringRun, null=True, blank=True, on_delete=models.SET_NULL,
                            related_name="+")
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("current scores pointer")
        verbose_name_plural = _("current scores pointer")
        constraints = [models.CheckConstraint(condition=Q(id=1), name="scoring_current_singleton")]

    def __str__(self):
        return f"{self.as_of} v{self.scheme_id}"


class CurrentScore(models.Model):
    """The latest successful score of each client: what lists filter and sort by.

    A read-only database view (migration 0006): the ClientScore rows of the (as_of, scheme)
    that ScoringCurrent points at, one per client.
    """

    client = models.OneToOneField("clients.Client", primary_key=True, on_delete=models.DO_NOTHING,
                                  related_name="current_score", db_constraint=False)
    score = models.ForeignKey(ClientScore, on_delete=models.DO_NOTHING, related_name="+",
                              db_constraint=False)
    as_of = models.DateField(_("as of"))
    total_score = models.PositiveSmallIntegerField(_("total score"))
    tier = models.CharField(_("value tier"), max_length=12, choices=Tier.choices)

    class Meta:
        managed = False
        db_table = "clients_currentscore"
        verbose_name = _("current score")
        verbose_name_plural = _("current scores")

    def __str__(self):
        return f"{self.client_id} {self.tier} ({self.total_score})"
