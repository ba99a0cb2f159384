"""What a campaign may be: every field checked at once, every wrong one named.

The same check serves the API (POST/PATCH), the designer page and the live preview, so a
campaign that saves is one that can be approved and launched.
"""

from __future__ import annotations

import datetime as dt
import re

from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from clients.models import Product, ProductType
from core.errors import ApplicationError
from outreach.models import Channel
from segments.models import Segment

from .models import CONTROL, Campaign, GoalMetric, Scenario
from .scripts import PRODUCT_PLACEHOLDERS, placeholders_in

FIELDS = ("code", "name", "scenario", "goal", "audience", "products", "priority", "holdout_pct",
          "starts_at", "ends_at", "always_on", "reentry_cooldown_days", "exposure_product_types",
          "steps")
WHEN = ("always", "no_response")  # a later step: to everyone, or to whom the previous did not
MAX_COOLDOWN_DAYS = 3660
RESERVED_CODES = frozenset({"new", "preview", "turbulence"})  # paths beside /campaigns/<code>/
MAX_STEPS = 8
MAX_VARIANTS = 5
MAX_DELAY = 250
MAX_WINDOW_DAYS = 365
SUBJECT_MAX = 200
BODY_MAX = {Channel.SMS: 500, Channel.PUSH: 500}
BODY_MAX_DEFAULT = 5000
_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_VARIANT = re.compile(r"^[A-Za-z0-9_-]{1,16}$")


def _one_of(values) -> str:
    return _("One of: %(values)s.") % {"values": ", ".join(values)}


def _whole(value, low: int, high: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and low <= value <= high


def _codes(value, name: str, errors: dict) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors[name] = [_("A list of codes.")]
        return []
    return list(dict.fromkeys(v.strip() for v in value if v.strip()))


def _when(value, name: str, errors: dict) -> dt.datetime | None:
    if value in (None, ""):
        return None
    parsed = value if isinstance(value, dt.datetime) else \
        parse_datetime(value) if isinstance(value, str) else None
    if parsed is None or parsed.tzinfo is None:
        errors[name] = [_("A date and time with its offset, e.g. 2027-01-04T09:00:00+08:00.")]
        return None
    if not 2000 <= parsed.year <= 2100:
        errors[name] = [_("A date between 2000 and 2100.")]
        return None
    return parsed


def _goal(value, errors: dict) -> dict:
    if not isinstance(value, dict) or set(value) - {"metric", "target", "window_days"}:
        errors["goal"] = [_("An object with metric, target and window_days.")]
        return {}
    metric = value.get("metric", GoalMetric.CONVERSION)
    if metric not in GoalMetric.values:
        errors["goal.metric"] = [_one_of(GoalMetric.values)]
    target = value.get("target", 0)
    if isinstance(target, bool) or not isinstance(target, int | float) or target < 0 \
            or target != target or target > 1e15:
        errors["goal.target"] = [_("A number, zero or more.")]
    window = value.get("window_days", 30)
    if not _whole(window, 1, MAX_WINDOW_DAYS):
        errors["goal.window_days"] = [_("A whole number from %(low)s to %(high)s.")
                                      % {"low": 1, "high": MAX_WINDOW_DAYS}]
    return {"metric": metric, "target": target, "window_days": window}


def _audience(value, errors: dict) -> dict:
    if not isinstance(value, dict) or set(value) - {"include", "exclude"}:
        errors["audience"] = [_("An object with include and exclude (segment codes).")]
        return {}
    include = _codes(value.get("include", []), "audience.include", errors)
    exclude = _codes(value.get("exclude", []), "audience.exclude", errors)
    if not include and "audience.include" not in errors:
        errors["audience.include"] = [_("Include at least one segment.")]
    known = set(Segment.objects.filter(code__in=[*include, *exclude], is_active=True)
                .values_list("code", flat=True))
    for key, codes in (("include", include), ("exclude", exclude)):
        unknown = [c for c in codes if c not in known]
        if unknown:
            errors[f"audience.{key}"] = [_("No such segment: %(codes)s.")
                                         % {"codes": ", ".join(unknown)}]
    both = sorted(set(include) & set(exclude))
    if both:
        errors["audience.exclude"] = [_("Included and excluded at once: %(codes)s.")
                                      % {"codes": ", ".join(both)}]
    return {"include": include, "exclude": exclude}


def _products(value, errors: dict) -> list[str]:
    codes = _codes(value, "products", errors)
    found = {p.product_code: p for p in Product.objects.filter(product_code__in=codes)}
    unknown = [c for c in codes if c not in found]
    if unknown:
        errors["products"] = [_("No such product: %(codes)s.") % {"codes": ", ".join(unknown)}]
    off_sale = [c for c in codes if c in found and not found[c].is_active]
    if off_sale and not unknown:
        errors["products"] = [_("Not on sale: %(codes)s.") % {"codes": ", ".join(off_sale)}]
    return codes


def _variant(value, where: str, channel: str, has_products: bool, errors: dict) -> dict:
    if not isinstance(value, dict) or not {"code", "body"} <= set(value) \
            or set(value) - {"code", "share", "subject", "body"}:
        errors[where] = [_("An object with code, share, subject and body.")]
        return {}
    code, share = value["code"], value.get("share", 100)
    subject, body = value.get("subject", ""), value["body"]
    if not isinstance(code, str) or not _VARIANT.match(code) or code == CONTROL:
        code = code if isinstance(code, str) else ""
        errors[f"{where}.code"] = [_("1-16 letters, digits, - or _, and not “control”.")]
    if not _whole(share, 1, 100):
        errors[f"{where}.share"] = [_("A whole percentage from 1 to 100.")]
    if not isinstance(subject, str) or len(subject) > SUBJECT_MAX:
        errors[f"{where}.subject"] = [_("At most %(n)s characters.") % {"n": SUBJECT_MAX}]
        subject = ""
    elif channel in (Channel.EMAIL, Channel.PUSH) and not subject.strip():
        errors[f"{where}.subject"] = [_("Email and app push need a subject.")]
    limit = BODY_MAX.get(channel, BODY_MAX_DEFAULT)
    if not isinstance(body, str) or not body.strip() or len(body) > limit:
        errors[f"{where}.body"] = [_("The script, 1 to %(n)s characters.") % {"n": limit}]
        body = ""
    for field, text in (("subject", subject), ("body", body)):
        known, unknown = placeholders_in(text)
        if unknown:
            errors[f"{where}.{field}"] = [
                _("Unknown placeholder: %(names)s. Scripts may use {name}, {rm_name}, "
                  "{product_name} and {product_risk_level}.")
                % {"names": ", ".join(f"{{{n}}}" for n in unknown)}]
        elif not has_products and set(known) & set(PRODUCT_PLACEHOLDERS):
            errors[f"{where}.{field}"] = [_("The campaign offers no product to name.")]
    return {"code": code, "share": share, "subject": subject.strip() if subject else "",
            "body": body.strip() if isinstance(body, str) else ""}


def _steps(value, has_products: bool, errors: dict) -> list[dict]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_STEPS:
        errors["steps"] = [_("A list of 1 to %(n)s steps.") % {"n": MAX_STEPS}]
        return []
    steps = []
    for i, step in enumerate(value):
        where = f"steps[{i}]"
        if not isinstance(step, dict) or not {"channel", "variants"} <= set(step) \
                or set(step) - {"channel", "delay_trading_days", "variants", "when"}:
            errors[where] = [_("An object with channel, delay_trading_days, variants and "
                               "optionally when.")]
            continue
        when = step.get("when", "always")
        if when not in WHEN:
            errors[f"{where}.when"] = [_one_of(WHEN)]
        elif i == 0 and when != "always":
            errors[f"{where}.when"] = [_("The first step has no previous step to wait for.")]
        channel, delay = step["channel"], step.get("delay_trading_days", 0)
        if not isinstance(channel, str) or channel not in Channel.values:
            channel = ""
            errors[f"{where}.channel"] = [_one_of(Channel.values)]
        if not _whole(delay, 0, MAX_DELAY):
            errors[f"{where}.delay_trading_days"] = [
                _("A whole number of trading days from 0 to %(n)s.") % {"n": MAX_DELAY}]
        raw = step["variants"]
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_VARIANTS:
            errors[f"{where}.variants"] = [_("1 to %(n)s variants.") % {"n": MAX_VARIANTS}]
            continue
        variants = [_variant(v, f"{where}.variants[{j}]", channel, has_products, errors)
                    for j, v in enumerate(raw)]
        codes = [v.get("code") for v in variants]
        if len(set(codes)) != len(codes):
            errors[f"{where}.variants"] = [_("Each variant needs its own code.")]
        elif all(isinstance(v.get("share"), int) for v in variants) \
                and sum(v["share"] for v in variants) != 100:
            errors[f"{where}.variants"] = [_("The shares must add up to 100 (now %(n)s).")
                                           % {"n": sum(v["share"] for v in variants)}]
        step_out = {"channel": channel, "delay_trading_days": delay, "variants": variants}
        if when == "no_response":  # kept only when set: approved steps keep their hash
            step_out["when"] = when
        steps.append(step_out)
    if steps and not errors:
        arms = [v["code"] for v in steps[0]["variants"]]
        for i, step in enumerate(steps[1:], start=1):
            codes = [v["code"] for v in step["variants"]]
            if len(codes) > 1 and sorted(codes) != sorted(arms):
                errors[f"steps[{i}].variants"] = [
                    _("A later step has one variant for everyone or the first step's variants "
                      "(%(codes)s): the arms are decided once.") % {"codes": ", ".join(arms)}]
    return steps


def campaign_validate(data, *, instance: Campaign | None = None) -> dict:
    """`data` (a whole campaign, or a PATCH's fields over `instance`) checked and normalised,
    or one ApplicationError whose `fields` names every wrong field ("steps[1].variants[0].body",
    "audience.include", "holdout_pct" ...). Nothing is written here."""
    if not isinstance(data, dict):
        raise ApplicationError(_("The campaign must be a JSON object."),
                               fields={"campaign": [_("not an object")]})
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(data) - set(FIELDS))
    for name in unknown:
        errors[name] = [_("Unknown field.")]
    base = {} if instance is None else {f: getattr(instance, f) for f in FIELDS}
    merged = {**base, **{k: v for k, v in data.items() if k in FIELDS}}
    if instance is not None and "code" in data and data["code"] != instance.code:
        errors["code"] = [_("The code of a campaign never changes.")]
    code = merged.get("code")
    if not isinstance(code, str) or not _CODE.match(code):
        errors["code"] = [_("1-64 lower-case letters, digits, - or _, starting with a letter "
                            "or digit.")]
    elif instance is None and code in RESERVED_CODES:
        errors["code"] = [_("This code is reserved (a page of its own).")]
    elif instance is None and Campaign.objects.filter(code=code).exists():
        errors["code"] = [_("A campaign with this code exists.")]
    name = merged.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        errors["name"] = [_("A name of 1 to 200 characters.")]
    scenario = merged.get("scenario", Scenario.AD_HOC)
    if scenario not in Scenario.values:
        errors["scenario"] = [_one_of(Scenario.values)]
    priority = merged.get("priority", 5)
    if not _whole(priority, 1, 9):
        errors["priority"] = [_("A whole number from 1 (highest) to 9.")]
    holdout = merged.get("holdout_pct", 10)
    if not _whole(holdout, 0, 50):
        errors["holdout_pct"] = [_("A whole percentage from 0 to 50.")]
    always_on = merged.get("always_on", False)
    if not isinstance(always_on, bool):
        errors["always_on"] = [_("true or false.")]
    cooldown = merged.get("reentry_cooldown_days", 30)
    if not _whole(cooldown, 0, MAX_COOLDOWN_DAYS):
        errors["reentry_cooldown_days"] = [_("A whole number of days from 0 to %(n)s.")
                                           % {"n": MAX_COOLDOWN_DAYS}]
    exposure = merged.get("exposure_product_types") or []
    if not isinstance(exposure, list) or any(t not in ProductType.values for t in exposure):
        errors["exposure_product_types"] = [_one_of(ProductType.values)]
        exposure = []
    starts_at = _when(merged.get("starts_at"), "starts_at", errors)
    ends_at = _when(merged.get("ends_at"), "ends_at", errors)
    if starts_at and ends_at and ends_at <= starts_at:
        errors["ends_at"] = [_("Must be after the start.")]
    goal = _goal(merged.get("goal") or {}, errors)
    audience = _audience(merged.get("audience") or {}, errors)
    products = _products(merged.get("products") or [], errors)
    if goal.get("metric") == GoalMetric.CONVERSION and not products and "products" not in errors:
        errors["products"] = [_("A conversion goal needs at least one product to offer.")]
    steps = _steps(merged.get("steps"), bool(products), errors)
    if errors:
        raise ApplicationError(_("The campaign was not saved: see the fields."), fields=errors)
    return {"code": code, "name": name.strip(), "scenario": scenario, "goal": goal,
            "audience": audience, "products": products, "priority": priority,
            "holdout_pct": holdout, "starts_at": starts_at, "ends_at": ends_at,
            "always_on": always_on, "reentry_cooldown_days": cooldown,
            "exposure_product_types": list(dict.fromkeys(exposure)), "steps": steps}
