"""Writes of the outreach app."""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from core.models import AuditAction
from core.services import audit_record

from .models import TradingDayOverride


def trading_day_override_set(*, day: dt.date, is_trading_day: bool, note: str = "",
                             actor=None) -> TradingDayOverride:
    """Correct the trading calendar for one day (audited as a settings change)."""
    with transaction.atomic():
        row, _created = TradingDayOverride.objects.update_or_create(
            day=day, defaults={"is_trading_day": is_trading_day, "note": note,
                               "changed_by": actor})
        audit_record(action=AuditAction.SETTINGS_CHANGED, actor=actor,
                     object_type="trading_day", object_id=day.isoformat(),
                     detail={"trading_day": is_trading_day, "note": note})
    return row


def trading_day_override_delete(*, override: TradingDayOverride, actor=None) -> None:
    """Back to the published calendar for that day (audited)."""
    with transaction.atomic():
        day = override.day
        override.delete()
        audit_record(action=AuditAction.SETTINGS_CHANGED, actor=actor,
                     object_type="trading_day", object_id=day.isoformat(),
                     detail={"removed": True})
