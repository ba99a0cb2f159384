"""The journeys the product ships (issue #12): onboarding (trading days 0, 3, 7 and 30 after
the account opens) and zombie-account reactivation, as drafts for compliance to approve, by
the system account `crm-system` (so that any compliance officer may approve them: the author
never does). Their audiences are the seeded scenario segments (segments.scenarios)."""

SYSTEM_USERNAME = "crm-system"

JOURNEYS = [
    {
        "code": "journey-onboarding", "name": "新客陪伴旅程 · Onboarding journey",
        "scenario": "onboarding", "always_on": True, "reentry_cooldown_days": 365,
        "goal": {"metric": "funded", "target": 0.6, "window_days": 30},
        "audience": {"include": ["scn_onboarding"], "exclude": []},
        "products": [], "priority": 4, "holdout_pct": 10,
        "steps": [
            {"channel": "sms", "delay_trading_days": 0, "variants": [
                {"code": "A", "share": 50, "subject": "",
                 "body": "{name}您好，欢迎成为我们的客户！您的专属客户经理{rm_name}将为您服务。"
                         "回TD退订"},
                {"code": "B", "share": 50, "subject": "",
                 "body": "{name}您好，开户成功！入金后即可开始理财，有问题请找客户经理"
                         "{rm_name}。回TD退订"}]},
            {"channel": "phone", "delay_trading_days": 3, "variants": [
                {"code": "A", "share": 100, "subject": "新客回访",
                 "body": "{name}您好，我是您的客户经理{rm_name}。想了解一下您开户后的使用"
                         "情况，入金和交易有没有需要我帮忙的地方？"}]},
            {"channel": "email", "delay_trading_days": 4, "variants": [
                {"code": "A", "share": 100, "subject": "投资第一课：了解您的风险等级",
                 "body": "{name}您好：\n\n投资前，先了解自己的风险承受能力。我们为新客户准备"
                         "了投资者教育课程，欢迎在 App 中学习。\n\n您的客户经理 {rm_name}"}]},
            {"channel": "wechat", "delay_trading_days": 23, "variants": [
                {"code": "A", "share": 100, "subject": "满月问候",
                 "body": "{name}您好，开户满一个月了，我是{rm_name}。最近有空的话，我们一起"
                         "做一次资产配置的梳理吧。"}]},
        ],
    },
    {
        "code": "journey-zombie-reactivation", "name": "僵尸户激活旅程 · Zombie-account "
                                                      "reactivation",
        "scenario": "zombie_account", "always_on": True, "reentry_cooldown_days": 90,
        "goal": {"metric": "response", "target": 0.1, "window_days": 30},
        "audience": {"include": ["scn_zombie_account"], "exclude": []},
        "products": [], "priority": 6, "holdout_pct": 20,
        "steps": [
            {"channel": "sms", "delay_trading_days": 0, "variants": [
                {"code": "A", "share": 50, "subject": "",
                 "body": "{name}您好，您的账户已开通，还未开始投资。客户经理{rm_name}可为您"
                         "介绍入门理财。回TD退订"},
                {"code": "B", "share": 50, "subject": "",
                 "body": "{name}您好，新手理财课程已上线，欢迎在 App 中免费学习。回TD退订"}]},
            {"channel": "phone", "delay_trading_days": 3, "when": "no_response", "variants": [
                {"code": "A", "share": 100, "subject": "激活回访",
                 "body": "{name}您好，我是客户经理{rm_name}。看到您开户后还没有开始投资，"
                         "有什么顾虑吗？我可以帮您了解适合您风险等级的产品。"}]},
        ],
    },
]
