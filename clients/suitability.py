"""Investor suitability (投资者适当性): THE one check every recommendation passes through.

DOMAIN.md: an ordinary investor may be actively recommended only products whose risk level
does not exceed theirs (C1 -> R1, C2 -> R1-R2, ... C5 -> R1-R5); a missing or expired
assessment means "recommend nothing with risk".

Decisions, pinned by tests/newsletters/test_suitability.py:
- Missing or expired assessment: nothing at all is recommended, not even R1. Every product
  carries some risk (R1 is "low", not "none"), and a recommendation made on a lapsed
  questionnaire is the exact situation the rule guards against.
- Professional investors: the rule is stated for ordinary investors, but the safe reading is
  applied to everyone -- a professional investor is likewise never actively recommended a
  product above their own assessed level, and needs a valid assessment too. A professional
  investor who wants more does so on their own initiative, not through marketing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from django.db.models import Q
from django.utils import timezone

ASSESSMENT_MISSING = "assessment_missing"
ASSESSMENT_EXPIRED = "assessment_expired"
ABOVE_RISK_LEVEL = "above_risk_level"

REASONS = (ASSESSMENT_MISSING, ASSESSMENT_EXPIRED, ABOVE_RISK_LEVEL)

_CLIENT_RANK = {"C1": 1, "C2": 2, "C3": 3, "C4": 4, "C5": 5}
_PRODUCT_RANK = {"R1": 1, "R2": 2, "R3": 3, "R4": 4, "R5": 5}


def suitability_check(*, client, product, today: date | None = None) -> tuple[bool, str]:
    """(True, "") when `product` may be actively recommended to `client`, else (False, reason).

    reason is one of "assessment_missing", "assessment_expired", "above_risk_level".
    """
    today = today or timezone.localdate()
    client_rank = _CLIENT_RANK.get(client.risk_level or "")
    if client_rank is None:
        return False, ASSESSMENT_MISSING
    if client.risk_expires_on is None:
        return False, ASSESSMENT_MISSING
    if client.risk_expires_on < today:
        return False, ASSESSMENT_EXPIRED
    product_rank = _PRODUCT_RANK.get(product.risk_level or "")
    if product_rank is None or product_rank > client_rank:
        return False, ABOVE_RISK_LEVEL
    return True, ""


def suitable_products(*, client, products: Iterable, today: date | None = None
                      ) -> tuple[list, list[tuple[object, str]]]:
    """Split `products` into (allowed, skipped) for `client`; skipped carries the reason."""
    today = today or timezone.localdate()
    allowed, skipped = [], []
    for product in products:
        ok, reason = suitability_check(client=client, product=product, today=today)
        if ok:
            allowed.append(product)
        else:
            skipped.append((product, reason))
    return allowed, skipped


def assessment_valid_q(*, today: date, prefix: str = "") -> Q:
    """Clients whose assessment is there and in force on `today` (set-based twin of the first
    half of suitability_check)."""
    return (Q(**{f"{prefix}risk_level__in": list(_CLIENT_RANK)})
            & Q(**{f"{prefix}risk_expires_on__gte": today}))


def suitable_for_q(*, product_risk_level: str, today: date, prefix: str = "") -> Q:
    """Clients to whom a product of `product_risk_level` may be actively recommended on
    `today`: the same rule as suitability_check, as a filter for set-based work (a campaign's
    launch over a million clients). A product without a known level suits no one."""
    product_rank = _PRODUCT_RANK.get(product_risk_level or "")
    if product_rank is None:
        return Q(pk__in=[])
    levels = [level for level, rank in _CLIENT_RANK.items() if rank >= product_rank]
    return assessment_valid_q(today=today, prefix=prefix) & Q(**{f"{prefix}risk_level__in": levels})
