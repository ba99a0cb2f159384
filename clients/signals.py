"""Signals clients sends to the apps above it, which clients must not import (DESIGN.md layers).

`follow_up_requested(sender=Interaction, interaction, due_on)`: an RM logged "follow up later"
with a date; outreach answers with an RM task due that day. Sent inside the interaction's
transaction, so the task and the interaction are written together or not at all.

`import_succeeded(sender=ImportJob, job, trigger="import")`: an import's rows committed
(analytics queues a refresh of its rollups). Sent after commit.
"""

from django.dispatch import Signal

follow_up_requested = Signal()
import_succeeded = Signal()
