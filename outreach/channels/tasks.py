"""Celery tasks of the gateway channels (found by config/celery.py's autodiscovery of
"outreach.channels")."""

import time
from collections import Counter

from celery import shared_task

from .sender import gateway_send_due

BUDGET_SECONDS = 50.0


@shared_task(name="outreach.channels.tasks.gateway_send_due_task", acks_late=True)
def gateway_send_due_task(limit: int = 500, budget_seconds: float = BUDGET_SECONDS) -> dict:
    """Celery beat, every minute (a row in django_celery_beat): passes of `gateway_send_due`
    until one finds fewer than `limit` contacts to handle or `budget_seconds` have passed, so
    a run ends before the next minute's. Runs that overlap anyway share the queue safely (the
    claim skips locked and claimed rows). Returns the passes' counts summed; `quiet` is the
    last pass's (how many wait for the quiet hours to end)."""
    deadline = time.monotonic() + budget_seconds
    total: Counter = Counter()
    while True:
        counts = gateway_send_due(limit=limit)
        total.update({name: n for name, n in counts.items() if name != "quiet"})
        total["quiet"] = counts["quiet"]
        handled = counts["sent"] + counts["failed"] + counts["retry"] + counts["skipped"]
        if handled < limit or time.monotonic() >= deadline:
            return dict(total)
