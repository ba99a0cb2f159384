"""Newsletter dispatch: freeze the audience into the email outbox, then let the one email
dispatcher (outreach.email) send it; pause, resume, cancel; the minute beat.

    outbox.py     freeze the audience, archive, start, queue the tasks
    source.py     the edition as a source of the dispatcher: state, renderer, finishing, bounces
    control.py    pause, resume, cancel
    beat.py       the minute beat: scheduled editions, stale claims, retries
    stats.py      the outbox numbers of an edition
"""

from .beat import deliveries_reclaim_stale, editions_due
from .control import edition_dispatch_cancel, edition_dispatch_pause, edition_dispatch_resume
from .outbox import edition_dispatch_kick, edition_dispatch_start
from .run import edition_dispatch_run, edition_finish_if_done
from .source import suppression_add
from .stats import edition_delivery_stats

__all__ = [
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
