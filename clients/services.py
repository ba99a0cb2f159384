"""Writes of client data. Pages, API, admin actions, commands and tasks all call these."""

from django.db import transaction
from django.utils import timezone

from core.errors import ApplicationError

from .models import Client, Interaction, InteractionKind, InteractionOutcome


@transaction.atomic
def interaction_log(*, client: Client, author, kind: str, outcome: str = InteractionOutcome.NONE,
                    note: str = "", occurred_at=None) -> Interaction:
    if kind not in InteractionKind.values:
        raise ApplicationError(f"Unknown interaction kind {kind!r}.", fields={"kind": ["invalid"]})
    if outcome not in InteractionOutcome.values:
        raise ApplicationError(f"Unknown outcome {outcome!r}.", fields={"outcome": ["invalid"]})
    note = (note or "").strip()
    if kind == InteractionKind.NOTE and not note:
        raise ApplicationError("A note needs some text.", fields={"note": ["required"]})
    return Interaction.objects.create(client=client, author=author, kind=kind, outcome=outcome,
                                      note=note, occurred_at=occurred_at or timezone.now())
