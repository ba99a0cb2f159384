"""Campaign pages: the list, the designer (with a live preview of the audience after each
exclusion and the minimum detectable effect), the campaign page (review of every variant as
sample clients will read it, the workflow buttons, the launch's progress), the target list
(scoped) and the results with their export. Thin: each calls one service or selector."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext
from django.views.decorators.http import require_POST

from clients.models import Client, Product, ProductType
from clients.scoring.models import Tier
from clients.suitability import suitable_products
from core.access import client_scope_q
from core.errors import ApplicationError
from core.models import AuditAction
from core.permissions import access_denied, capability_required, user_can
from core.services import audit_record
from core.spreadsheet import csv_lines, xlsx_bytes
from outreach.models import Channel
from segments.selectors import segment_choices

from . import services
from .approval import campaign_approval_check
from .forms import designer_context, designer_data, designer_initial
from .models import (
    CONTROL,
    Campaign,
    CampaignStatus,
    ExclusionReason,
    GoalMetric,
    Scenario,
)
from .scripts import script_render, script_values
from .selectors import (
    campaign_get,
    campaign_list,
    campaign_members,
    campaign_preview,
    campaign_results,
    journey_summary,
)
from .services import campaign_compliance_issues
from .targeting import audience_queryset, offered_products
from .validation import campaign_validate

PAGE_SIZE = 50
EXPORT_TYPES = {"csv": "text/csv; charset=utf-8",
                "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
SAMPLE_CLIENTS = 3


@capability_required("campaigns.view")
def campaign_list_view(request):
    status = request.GET.get("status", "")
    if status not in CampaignStatus.values:
        status = ""
    page = Paginator(campaign_list(status=status, q=request.GET.get("q", "")[:100]),
                     PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "campaigns/campaign_list.html", {
        "page": page, "status": status, "statuses": CampaignStatus.choices,
        "q": request.GET.get("q", "")[:100], "product_types": ProductType.choices,
        "can_manage": user_can(request.user, "campaigns.manage")})


@require_POST
@capability_required("campaigns.manage")
def campaign_turbulence(request):
    """Market turbulence: the holders of the chosen product types and a draft response."""
    from .turbulence import turbulence_start

    try:
        campaign = turbulence_start(product_types=request.POST.getlist("product_types"),
                                    actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("campaigns:campaign_list")
    messages.success(request, _("A draft response to the market turbulence was written for "
                                "the holders; review its scripts, then submit it for "
                                "approval."))
    return redirect("campaigns:campaign_detail", code=campaign.code)


def _choices() -> dict:
    return {"segments": segment_choices(),
            "product_choices": list(Product.objects.filter(is_active=True).order_by(
                "product_code").values_list("product_code", "name", "risk_level")),
            "scenarios": Scenario.choices, "metrics": GoalMetric.choices,
            "channels": Channel.choices, "product_types": ProductType.choices}


def _designer(request, *, campaign: Campaign | None):
    if request.method == "POST":
        data = designer_data(request.POST, code=campaign.code if campaign else None)
        try:
            if campaign is None:
                campaign = services.campaign_create(data=data, actor=request.user)
                messages.success(request, _("Campaign saved as a draft."))
            else:
                status_before = campaign.status
                campaign = services.campaign_update(campaign=campaign, data=data,
                                                    actor=request.user)
                if status_before != campaign.status:
                    messages.warning(request, _("Saved. The change sends the campaign back to "
                                                "draft: it needs approval again."))
                else:
                    messages.success(request, _("Campaign saved."))
            return redirect("campaigns:campaign_detail", code=campaign.code)
        except ApplicationError as exc:
            return render(request, "campaigns/campaign_form.html", {
                "campaign": campaign, "error": exc.message, **_choices(),
                **designer_context(data, exc.fields)}, status=400)
    return render(request, "campaigns/campaign_form.html", {
        "campaign": campaign, **_choices(), **designer_context(designer_initial(campaign), {})})


@capability_required("campaigns.manage")
def campaign_new(request):
    return _designer(request, campaign=None)


@capability_required("campaigns.manage")
def campaign_edit(request, code: str):
    return _designer(request, campaign=campaign_get(code=code, user=request.user))


@require_POST
@capability_required("campaigns.manage")
def campaign_preview_view(request):
    """htmx: the designer's live preview (audience after each exclusion, MDE)."""
    data = designer_data(request.POST, code=request.POST.get("code") or "preview")
    existing = Campaign.objects.filter(code=data["code"]).first()
    try:
        values = campaign_validate(data, instance=existing)
    except ApplicationError as exc:
        return render(request, "campaigns/_preview.html", {"invalid": exc.fields})
    preview = campaign_preview(campaign=Campaign(pk=getattr(existing, "pk", None), **values))
    return render(request, "campaigns/_preview.html", {
        "preview": preview, "holdout_pct": values["holdout_pct"],
        "reasons": [(r.value, r.label, preview["excluded"].get(r.value, 0))
                    for r in ExclusionReason]})


def _samples(campaign: Campaign, user) -> list[dict]:
    """Every variant as a few audience clients will read it (compliance's review): the
    clients the reviewer may see, each with the product they would be offered."""
    clients = list(audience_queryset(campaign).filter(client_scope_q(user))
                   .select_related("rm").order_by("pk")[:SAMPLE_CLIENTS])
    if not clients:
        clients = list(Client.objects.filter(client_scope_q(user)).select_related("rm")
                       .order_by("pk")[:1])
    products = offered_products(campaign)
    samples = []
    for client in clients:
        allowed, _skipped = suitable_products(client=client, products=products)
        product = allowed[0] if allowed else None
        values = script_values(client=client, product=product)
        samples.append({"client": client, "product": product, "steps": [
            [{"code": v["code"], "subject": script_render(v.get("subject", ""), values),
              "body": script_render(v["body"], values)} for v in step["variants"]]
            for step in campaign.steps]})
    return samples


@capability_required("campaigns.view")
def campaign_detail(request, code: str):
    campaign = campaign_get(code=code, user=request.user)
    launch = getattr(campaign, "launch", None) if campaign.status != CampaignStatus.DRAFT \
        else None
    check = campaign_approval_check(campaign) if campaign.approved_hash else None
    return render(request, "campaigns/campaign_detail.html", {
        "campaign": campaign, "launch": launch, "approval_holds": check.holds if check else None,
        "issues": campaign_compliance_issues(campaign),
        "products": offered_products(campaign), "samples": _samples(campaign, request.user),
        "events": campaign.events.select_related("actor")[:30],
        "segment_names": dict((c, n) for c, n in segment_choices()),
        "can_manage": user_can(request.user, "campaigns.manage"),
        "can_approve": user_can(request.user, "campaigns.approve")
        and campaign.author_id != request.user.pk,
        "is_author": campaign.author_id == request.user.pk,
        "reasons": dict(ExclusionReason.choices), "channels": dict(Channel.choices),
        "journey": journey_summary(campaign=campaign),
        "goal_label": dict(GoalMetric.choices).get((campaign.goal or {}).get("metric"), ""),
        "exposure_labels": [ProductType(t).label for t in campaign.exposure_product_types
                            if t in ProductType.values]})


@capability_required("campaigns.view")
def campaign_launch_status(request, code: str):
    """htmx: the launch's progress while it runs."""
    campaign = campaign_get(code=code, user=request.user)
    return render(request, "campaigns/_launch.html", {
        "campaign": campaign, "launch": getattr(campaign, "launch", None),
        "reasons": dict(ExclusionReason.choices)})


ACTIONS = {
    "submit": ("campaigns.manage", services.campaign_submit,
               gettext_lazy("Submitted for approval.")),
    "approve": ("campaigns.approve", services.campaign_approve, gettext_lazy("Approved.")),
    "reject": ("campaigns.approve", services.campaign_reject, gettext_lazy("Rejected.")),
    "launch": ("campaigns.manage", services.campaign_launch,
               gettext_lazy("Launching: the target list is being frozen.")),
    "pause": ("campaigns.manage", services.campaign_pause, gettext_lazy("Paused.")),
    "resume": ("campaigns.manage", services.campaign_resume, gettext_lazy("Resumed.")),
    "cancel": ("campaigns.manage", services.campaign_cancel, gettext_lazy("Cancelled.")),
    "delete": ("campaigns.manage", services.campaign_delete, gettext_lazy("Deleted.")),
}


@require_POST
@capability_required("campaigns.view")
def campaign_action(request, code: str, action: str):
    campaign = campaign_get(code=code, user=request.user)
    if action not in ACTIONS:
        return redirect("campaigns:campaign_detail", code=code)
    capability, service, done = ACTIONS[action]
    if not user_can(request.user, capability):
        return access_denied(request, capability, code)
    kwargs = {"comment": request.POST.get("comment", "")} if action in ("approve", "reject") \
        else {}
    try:
        service(campaign=campaign, actor=request.user, **kwargs)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("campaigns:campaign_detail", code=code)
    messages.success(request, str(done))
    if action == "delete":
        return redirect("campaigns:campaign_list")
    return redirect("campaigns:campaign_detail", code=code)


@capability_required("campaigns.view")
def campaign_members_view(request, code: str):
    campaign = campaign_get(code=code, user=request.user)
    arm = request.GET.get("arm", "")
    if arm not in campaign.arms:
        arm = ""
    excluded = {"yes": True, "no": False}.get(request.GET.get("excluded", ""))
    page = Paginator(campaign_members(campaign=campaign, user=request.user, arm=arm,
                                      excluded=excluded), PAGE_SIZE).get_page(
        request.GET.get("page"))
    tiers = dict(Tier.choices)
    for member in page.object_list:
        member.tier_label = tiers.get(member.tier, member.tier)
    return render(request, "campaigns/campaign_members.html", {
        "campaign": campaign, "page": page, "arm": arm,
        "excluded": request.GET.get("excluded", ""), "reasons": dict(ExclusionReason.choices)})


def _result_rows(results: dict) -> list[list]:
    header = [pgettext("experiment", "Arm"), pgettext("campaign", "Members"), _("Contacted"),
              _("Delivered"), _("Responded"), _("Converted"), _("Conversion rate"),
              _("Revenue (CNY)"), _("Uplift vs holdout"), _("95% CI low"), _("95% CI high"),
              _("p-value"), pgettext("statistical test", "Method")]
    uplift = {u["variant"]: u for u in results["uplift"]}
    rows = [header]
    for arm in results["arms"]:
        u = uplift.get(arm["arm"], {})
        rows.append([arm["arm"], arm["members"], arm["contacted"], arm["delivered"],
                     arm["responded"], arm["converted"], arm["conversion_rate"], arm["revenue"],
                     u.get("absolute"), u.get("ci_low"), u.get("ci_high"), u.get("p_value"),
                     u.get("method", "")])
    return rows


@capability_required("campaigns.view")
def campaign_results_view(request, code: str):
    campaign = campaign_get(code=code, user=request.user)
    results = campaign_results(campaign=campaign)
    fmt = request.GET.get("format", "")
    if fmt in EXPORT_TYPES:
        audit_record(action=AuditAction.EXPORT, actor=request.user, object_type="campaign",
                     object_id=campaign.code, detail={"format": fmt, "what": "results"})
        filename = f"campaign-{campaign.code}-results-{timezone.localtime():%Y%m%d}.{fmt}"
        rows = _result_rows(results)
        if fmt == "csv":
            response = StreamingHttpResponse(csv_lines(rows), content_type=EXPORT_TYPES[fmt])
        else:
            response = HttpResponse(xlsx_bytes(rows, title=campaign.code[:31]),
                                    content_type=EXPORT_TYPES[fmt])
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
    uplift = {u["variant"]: u for u in results["uplift"]}
    arms = [{**a, "uplift": uplift.get(a["arm"])} for a in results["arms"]]
    chart = {"arms": [str(pgettext("experiment arm", "Holdout")) if a["arm"] == CONTROL
                      else a["arm"] for a in arms],
             "rates": [a["conversion_rate"] or 0 for a in arms],
             "funnel": {k: [a[k] for a in arms] for k in
                        ("members", "contacted", "delivered", "responded", "converted")},
             "uplift": [{"variant": u["variant"], "absolute": u["absolute"],
                         "low": u["ci_low"], "high": u["ci_high"]} for u in results["uplift"]],
             "labels": {"members": pgettext("campaign", "Members"), "contacted": _("Contacted"),
                        "delivered": _("Delivered"), "responded": _("Responded"),
                        "converted": _("Converted"), "rate": _("Conversion rate"),
                        "uplift": _("Uplift vs holdout (95% CI)")}}
    return render(request, "campaigns/campaign_results.html", {
        "campaign": campaign, "results": results, "arms": arms, "chart": chart,
        "control": CONTROL, "launch": getattr(campaign, "launch", None)})
