"""The designer page's form <-> the campaign's JSON (the API's shape): the page posts flat
fields (step-0-channel, step-0-v1-body ...), `designer_data` turns them into the dict that
campaigns.validation checks -- the one check for the page, the preview and the API -- and
`designer_rows` lays a campaign (or what was posted) out again with each field's errors."""

from __future__ import annotations

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from outreach.models import Channel

from .models import Campaign, GoalMetric, Scenario

STEP_SLOTS = 4
VARIANT_SLOTS = 3


def _int(value, default=None):
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default if value in (None, "") else value


def _float(value, default=0):
    try:
        return float(str(value).strip())
    except (TypeError, ValueError):
        return default if value in (None, "") else value


def _when(value: str):
    value = (value or "").strip()
    if not value:
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        return value  # the validator names the field
    if parsed.tzinfo is None:
        parsed = timezone.make_aware(parsed)
    return parsed.isoformat()


def designer_data(post, *, code: str | None = None) -> dict:
    """The posted designer form as the API's campaign dict (blank step and variant slots are
    left out; what is left is validated by campaign_validate)."""
    steps = []
    for i in range(STEP_SLOTS):
        channel = post.get(f"step-{i}-channel", "")
        variants = []
        for j in range(VARIANT_SLOTS):
            body = post.get(f"step-{i}-v{j}-body", "")
            subject = post.get(f"step-{i}-v{j}-subject", "")
            if not body.strip() and not subject.strip():
                continue
            variants.append({"code": post.get(f"step-{i}-v{j}-code", "").strip(),
                             "share": _int(post.get(f"step-{i}-v{j}-share"), 100),
                             "subject": subject, "body": body})
        if not channel and not variants:
            continue
        step = {"channel": channel,
                "delay_trading_days": _int(post.get(f"step-{i}-delay"), 0),
                "variants": variants}
        when = post.get(f"step-{i}-when", "").strip()
        if when and when != "always":  # "always" is the default and is left out, as in the API
            step["when"] = when
        steps.append(step)
    data = {
        "name": post.get("name", ""), "scenario": post.get("scenario", Scenario.AD_HOC),
        "goal": {"metric": post.get("goal_metric", GoalMetric.CONVERSION),
                 "target": _float(post.get("goal_target"), 0),
                 "window_days": _int(post.get("goal_window_days"), 30)},
        "audience": {"include": post.getlist("include"), "exclude": post.getlist("exclude")},
        "products": post.getlist("products"),
        "priority": _int(post.get("priority"), 5),
        "holdout_pct": _int(post.get("holdout_pct"), 10),
        "starts_at": _when(post.get("starts_at")), "ends_at": _when(post.get("ends_at")),
        "always_on": post.get("always_on") in ("on", "true", "1"),
        "reentry_cooldown_days": _int(post.get("reentry_cooldown_days"), 30),
        "exposure_product_types": post.getlist("exposure_product_types"),
        "steps": steps,
    }
    data["code"] = code if code is not None else post.get("code", "").strip()
    return data


def designer_initial(campaign: Campaign | None) -> dict:
    if campaign is None:
        return {"code": "", "name": "", "scenario": Scenario.AD_HOC,
                "goal": {"metric": GoalMetric.CONVERSION, "target": 0.05, "window_days": 30},
                "audience": {"include": [], "exclude": []}, "products": [], "priority": 5,
                "holdout_pct": 10, "starts_at": None, "ends_at": None, "always_on": False,
                "reentry_cooldown_days": 30, "exposure_product_types": [],
                "steps": [{"channel": Channel.PHONE, "delay_trading_days": 0,
                           "variants": [{"code": "A", "share": 100, "subject": "",
                                         "body": ""}]}]}
    return {f: getattr(campaign, f) for f in ("code", "name", "scenario", "goal", "audience",
                                               "products", "priority", "holdout_pct",
                                               "starts_at", "ends_at", "always_on",
                                               "reentry_cooldown_days",
                                               "exposure_product_types", "steps")}


def _local_input(value) -> str:
    if not value:
        return ""
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is None:
            return value
        value = parsed
    return timezone.localtime(value).strftime("%Y-%m-%dT%H:%M")


def designer_rows(data: dict, errors: dict[str, list[str]]) -> list[dict]:
    """The step slots for the template: each with its values and errors, blank slots too."""
    steps = list(data.get("steps") or [])
    rows = []
    for i in range(STEP_SLOTS):
        step = steps[i] if i < len(steps) and isinstance(steps[i], dict) else {}
        variants = list(step.get("variants") or [])
        slots = []
        for j in range(VARIANT_SLOTS):
            v = variants[j] if j < len(variants) and isinstance(variants[j], dict) else {}
            where = f"steps[{i}].variants[{j}]"
            slots.append({"index": j, "code": v.get("code", "ABC"[j] if not v else ""),
                          "share": v.get("share", ""), "subject": v.get("subject", ""),
                          "body": v.get("body", ""),
                          "errors": [m for key, msgs in errors.items()
                                     if key == where or key.startswith(where + ".")
                                     for m in msgs]})
        where = f"steps[{i}]"
        rows.append({"index": i, "channel": step.get("channel", ""),
                     "delay": step.get("delay_trading_days", 0), "variants": slots,
                     "when": step.get("when", "always"),
                     "used": bool(step),
                     "errors": [m for key, msgs in errors.items()
                                if key in (where, f"{where}.channel", f"{where}.when",
                                           f"{where}.delay_trading_days", f"{where}.variants")
                                for m in msgs]})
    return rows


def designer_context(data: dict, errors: dict[str, list[str]]) -> dict:
    goal = data.get("goal") or {}
    audience = data.get("audience") or {}
    return {"data": data, "goal": goal, "include": audience.get("include") or [],
            "exclude": audience.get("exclude") or [], "products": data.get("products") or [],
            "exposure": data.get("exposure_product_types") or [],
            "starts_at": _local_input(data.get("starts_at")),
            "ends_at": _local_input(data.get("ends_at")),
            "step_rows": designer_rows(data, errors), "errors": errors,
            "top_errors": {k: v for k, v in errors.items() if not k.startswith("steps[")}}
