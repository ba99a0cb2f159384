"""Writes of client data. Pages, API, admin actions, commands and tasks all call these."""

from datetime import date
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import ApplicationError
from core.models import AuditAction, Branch
from core.services import audit_record, own_rm_required

from .models import Client, Holding, Interaction, InteractionKind, InteractionOutcome, Product
from .signals import follow_up_requested


def interaction_author_check(*, client: Client, author) -> None:
    """Seeing a client (branch manager, ops, compliance, admin) is not the right to write into
    their history: only the own RM logs calls, meetings and notes (DOMAIN.md)."""
    own_rm_required(actor=author, client=client, attempted="interaction_log",
                    message=_("Only the client's own RM can log interactions."))


def interaction_log(*, client: Client, author, kind: str, outcome: str = InteractionOutcome.NONE,
                    note: str = "", occurred_at=None, follow_up_on: date | None = None
                    ) -> Interaction:
    """The one way an interaction is written; audited as INTERACTION_LOGGED (never the note)."""
    # Checked before the transaction opens: the denial's audit row must outlive the refusal.
    interaction_author_check(client=client, author=author)
    if kind not in InteractionKind.values:
        raise ApplicationError(f"Unknown interaction kind {kind!r}.", fields={"kind": ["invalid"]})
    if outcome not in InteractionOutcome.values:
        raise ApplicationError(f"Unknown outcome {outcome!r}.", fields={"outcome": ["invalid"]})
    note = (note or "").strip()
    if kind == InteractionKind.NOTE and not note:
        raise ApplicationError("A note needs some text.", fields={"note": ["required"]})
    with transaction.atomic():
        interaction = Interaction.objects.create(client=client, author=author, kind=kind,
                                                 outcome=outcome, note=note,
                                                 occurred_at=occurred_at or timezone.now())
        audit_record(action=AuditAction.INTERACTION_LOGGED, actor=author, object_type="client",
                     object_id=client.client_no,
                     detail={"interaction": interaction.pk, "kind": kind, "outcome": outcome})
        if outcome == InteractionOutcome.FOLLOW_UP and follow_up_on is not None:
            follow_up_requested.send(sender=Interaction, interaction=interaction,
                                     due_on=follow_up_on)
    return interaction


CLIENT_UPSERT_FIELDS = (
    "name", "gender", "birth_date", "phone", "email", "id_number", "city", "occupation",
    "industry", "employer", "education", "has_children", "opened_on", "status",
    "source_channel", "risk_level", "risk_assessed_on", "risk_expires_on", "investor_type",
    "aum", "first_funded_on", "consent_email", "consent_sms", "consent_phone",
)
_CONSENT_FIELDS = ("consent_email", "consent_sms", "consent_phone")
_UNSET = object()


def _branch_by_code(code: str | None) -> Branch | None:
    if not code:
        return None
    branch = Branch.objects.filter(code=code).first()
    if branch is None:
        raise ApplicationError(f"Branch {code!r} does not exist.",
                               fields={"branch": [f"Unknown branch code: {code}"]})
    return branch


def _rm_by_username(username: str | None):
    if not username:
        return None
    rm = get_user_model().objects.filter(username=username).first()
    if rm is None:
        raise ApplicationError(f"User {username!r} does not exist.",
                               fields={"rm": [f"Unknown username: {username}"]})
    return rm


@transaction.atomic
def client_upsert(*, client_no: str, data: dict[str, Any], branch_code: Any = _UNSET,
                  rm_username: Any = _UNSET) -> tuple[Client, bool]:
    """Create or update a client by the core system's `client_no` (idempotent).

    `data` holds model fields (CLIENT_UPSERT_FIELDS); fields not given keep their value on an
    update. `branch_code` / `rm_username`: a code / username, None (clear), or not given (keep).
    """
    client_no = (client_no or "").strip()
    if not client_no:
        raise ApplicationError("Client number is required.", fields={"client_no": ["required"]})
    unknown = set(data) - set(CLIENT_UPSERT_FIELDS)
    if unknown:
        raise ApplicationError(f"Unknown client fields: {', '.join(sorted(unknown))}.",
                               fields={k: ["unknown field"] for k in sorted(unknown)})
    values = dict(data)
    if branch_code is not _UNSET:
        values["branch"] = _branch_by_code(branch_code)
    if rm_username is not _UNSET:
        values["rm"] = _rm_by_username(rm_username)

    client = Client.objects.select_for_update().filter(client_no=client_no).first()
    created = client is None
    if created:
        client = Client(client_no=client_no)
    changed = [f for f, v in values.items() if created or getattr(client, f) != v]
    for field, value in values.items():
        setattr(client, field, value)
    if any(f in changed for f in _CONSENT_FIELDS):
        client.consent_updated_at = timezone.now()
        changed.append("consent_updated_at")
    client.full_clean(exclude=["client_no"], validate_unique=False, validate_constraints=False)
    if created:
        client.save()
    elif changed:
        client.save(update_fields=[*changed, "updated_at"])
    return client, created


@transaction.atomic
def product_upsert(*, product_code: str, name: str, product_type: str, risk_level: str,
                   is_active: bool | None = None,
                   maturity_date: Any = _UNSET) -> tuple[Product, bool]:
    """Create or update a product by the core system's `product_code` (idempotent).

    `is_active` None and `maturity_date` not given keep their values (`maturity_date=None`
    clears it)."""
    product_code = (product_code or "").strip()
    if not product_code:
        raise ApplicationError("Product code is required.",
                               fields={"product_code": ["required"]})
    values: dict[str, Any] = {"name": name, "product_type": product_type,
                              "risk_level": risk_level}
    if is_active is not None:
        values["is_active"] = is_active
    if maturity_date is not _UNSET:
        values["maturity_date"] = maturity_date
    product = Product.objects.select_for_update().filter(product_code=product_code).first()
    created = product is None
    if created:
        product = Product(product_code=product_code)
    changed = [f for f, v in values.items() if created or getattr(product, f) != v]
    for field, value in values.items():
        setattr(product, field, value)
    product.full_clean(exclude=["product_code"], validate_unique=False,
                       validate_constraints=False)
    if created:
        product.save()
    elif changed:
        product.save(update_fields=[*changed, "updated_at"])
    return product, created


@transaction.atomic
def holdings_replace(*, client: Client, as_of: date, holdings: list[dict[str, Any]],
                     actor=None) -> list[Holding]:
    """Make `holdings` the client's complete holdings on `as_of` (atomic, all rows or none).

    Rows are validated and written by the ingest engine, which also removes the products the
    client no longer holds on that date. Raises IngestRejected (nothing written) on a bad row.
    """
    from .ingest import ingest_records

    if holdings:
        # The list is the whole truth on `as_of`: a position sent without a maturity has none.
        records = [{"maturity_date": None, **row, "client_no": client.client_no,
                    "as_of": as_of.isoformat()} for row in holdings]
        ingest_records(kind="holdings", records=records, actor=actor, holdings_replace=True)
    else:
        Holding.objects.filter(client=client, as_of=as_of).delete()
    return list(Holding.objects.filter(client=client, as_of=as_of).select_related("product")
                .order_by("-market_value", "product__product_code"))


def client_do_not_call(*, client: Client, actor=None, source: str = "") -> bool:
    """The client asked not to be called: phone marketing consent off, at once and for every
    campaign (shared/DOMAIN.md "Contact policy"); audited. False when it already was off."""
    with transaction.atomic():
        changed = Client.objects.filter(pk=client.pk, consent_phone=True).update(
            consent_phone=False, consent_updated_at=timezone.now(), updated_at=timezone.now())
        if changed:
            audit_record(action=AuditAction.CONSENT_CHANGED, actor=actor,
                         object_type="client", object_id=client.client_no,
                         detail={"consent_phone": False, "source": source or "do_not_call"})
    client.consent_phone = False
    return bool(changed)
