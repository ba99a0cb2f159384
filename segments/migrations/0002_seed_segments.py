"""The eight personas of DOMAIN.md (default rules and playbooks in both languages), the four
value tiers and the three service levels, each with rule version 1; and the nightly refresh of
every segment at 03:00 Asia/Shanghai (after the 02:00 scoring run) as a django_celery_beat row.

"Employed" in the independent-women rule means the occupations employee, professional and
executive.
"""

from django.db import migrations

TASK_NAME = "Refresh all segments"
TASK = "segments.tasks.segments_refresh_all_task"


def _cond(field, op, value):
    return {"field": field, "op": op, "value": value}


PERSONAS = [
    {
        "code": "silver_haired", "name_zh": "初老银发", "name_en": "Young-old silver-haired",
        "rule": _cond("age", "between", [60, 69]),
        "en": {"traits": "Few high-risk holdings, low debt; care how products affect them and "
                         "about financial literacy.",
               "channels": "Community events, universities for the elderly.",
               "service": "Steady products (fixed income, money-market funds), retirement and "
                          "pension planning, protecting savings."},
        "zh-hans": {"traits": "高风险持仓少、负债低；关注产品对自身的影响，重视金融知识。",
                    "channels": "社区活动、老年大学。",
                    "service": "稳健型产品（固收、货币基金）、养老规划、守护储蓄。"},
        "product_types": ["fixed_income", "money_market"],
    },
    {
        "code": "stay_at_home_mother", "name_zh": "全职宝妈", "name_en": "Stay-at-home mothers",
        "rule": {"all": [_cond("gender", "eq", "F"), _cond("occupation", "eq", "homemaker"),
                         _cond("has_children", "eq", True)]},
        "en": {"traits": "Careful with family spending, sometimes impulsive.",
               "channels": "Online mother-and-baby communities, parent-child events.",
               "service": "Family financial planning, education savings, fixed income, "
                          "investor education."},
        "zh-hans": {"traits": "家庭开支谨慎，有时冲动消费。",
                    "channels": "线上母婴社群、亲子活动。",
                    "service": "家庭理财规划、教育金储备、固收产品、投资者教育。"},
        "product_types": ["fixed_income", "wealth_management", "money_market"],
    },
    {
        "code": "gen_z", "name_zh": "Z世代", "name_en": "Gen Z",
        "rule": _cond("birth_year", "between", [1995, 2009]),
        "en": {"traits": "Demanding, like brands with a story, get financial news on social "
                         "media.",
               "channels": "Social media, campuses.",
               "service": "An internet-native brand, live streams and short videos, investor "
                          "education, long-term companionship."},
        "zh-hans": {"traits": "要求高，偏爱有故事的品牌，从社交媒体获取财经资讯。",
                    "channels": "社交媒体、校园。",
                    "service": "互联网原生品牌、直播与短视频、投资者教育、长期陪伴。"},
        "product_types": ["fund", "money_market"],
    },
    {
        "code": "college_student", "name_zh": "大学生", "name_en": "College students",
        "rule": {"all": [_cond("occupation", "eq", "student"), _cond("age", "between", [18, 24])]},
        "en": {"traits": "Try new products and models, creative.",
               "channels": "Campus talks, student start-up contests.",
               "service": "Financial-literacy courses, internships, simulated trading, low-risk "
                          "products."},
        "zh-hans": {"traits": "乐于尝试新产品和新模式，富有创造力。",
                    "channels": "校园讲座、大学生创业大赛。",
                    "service": "金融知识课程、实习机会、模拟交易、低风险产品。"},
        "product_types": ["money_market", "fund"],
    },
    {
        "code": "independent_woman", "name_zh": "独立女性", "name_en": "Independent women",
        "rule": {"all": [_cond("gender", "eq", "F"),
                         _cond("occupation", "in", ["employee", "professional", "executive"]),
                         _cond("age", "between", [25, 49])]},
        "en": {"traits": "Rational and independent, focus on growth and career.",
               "channels": "Professional women's forums, female founders' platforms.",
               "service": "Dedicated advisory, planning, talks and workshops."},
        "zh-hans": {"traits": "理性独立，关注个人成长与事业发展。",
                    "channels": "职业女性论坛、女性创业者平台。",
                    "service": "专属投顾、财务规划、讲座与工作坊。"},
        "product_types": ["fund", "wealth_management", "advisory_service"],
    },
    {
        "code": "sme_owner", "name_zh": "中小企业主", "name_en": "SME owners",
        "rule": _cond("occupation", "eq", "business_owner"),
        "en": {"traits": "Personal and company wealth entangled; need asset segregation and "
                         "liquidity management.",
               "channels": "Chambers of commerce, industry associations.",
               "service": "Full service incl. listing coaching and financing advice, tailored "
                          "solutions."},
        "zh-hans": {"traits": "个人与企业财富交织，需要资产隔离与流动性管理。",
                    "channels": "商会、行业协会。",
                    "service": "全方位服务，包括上市辅导与融资建议，定制化方案。"},
        "product_types": ["wealth_management", "fixed_income", "money_market", "structured"],
    },
    {
        "code": "tech_executive", "name_zh": "科创企业高管", "name_en": "Tech-company executives",
        "rule": {"all": [_cond("occupation", "eq", "executive"),
                         _cond("industry", "eq", "technology")]},
        "en": {"traits": "Know capital markets, need full-chain finance.",
               "channels": "Science parks, incubators.",
               "service": "Advisory, financial planning, equity-incentive planning."},
        "zh-hans": {"traits": "熟悉资本市场，需要全链条金融服务。",
                    "channels": "科技园区、孵化器。",
                    "service": "投资顾问、财务规划、股权激励规划。"},
        "product_types": ["advisory_service", "private_fund", "structured", "stock"],
    },
    {
        "code": "high_net_worth", "name_zh": "高净值", "name_en": "High-net-worth",
        "rule": _cond("service_level", "eq", "hnw"),
        "en": {"traits": "Want depth, privacy, formal channels; inheritance and risk "
                         "management.",
               "channels": "RM one-on-one, offline strategy briefings and forums.",
               "service": "Dedicated RM, bespoke products, tax/legal/health add-ons, the "
                          "newsletter."},
        "zh-hans": {"traits": "追求深度、私密与正式渠道；关注财富传承与风险管理。",
                    "channels": "客户经理一对一、线下策略会与论坛。",
                    "service": "专属客户经理、定制产品、税务/法律/健康增值服务、专属资讯简报。"},
        "product_types": ["private_fund", "structured", "advisory_service", "wealth_management"],
    },
]

TIERS = [
    ("tier_guiding", "guiding", "重要引导客户", "Key guiding clients"),
    ("tier_development", "development", "重要发展客户", "Key development clients"),
    ("tier_potential", "potential", "潜在增值客户", "Potential value-add clients"),
    ("tier_long_tail", "long_tail", "长尾客户", "Long-tail clients"),
]

LEVELS = [
    ("level_mass", "mass", "大众客户", "Mass clients"),
    ("level_affluent", "affluent", "富裕客户", "Affluent clients"),
    ("level_hnw", "hnw", "高净值客户", "High-net-worth clients"),
]


def _segments():
    for p in PERSONAS:
        yield {"code": p["code"], "kind": "persona", "name_zh": p["name_zh"],
               "name_en": p["name_en"], "rule": p["rule"],
               "playbook": {"zh-hans": p["zh-hans"], "en": p["en"],
                            "product_types": p["product_types"]}}
    for code, tier, zh, en in TIERS:
        yield {"code": code, "kind": "tier", "name_zh": zh, "name_en": en,
               "rule": _cond("tier", "eq", tier), "playbook": {}}
    for code, level, zh, en in LEVELS:
        yield {"code": code, "kind": "service_level", "name_zh": zh, "name_en": en,
               "rule": _cond("service_level", "eq", level), "playbook": {}}


def seed(apps, schema_editor):
    Segment = apps.get_model("segments", "Segment")
    Version = apps.get_model("segments", "SegmentRuleVersion")
    for data in _segments():
        if Segment.objects.filter(code=data["code"]).exists():
            continue
        segment = Segment.objects.create(is_system=True, rule_version=1, **data)
        Version.objects.create(segment=segment, version=1, rule=data["rule"])
    Crontab = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    crontab, _ = Crontab.objects.get_or_create(
        minute="0", hour="3", day_of_week="*", day_of_month="*", month_of_year="*",
        timezone="Asia/Shanghai")
    PeriodicTask.objects.get_or_create(
        name=TASK_NAME, defaults={"task": TASK, "crontab": crontab, "enabled": True,
                                  "description": "Refreshes the membership of every segment."})


def unseed(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()
    apps.get_model("segments", "Segment").objects.filter(
        code__in=[d["code"] for d in _segments()], is_system=True).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("segments", "0001_initial"),
        ("clients", "0004_scoring_seed"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
