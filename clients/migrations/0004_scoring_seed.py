"""Scheme version 1 (DOMAIN.md's table exactly) and the nightly scoring at 02:00 Shanghai."""

from django.db import migrations

TASK_NAME = "Nightly value scoring"
TASK = "clients.scoring.tasks.scoring_nightly_task"

VERSION_1 = {
    "version": 1,
    "window_months": 12,
    "amount_bounds": [10000, 50000, 100000, 500000, 1000000],
    "frequency_bounds": [2, 5, 10, 50, 100],
    "benefit_bounds": [10000, 30000, 100000, 300000, 500000],
    "high_score": 4,
    "recent_days": 30,
    "tier_precedence": ["guiding", "development", "potential", "long_tail"],
    "note": "DOMAIN.md value-scoring table (数量-质量-效益), version 1",
}


def seed(apps, schema_editor):
    Scheme = apps.get_model("clients", "ScoringScheme")
    if not Scheme.objects.filter(version=1).exists():
        Scheme.objects.create(**VERSION_1)
    Crontab = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    crontab, _ = Crontab.objects.get_or_create(
        minute="0", hour="2", day_of_week="*", day_of_month="*", month_of_year="*",
        timezone="Asia/Shanghai")
    PeriodicTask.objects.get_or_create(
        name=TASK_NAME, defaults={"task": TASK, "crontab": crontab, "enabled": True,
                                  "description": "Scores every client as of yesterday."})


def unseed(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()
    Scheme = apps.get_model("clients", "ScoringScheme")
    Scheme.objects.filter(version=1, runs__isnull=True).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("clients", "0003_scoring"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
