"""Outbox dispatch: freeze the audience, claim rows in chunks, send over SMTP, finish.

The outbox (Delivery) is the job: every row says what happened to one client. Workers claim
pending rows with row locks that skip locked rows, so any number of them share one edition;
each message is marked sent right after the SMTP server accepted it and before the next one
goes out, so a killed worker loses nothing and repeats at most the one message it had in
flight (its claimed rows go back to pending once the claim is stale:
`deliveries_reclaim_stale`, run by the beat task every minute).

    outbox.py     freeze the audience, archive, start, queue the tasks
    control.py    pause, resume, cancel
    run.py        the worker's loop: claim, render, send, mark
    smtp.py       one connection per chunk; a message sent in two halves
    marks.py      sent / retry / failed / bounced, suppressions
    ratelimit.py  messages per second and per hour, shared through Redis
    beat.py       the minute beat: scheduled editions, stale claims, retries
    stats.py      the outbox numbers of an edition
"""

from .beat import deliveries_reclaim_stale, editions_due
from .control import edition_dispatch_cancel, edition_dispatch_pause, edition_dispatch_resume
from .marks import suppression_add
from .outbox import edition_dispatch_kick, edition_dispatch_start
from .ratelimit import RateLimiter
from .run import _claim, edition_dispatch_run, edition_finish_if_done
from .stats import edition_delivery_stats

__all__ = [
    "RateLimiter",
    "_claim",
    "deliveries_reclaim_stale",
    "edition_delivery_stats",
    "edition_dispatch_cancel",
    "edition_dispatch_kick",
    "edition_dispatch_pause",
    "edition_dispatch_resume",
    "edition_dispatch_run",
    "edition_dispatch_start",
    "edition_finish_if_done",
    "editions_due",
    "suppression_add",
]
