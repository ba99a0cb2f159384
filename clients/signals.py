"""Signals clients sends to the apps above it, which clients must not import (DESIGN.md layers).

`follow_up_requested(sender=Interaction, interaction, due_on)`: an RM logged "follow up later"
with a date; outreach answers with an RM task due that day. Sent inside the interaction's
transaction, so the task and the interaction are written together or not at all.
"""

from django.dispatch import Signal

follow_up_requested = Signal()
