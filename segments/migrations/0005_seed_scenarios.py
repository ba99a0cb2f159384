"""The seeded scenario segments (API.md "Scenario data"), with rule version 1 at the thresholds of the
settings (DOMAIN.md's defaults unless SCENARIO_* is set); `segments.services.scenarios_sync`
keeps their rules in step with those settings afterwards."""

from django.db import migrations


def seed(apps, schema_editor):
    from segments.scenarios import SCENARIOS, scenario_playbook, scenario_rule

    Segment = apps.get_model("segments", "Segment")
    Version = apps.get_model("segments", "SegmentRuleVersion")
    for text in SCENARIOS:
        if Segment.objects.filter(code=text.code).exists():
            continue
        rule = scenario_rule(text.code)
        segment = Segment.objects.create(
            code=text.code, kind="scenario", name_zh=text.name_zh, name_en=text.name_en,
            description_zh=text.description_zh, description_en=text.description_en,
            playbook=scenario_playbook(text), is_system=True, rule=rule, rule_version=1)
        Version.objects.create(segment=segment, version=1, rule=rule)


def unseed(apps, schema_editor):
    from segments.scenarios import SCENARIO_CODES

    apps.get_model("segments", "Segment").objects.filter(code__in=SCENARIO_CODES,
                                                         kind="scenario").delete()


class Migration(migrations.Migration):
    dependencies = [("segments", "0004_scenario_kind")]
    operations = [migrations.RunPython(seed, unseed)]
