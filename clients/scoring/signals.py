"""Signals of value scoring; segment refresh hooks into `scoring_run_succeeded`."""

from django.dispatch import Signal

# Sent (sender=ScoringRun, run=<ScoringRun>) after a run's scores and current scores committed.
scoring_run_succeeded = Signal()
