"""Campaigns (issue #11): not built yet. RM tasks live in outreach (outreach.models.RMTask)."""
