"""Scenarios (shared/DOMAIN.md "Scenarios"): segments of kind `scenario`, one per situation
that makes a contact natural, each a rule in the ordinary rule language over the scenario
fields (segments.rules), with its thresholds taken from settings.

The rules are not edited by hand: `scenarios_sync` (run before every refresh of all segments
and before a scenario's own refresh) writes each scenario's rule from the current settings,
as a new rule version only when it differs, and creates a seeded scenario that is missing.
Refreshed set-based like every segment, with joined/left recorded; an always-on campaign
(campaigns) enters the clients who newly join its audience.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings


def _cond(field: str, op: str, value: Any) -> dict:
    return {"field": field, "op": op, "value": value}


def threshold(name: str) -> float:
    """A scenario threshold: the setting SCENARIO_<NAME>, else DOMAIN.md's default."""
    return getattr(settings, f"SCENARIO_{name}", DEFAULTS[name])


DEFAULTS: dict[str, float] = {
    "ZOMBIE_MIN_DAYS": 30,          # opened at least this many days ago ...
    "DORMANT_DAYS": 180,            # no purchase for at least this many days ...
    "DORMANT_MIN_AUM": 10_000,      # ... but still this much AUM (CNY)
    "INFLOW_MIN": 100_000,          # deposits in the last 5 trading days (CNY) ...
    "INFLOW_PCT_AUM": 30,           # ... or this share of AUM (%)
    "MATURITY_TRADING_DAYS": 10,    # a holding matures within this many trading days
    "RISK_EXPIRY_DAYS": 30,         # the risk assessment expires within this many days
    "BIRTHDAY_DAYS": 7,             # the birthday is within this many days
    "ONBOARDING_DAYS": 30,          # opened within this many days
}

_OPEN = _cond("status", "ne", "closed")


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def _rules() -> dict[str, dict]:
    t = {name: _number(threshold(name)) for name in DEFAULTS}
    return {
        "scn_zombie_account": {"all": [
            _OPEN, _cond("days_since_opened", "gte", t["ZOMBIE_MIN_DAYS"]),
            {"any": [_cond("funded", "eq", False), _cond("purchases_total", "eq", 0)]}]},
        "scn_dormant": {"all": [
            _OPEN, _cond("days_since_last_purchase", "gte", t["DORMANT_DAYS"]),
            _cond("aum", "gte", t["DORMANT_MIN_AUM"])]},
        "scn_cash_inflow": {"all": [_OPEN, {"any": [
            _cond("inflow_5d", "gte", t["INFLOW_MIN"]),
            _cond("inflow_5d_pct_aum", "gte", t["INFLOW_PCT_AUM"])]}]},
        "scn_product_maturity": {"all": [
            _OPEN, _cond("days_to_maturity", "lte", t["MATURITY_TRADING_DAYS"])]},
        "scn_risk_expiring": {"all": [
            _OPEN, _cond("days_to_risk_expiry", "lte", t["RISK_EXPIRY_DAYS"])]},
        "scn_birthday": {"all": [_OPEN, _cond("days_to_birthday", "lte", t["BIRTHDAY_DAYS"])]},
        "scn_onboarding": {"all": [
            _OPEN, _cond("days_since_opened", "lte", t["ONBOARDING_DAYS"])]},
    }


@dataclass(frozen=True)
class ScenarioText:
    code: str
    campaign_scenario: str  # campaigns.Scenario value of a journey on it
    name_zh: str
    name_en: str
    description_zh: str
    description_en: str
    script_zh: str  # the suggested opening for the RM (shown on the RM's home page)
    script_en: str


SCENARIOS = [
    ScenarioText(
        "scn_zombie_account", "zombie_account", "僵尸户", "Zombie accounts",
        "开户满 30 天，从未入金或从未购买。", "Opened 30 days ago or more, never funded or "
        "never bought.",
        "您好，我是您的客户经理。看到您开户后还没有开始投资，我可以帮您介绍适合您风险等级的入门产品。",
        "Hello, I'm your relationship manager. I see you haven't started investing since you "
        "opened your account; I can walk you through starter products that suit your risk "
        "level."),
    ScenarioText(
        "scn_dormant", "dormant", "休眠客户", "Dormant clients",
        "180 天以上没有购买，但资产仍不低于 1 万元。", "No purchase for 180 days or more, "
        "but AUM of at least 10,000 CNY.",
        "您好，好久没联系了。最近市场有些变化，想和您一起回顾一下持仓，看看是否需要调整。",
        "Hello, it has been a while. The market has moved recently; could we review your "
        "holdings together and see whether anything needs adjusting?"),
    ScenarioText(
        "scn_cash_inflow", "cash_inflow", "大额入金", "Large cash inflow",
        "最近 5 个交易日入金不低于 10 万元或资产的 30%。", "Deposits in the last 5 trading "
        "days of at least 100,000 CNY or 30% of AUM.",
        "您好，看到您最近有一笔资金转入。如果暂时没有安排，我可以为您介绍几款与您风险等级匹配的产品。",
        "Hello, I noticed money recently arrived in your account. If you have no plans for it "
        "yet, I can suggest a few products that match your risk level."),
    ScenarioText(
        "scn_product_maturity", "product_maturity", "产品到期", "Product maturity",
        "有持仓将在 10 个交易日内到期。", "A holding matures within 10 trading days.",
        "您好，您持有的产品即将到期。到期资金想怎么安排？我可以帮您比较续作和其他选择。",
        "Hello, one of your products matures soon. How would you like to place the money? I "
        "can compare rolling it over with other options for you."),
    ScenarioText(
        "scn_risk_expiring", "risk_expiring", "测评到期", "Risk assessment expiring",
        "风险测评 30 天内到期或已过期。", "The risk assessment expires within 30 days or has "
        "expired.",
        "您好，您的风险承受能力测评即将到期（或已过期），"
        "为不影响您购买产品，请抽空在 App 中重新测评。",
        "Hello, your risk assessment expires soon (or has expired). To keep buying products "
        "without interruption, please renew it in the app."),
    ScenarioText(
        "scn_birthday", "birthday", "生日", "Birthday",
        "7 天内过生日。", "Birthday within 7 days.",
        "您好，提前祝您生日快乐！感谢您一直以来的信任。",
        "Hello, an early happy birthday to you, and thank you for your trust."),
    ScenarioText(
        "scn_onboarding", "onboarding", "新客", "New clients",
        "开户 30 天以内。", "Opened within 30 days.",
        "您好，欢迎开户！我是您的专属客户经理，有任何问题随时联系我，我先为您介绍一下入金和交易的基本操作。",
        "Hello and welcome! I'm your relationship manager; call me any time. Let me first "
        "show you how to fund your account and place a trade."),
]
SCENARIO_CODES = tuple(s.code for s in SCENARIOS)


def scenario_rule(code: str) -> dict:
    """The rule of the scenario `code` under the current settings."""
    return _rules()[code]


def scenario_playbook(text: ScenarioText) -> dict:
    return {"zh-hans": {"script": text.script_zh}, "en": {"script": text.script_en},
            "campaign_scenario": text.campaign_scenario}
