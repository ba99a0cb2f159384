"""Market turbulence (shared/DOMAIN.md "Scenarios"): ops start it for the clients holding the
affected product types. `turbulence_start` writes a rule segment of those holders and a draft
campaign with reassurance content and an RM call, for compliance to approve like any other;
once launched, each RM's calls are due in order of the client's exposure (the market value
they hold in those types in their latest snapshot), the most exposed first."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.db.models import Max, OuterRef, Subquery, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from clients.models import Holding, ProductType
from core.errors import ApplicationError
from segments.models import Segment
from segments.services import segment_create

from .models import Campaign, Scenario
from .services import campaign_create


def _free_code(prefix: str) -> str:
    code, n = prefix, 1
    while Campaign.objects.filter(code=code).exists() or Segment.objects.filter(
            code=code).exists():
        n += 1
        code = f"{prefix}-{n}"
    return code


@transaction.atomic
def turbulence_start(*, product_types: list[str], actor) -> Campaign:
    """The holders' segment and the draft response campaign (see the module)."""
    if not isinstance(product_types, list) or not product_types \
            or any(t not in ProductType.values for t in product_types):
        raise ApplicationError(
            _("Choose at least one affected product type: %(types)s.")
            % {"types": ", ".join(ProductType.values)},
            fields={"product_types": [_("Choose one or more product types.")]})
    types = list(dict.fromkeys(product_types))
    labels = "、".join(str(ProductType(t).label) for t in types)
    code = _free_code(f"turbulence-{timezone.localdate():%Y%m%d}")
    segment_create(code=code, kind="rule", actor=actor,
                   name_zh=f"市场波动·持有{labels}"[:100],
                   name_en=f"Market turbulence: holders of {', '.join(types)}"[:100],
                   rule={"field": "holds_product_type", "op": "in", "value": types})
    return campaign_create(actor=actor, data={
        "code": code, "name": f"市场波动安抚·{labels}"[:200],
        "scenario": Scenario.MARKET_TURBULENCE,
        "goal": {"metric": "response", "target": 0.3, "window_days": 10},
        "audience": {"include": [code], "exclude": []}, "products": [], "priority": 1,
        "holdout_pct": 0, "exposure_product_types": types,
        "steps": [
            {"channel": "app_push", "delay_trading_days": 0, "variants": [
                {"code": "A", "share": 100, "subject": "近期市场波动说明",
                 "body": "{name}您好，近期市场波动加大。短期波动是投资的常态，请勿因情绪做出"
                         "决定；如需了解您的持仓情况，您的客户经理{rm_name}随时为您服务。"
                         "投资有风险，入市需谨慎。"}]},
            {"channel": "phone", "delay_trading_days": 0, "variants": [
                {"code": "A", "share": 100, "subject": "市场波动回访",
                 "body": "{name}您好，我是{rm_name}。最近市场波动较大，想和您一起看看持仓，"
                         "了解您的想法，并说明我们对后市的看法。"}]},
        ]})


def exposures(*, product_types: list[str], client_ids: list[int]) -> dict[int, Decimal]:
    """Each client's market value in `product_types` in their latest holdings snapshot."""
    latest = (Holding.objects.filter(client=OuterRef("client")).values("client")
              .annotate(last=Max("as_of")).values("last")[:1])
    return dict(Holding.objects.filter(client_id__in=client_ids,
                                       product__product_type__in=product_types,
                                       as_of=Subquery(latest))
                .values("client").annotate(total=Sum("market_value"))
                .values_list("client", "total"))
