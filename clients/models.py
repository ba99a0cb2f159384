from datetime import date, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from core.models import Branch, Job, JobStatus, TimeStampedModel  # noqa: F401 (re-exported)


class Gender(models.TextChoices):
    MALE = "M", _("Male")
    FEMALE = "F", _("Female")


class Occupation(models.TextChoices):
    STUDENT = "student", _("Student")
    HOMEMAKER = "homemaker", _("Homemaker")
    EMPLOYEE = "employee", _("Employee")
    PROFESSIONAL = "professional", _("Professional")
    EXECUTIVE = "executive", _("Executive")
    BUSINESS_OWNER = "business_owner", _("Business owner")
    RETIRED = "retired", _("Retired")
    OTHER = "other", _("Other")


class Industry(models.TextChoices):
    TECHNOLOGY = "technology", _("Technology")
    FINANCE = "finance", _("Finance")
    MANUFACTURING = "manufacturing", _("Manufacturing")
    PUBLIC_SECTOR = "public_sector", _("Public sector")
    EDUCATION = "education", pgettext_lazy("industry", "Education")
    HEALTHCARE = "healthcare", _("Healthcare")
    OTHER = "other", _("Other")


class Education(models.TextChoices):
    HIGH_SCHOOL = "high_school", _("High school or below")
    COLLEGE = "college", _("College")
    BACHELOR = "bachelor", _("Bachelor")
    MASTER = "master", _("Master")
    DOCTORATE = "doctorate", _("Doctorate")


class ClientStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    DORMANT = "dormant", _("Dormant")
    CLOSED = "closed", _("Closed")


class AcquisitionChannel(models.TextChoices):
    BRANCH = "branch", _("Branch counter")
    APP = "app", _("Mobile app")
    WEB = "web", pgettext_lazy("acquisition channel", "Website")
    REFERRAL = "referral", _("Referral")
    BANK = "bank", _("Partner bank")
    OTHER = "other", _("Other")


class ClientRiskLevel(models.TextChoices):
    C1 = "C1", _("C1 conservative")
    C2 = "C2", _("C2 cautious")
    C3 = "C3", _("C3 balanced")
    C4 = "C4", _("C4 growth")
    C5 = "C5", _("C5 aggressive")


class InvestorType(models.TextChoices):
    ORDINARY = "ordinary", _("Ordinary investor")
    PROFESSIONAL = "professional", _("Professional investor")


class ServiceLevel(models.TextChoices):
    MASS = "mass", _("Mass")
    AFFLUENT = "affluent", _("Affluent")
    HIGH_NET_WORTH = "hnw", _("High-net-worth")


def service_level_for(aum) -> str:
    """Service level from AUM; thresholds are settings (DOMAIN.md: 500k / 5M CNY)."""
    aum = aum or 0
    if aum >= settings.SERVICE_LEVEL_HNW_MIN:
        return ServiceLevel.HIGH_NET_WORTH
    if aum >= settings.SERVICE_LEVEL_AFFLUENT_MIN:
        return ServiceLevel.AFFLUENT
    return ServiceLevel.MASS


def service_level_q(level: str, *, prefix: str = "") -> Q:
    """The AUM range of a service level, as a Q usable in any queryset over clients."""
    lo, hi = settings.SERVICE_LEVEL_AFFLUENT_MIN, settings.SERVICE_LEVEL_HNW_MIN
    field = f"{prefix}aum"
    if level == ServiceLevel.MASS:
        return Q(**{f"{field}__lt": lo})
    if level == ServiceLevel.AFFLUENT:
        return Q(**{f"{field}__gte": lo, f"{field}__lt": hi})
    if level == ServiceLevel.HIGH_NET_WORTH:
        return Q(**{f"{field}__gte": hi})
    return Q(pk__in=[])


class Client(TimeStampedModel):
    # basic
    client_no = models.CharField(_("client number"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100, db_index=True)
    gender = models.CharField(_("gender"), max_length=1, choices=Gender.choices, blank=True)
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    phone = models.CharField(_("phone"), max_length=20, blank=True)
    phone_tail = models.CharField(_("phone last 4 digits"), max_length=4, blank=True,
                                  db_index=True, editable=False)
    email = models.EmailField(_("email"), blank=True)
    id_number = models.CharField(_("ID number"), max_length=32, blank=True)
    city = models.CharField(_("city"), max_length=50, blank=True)
    occupation = models.CharField(_("occupation"), max_length=20, choices=Occupation.choices,
                                  blank=True)
    industry = models.CharField(_("industry"), max_length=20, choices=Industry.choices,
                                blank=True)
    employer = models.CharField(_("employer"), max_length=100, blank=True)
    education = models.CharField(_("education"), max_length=20, choices=Education.choices,
                                 blank=True)
    has_children = models.BooleanField(_("has children"), null=True, blank=True)
    # account
    opened_on = models.DateField(_("opened on"), null=True, blank=True)
    branch = models.ForeignKey(Branch, verbose_name=_("branch"), null=True, blank=True,
                               on_delete=models.PROTECT, related_name="clients")
    rm = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("relationship manager"),
                           null=True, blank=True, on_delete=models.SET_NULL,
                           related_name="book")
    status = models.CharField(_("status"), max_length=10, choices=ClientStatus.choices,
                              default=ClientStatus.ACTIVE)
    source_channel = models.CharField(_("acquisition channel"), max_length=20,
                                      choices=AcquisitionChannel.choices, blank=True)
    # investment
    risk_level = models.CharField(_("risk level"), max_length=2, choices=ClientRiskLevel.choices,
                                  blank=True)
    risk_assessed_on = models.DateField(_("risk assessed on"), null=True, blank=True)
    risk_expires_on = models.DateField(_("risk assessment expires on"), null=True, blank=True,
                                       db_index=True)
    investor_type = models.CharField(_("investor type"), max_length=12,
                                     choices=InvestorType.choices, default=InvestorType.ORDINARY)
    aum = models.DecimalField(_("AUM (CNY)"), max_digits=18, decimal_places=2, default=0,
                              db_index=True)
    first_funded_on = models.DateField(_("first funded on"), null=True, blank=True)
    last_purchase_on = models.DateField(_("last purchase on"), null=True, blank=True,
                                        db_index=True)
    # consent (per channel, with the time it was last changed)
    consent_email = models.BooleanField(_("email marketing consent"), default=False)
    consent_sms = models.BooleanField(_("SMS marketing consent"), default=False)
    consent_phone = models.BooleanField(_("phone marketing consent"), default=False)
    consent_updated_at = models.DateTimeField(_("consent updated at"), null=True, blank=True)

    class Meta:
        verbose_name = _("client")
        verbose_name_plural = _("clients")
        indexes = [
            models.Index(fields=["rm", "name"], name="client_rm_name"),
            models.Index(fields=["branch", "name"], name="client_branch_name"),
            models.Index(fields=["rm", "-aum"], name="client_rm_aum"),
            models.Index(fields=["status"], name="client_status"),
            models.Index(fields=["risk_level"], name="client_risk_level"),
            # Age and birth-year segment rules are birth-date ranges.
            models.Index(fields=["birth_date"], name="client_birth_date"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(aum__gte=0), name="client_aum_non_negative"),
            models.CheckConstraint(condition=Q(gender__in=["", "M", "F"]),
                                   name="client_gender_valid"),
            models.CheckConstraint(condition=Q(risk_level__in=["", "C1", "C2", "C3", "C4", "C5"]),
                                   name="client_risk_level_valid"),
            models.CheckConstraint(condition=Q(status__in=ClientStatus.values),
                                   name="client_status_valid"),
            models.CheckConstraint(condition=Q(investor_type__in=InvestorType.values),
                                   name="client_investor_type_valid"),
            models.CheckConstraint(condition=~Q(client_no=""), name="client_no_not_empty"),
        ]

    def __str__(self):
        return f"{self.name} ({self.client_no})"

    def save(self, *args, **kwargs):
        self.phone_tail = phone_tail_of(self.phone)
        if kwargs.get("update_fields") is not None and "phone" in kwargs["update_fields"]:
            kwargs["update_fields"] = set(kwargs["update_fields"]) | {"phone_tail"}
        super().save(*args, **kwargs)

    # derived values ----------------------------------------------------------------------
    def age_on(self, day: date) -> int | None:
        if self.birth_date is None:
            return None
        b = self.birth_date
        return day.year - b.year - ((day.month, day.day) < (b.month, b.day))

    @property
    def age(self) -> int | None:
        return self.age_on(timezone.localdate())

    @property
    def service_level(self) -> str:
        return service_level_for(self.aum)

    def get_service_level_display(self) -> str:
        return ServiceLevel(self.service_level).label

    @property
    def risk_assessment_expired(self) -> bool:
        return self.risk_expires_on is None or self.risk_expires_on < timezone.localdate()

    @property
    def risk_assessment_expiring_soon(self) -> bool:
        if self.risk_assessment_expired:
            return False
        days = settings.RISK_EXPIRY_WARNING_DAYS
        return self.risk_expires_on <= timezone.localdate() + timedelta(days=days)

    @property
    def is_dormant(self) -> bool:
        """Dormant: marked so by the core system, or no purchase for DORMANT_AFTER_DAYS."""
        if self.status == ClientStatus.DORMANT:
            return True
        if self.status == ClientStatus.CLOSED:
            return False
        cutoff = timezone.localdate() - timedelta(days=settings.DORMANT_AFTER_DAYS)
        last = self.last_purchase_on or self.opened_on
        return last is not None and last < cutoff

    @property
    def never_funded(self) -> bool:
        return self.first_funded_on is None and self.last_purchase_on is None


def phone_tail_of(phone: str) -> str:
    digits = "".join(ch for ch in (phone or "") if ch.isdigit())
    return digits[-4:]


class ProductType(models.TextChoices):
    STOCK = "stock", _("Stock")
    FUND = "fund", _("Mutual fund")
    FIXED_INCOME = "fixed_income", _("Fixed income")
    MONEY_MARKET = "money_market", _("Money-market fund")
    WEALTH_MANAGEMENT = "wealth_management", _("Wealth-management product")
    ADVISORY_SERVICE = "advisory_service", _("Advisory service")
    STRUCTURED = "structured", _("Structured product")
    PRIVATE_FUND = "private_fund", _("Private fund")


class ProductRiskLevel(models.TextChoices):
    R1 = "R1", _("R1 low")
    R2 = "R2", _("R2 medium-low")
    R3 = "R3", _("R3 medium")
    R4 = "R4", _("R4 medium-high")
    R5 = "R5", _("R5 high")


class Product(TimeStampedModel):
    product_code = models.CharField(_("product code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=200)
    product_type = models.CharField(_("product type"), max_length=20, choices=ProductType.choices)
    risk_level = models.CharField(_("risk level"), max_length=2, choices=ProductRiskLevel.choices)
    is_active = models.BooleanField(_("on sale"), default=True)
    maturity_date = models.DateField(_("matures on"), null=True, blank=True)

    class Meta:
        ordering = ["product_code"]
        verbose_name = _("product")
        verbose_name_plural = _("products")
        constraints = [
            models.CheckConstraint(condition=Q(product_type__in=ProductType.values),
                                   name="product_type_valid"),
            models.CheckConstraint(condition=Q(risk_level__in=ProductRiskLevel.values),
                                   name="product_risk_level_valid"),
            models.CheckConstraint(condition=~Q(product_code=""), name="product_code_not_empty"),
        ]

    def __str__(self):
        return f"{self.name} ({self.product_code})"


class Holding(models.Model):
    client = models.ForeignKey(Client, verbose_name=_("client"), on_delete=models.CASCADE,
                               related_name="holdings")
    product = models.ForeignKey(Product, verbose_name=_("product"), on_delete=models.PROTECT,
                                related_name="holdings")
    as_of = models.DateField(_("as of"))
    quantity = models.DecimalField(_("quantity"), max_digits=20, decimal_places=4)
    market_value = models.DecimalField(_("market value (CNY)"), max_digits=18, decimal_places=2)
    # The position's own maturity (a fixed-income note, a wealth-management product); when
    # blank, the product's maturity_date applies (segments.rules "days_to_maturity").
    maturity_date = models.DateField(_("matures on"), null=True, blank=True)

    class Meta:
        verbose_name = _("holding")
        verbose_name_plural = _("holdings")
        constraints = [
            models.UniqueConstraint(fields=["client", "product", "as_of"],
                                    name="holding_unique_per_day"),
            models.CheckConstraint(condition=Q(quantity__gte=0),
                                   name="holding_quantity_non_negative"),
            models.CheckConstraint(condition=Q(market_value__gte=0),
                                   name="holding_market_value_non_negative"),
        ]
        indexes = [models.Index(fields=["client", "-as_of"], name="holding_client_asof")]

    def __str__(self):
        return f"{self.client_id}:{self.product_id}@{self.as_of}"


class SalesChannel(models.TextChoices):
    BRANCH = "branch", _("Branch counter")
    APP = "app", _("Mobile app")
    WEB = "web", pgettext_lazy("sales channel", "Website")
    RM = "rm", _("Relationship manager")
    PHONE = "phone", pgettext_lazy("sales channel", "Phone")


class Transaction(models.Model):
    """A purchase of a product or advisory service, keyed by the core system's txn_id."""

    # Unique through Meta.constraints (no varchar_pattern_ops twin index); the client FK has no
    # index of its own: txn_client_traded (client, -traded_at) serves lookups by client.
    txn_id = models.CharField(_("transaction id"), max_length=40)
    client = models.ForeignKey(Client, verbose_name=_("client"), on_delete=models.CASCADE,
                               related_name="transactions", db_index=False)
    product = models.ForeignKey(Product, verbose_name=_("product"), on_delete=models.PROTECT,
                                related_name="transactions")
    traded_at = models.DateTimeField(_("traded at"))
    amount = models.DecimalField(_("amount paid (CNY)"), max_digits=18, decimal_places=2)
    revenue = models.DecimalField(_("revenue to the firm (CNY)"), max_digits=18,
                                  decimal_places=2, default=0)
    channel = models.CharField(_("channel"), max_length=10, choices=SalesChannel.choices,
                               blank=True)

    class Meta:
        verbose_name = _("transaction")
        verbose_name_plural = _("transactions")
        constraints = [
            models.UniqueConstraint(fields=["txn_id"], name="txn_id_unique"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="txn_amount_non_negative"),
            models.CheckConstraint(condition=Q(revenue__gte=0), name="txn_revenue_non_negative"),
            models.CheckConstraint(condition=~Q(txn_id=""), name="txn_id_not_empty"),
        ]
        indexes = [
            models.Index(fields=["client", "-traded_at"], name="txn_client_traded"),
            models.Index(fields=["traded_at"], name="txn_traded_at"),
        ]

    def __str__(self):
        return self.txn_id


class CashFlowKind(models.TextChoices):
    DEPOSIT = "deposit", _("Deposit")
    WITHDRAWAL = "withdrawal", _("Withdrawal")
    TRANSFER = "transfer", pgettext_lazy("cash flow", "Transfer")


class CashFlow(models.Model):
    """Money moving into (amount > 0) or out of (amount < 0) a client's account, keyed by the
    core system's flow_id (API.md "Scenario data"). A deposit funds the account
    (Client.first_funded_on)."""

    flow_id = models.CharField(_("cash flow id"), max_length=40)
    client = models.ForeignKey(Client, verbose_name=_("client"), on_delete=models.CASCADE,
                               related_name="cash_flows", db_index=False)
    at = models.DateTimeField(_("at"))
    amount = models.DecimalField(_("amount (CNY)"), max_digits=18, decimal_places=2,
                                 help_text=_("Positive in, negative out."))
    kind = models.CharField(_("kind"), max_length=10, choices=CashFlowKind.choices)

    class Meta:
        verbose_name = _("cash flow")
        verbose_name_plural = _("cash flows")
        constraints = [
            models.UniqueConstraint(fields=["flow_id"], name="cash_flow_id_unique"),
            models.CheckConstraint(condition=~Q(flow_id=""), name="cash_flow_id_not_empty"),
            models.CheckConstraint(condition=~Q(amount=0), name="cash_flow_amount_not_zero"),
            models.CheckConstraint(
                condition=~Q(kind="deposit") | Q(amount__gt=0), name="cash_flow_deposit_in"),
            models.CheckConstraint(
                condition=~Q(kind="withdrawal") | Q(amount__lt=0),
                name="cash_flow_withdrawal_out"),
        ]
        indexes = [
            models.Index(fields=["client", "-at"], name="cash_flow_client_at"),
            models.Index(fields=["at"], name="cash_flow_at"),
        ]

    def __str__(self):
        return self.flow_id


class InteractionKind(models.TextChoices):
    CALL = "call", _("Call")
    MEETING = "meeting", _("Meeting")
    NOTE = "note", _("Note")


class InteractionOutcome(models.TextChoices):
    REACHED = "reached", _("Reached")
    NO_ANSWER = "no_answer", _("No answer")
    INTERESTED = "interested", _("Interested")
    NOT_INTERESTED = "not_interested", _("Not interested")
    FOLLOW_UP = "follow_up", _("Follow up later")
    NONE = "none", _("No outcome (note)")


class Interaction(models.Model):
    """An RM's call, meeting or note with a client."""

    client = models.ForeignKey(Client, verbose_name=_("client"), on_delete=models.CASCADE,
                               related_name="interactions")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("by"),
                               on_delete=models.PROTECT, related_name="interactions")
    kind = models.CharField(_("kind"), max_length=10, choices=InteractionKind.choices)
    outcome = models.CharField(_("outcome"), max_length=20, choices=InteractionOutcome.choices,
                               default=InteractionOutcome.NONE)
    note = models.TextField(_("note"), max_length=4000, blank=True)
    occurred_at = models.DateTimeField(_("when"), default=timezone.now)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name = _("interaction")
        verbose_name_plural = _("interactions")
        indexes = [models.Index(fields=["client", "-occurred_at"], name="interaction_client_time")]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=InteractionKind.values),
                                   name="interaction_kind_valid"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.client_id} {self.occurred_at:%Y-%m-%d}"


class ImportKind(models.TextChoices):
    CLIENTS = "clients", _("Clients")
    PRODUCTS = "products", _("Products")
    HOLDINGS = "holdings", _("Holdings")
    TRANSACTIONS = "transactions", _("Transactions")
    CASH_FLOWS = "cash_flows", _("Cash flows")




class ImportJob(Job, TimeStampedModel):
    """One uploaded file: validated whole, then written whole, or rejected with a report."""

    kind = models.CharField(_("kind"), max_length=20, choices=ImportKind.choices)
    file = models.FileField(_("file"), upload_to="imports/%Y/%m/")
    original_name = models.CharField(_("file name"), max_length=255)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("by"), null=True,
                                   blank=True, on_delete=models.SET_NULL)
    phase = models.CharField(_("phase"), max_length=20, blank=True)
    rows_total = models.PositiveIntegerField(_("rows"), default=0)
    rows_created = models.PositiveIntegerField(_("created"), default=0)
    rows_updated = models.PositiveIntegerField(_("updated"), default=0)
    error_count = models.PositiveIntegerField(_("errors"), default=0)
    errors = models.JSONField(_("first errors"), default=list, blank=True)
    error_report = models.FileField(_("error report"), upload_to="imports/errors/", blank=True)
    # The outcome in words, on success ("12 created, 3 updated") as on failure: no `error`.
    message = models.TextField(_("message"), blank=True)
    error = None

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("import")
        verbose_name_plural = _("imports")

    def __str__(self):
        return f"{self.get_kind_display()} {self.original_name} ({self.status})"


from .scoring.models import (  # noqa: E402,F401  (models of the scoring package, one app)
    ClientScore,
    CurrentScore,
    ScoringChunk,
    ScoringRun,
    ScoringScheme,
    Tier,
)
