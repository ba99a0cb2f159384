"""Signals segments sends to the apps above it, which segments must not import (DESIGN.md
layers).

`members_changed(sender=Segment, segment_id, trigger="segment")`: a segment's members changed
(a refresh succeeded, a static list was set, a segment was deleted); analytics queues a refresh
of its segment figures. Sent after commit.
"""

from django.dispatch import Signal

members_changed = Signal()
