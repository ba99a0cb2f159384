"""What compliance approves of a campaign (core.approval): everything the client will see and
everything that decides who gets it -- the scripts of every step and variant, the channels and
delays, the products as named and rated at approval, the audience, the holdout, the priority
and the schedule."""

from __future__ import annotations

from clients.models import Product
from core.approval import approval_check, as_stored, snapshot_hash

from .models import Campaign


def campaign_approval_snapshot(campaign: Campaign) -> dict:
    products = {p.product_code: {"name": p.name, "risk_level": p.risk_level,
                                 "on_sale": p.is_active}
                for p in Product.objects.filter(product_code__in=campaign.products)}
    return {
        "name": campaign.name, "scenario": campaign.scenario, "goal": campaign.goal,
        "audience": campaign.audience, "priority": campaign.priority,
        "holdout_pct": campaign.holdout_pct, "always_on": campaign.always_on,
        **({"reentry_cooldown_days": campaign.reentry_cooldown_days}
           if campaign.always_on else {}),
        **({"exposure_product_types": campaign.exposure_product_types}
           if campaign.exposure_product_types else {}),
        "schedule": {"starts_at": campaign.starts_at, "ends_at": campaign.ends_at},
        "products": {code: products.get(code) for code in campaign.products},
        "product_order": list(campaign.products),
        "steps": {str(i): step for i, step in enumerate(campaign.steps)},
    }


def approval_fields(campaign: Campaign) -> dict:
    snapshot = campaign_approval_snapshot(campaign)
    return {"approved_hash": snapshot_hash(snapshot), "approved_snapshot": as_stored(snapshot)}


def campaign_approval_check(campaign: Campaign):
    return approval_check(approved_hash=campaign.approved_hash,
                          approved_snapshot=campaign.approved_snapshot,
                          current_snapshot=campaign_approval_snapshot(campaign))
