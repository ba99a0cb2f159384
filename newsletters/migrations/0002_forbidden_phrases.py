"""Seed the phrases regulators forbid in financial marketing (built in; ops may add more)."""

from django.db import migrations

BUILTIN = ["保本", "保收益", "稳赚", "无风险", "零风险", "guaranteed return"]


def seed(apps, schema_editor):
    ForbiddenPhrase = apps.get_model("newsletters", "ForbiddenPhrase")
    for phrase in BUILTIN:
        ForbiddenPhrase.objects.update_or_create(phrase=phrase, defaults={"is_builtin": True})


def unseed(apps, schema_editor):
    ForbiddenPhrase = apps.get_model("newsletters", "ForbiddenPhrase")
    ForbiddenPhrase.objects.filter(phrase__in=BUILTIN, is_builtin=True).delete()


class Migration(migrations.Migration):
    dependencies = [("newsletters", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
