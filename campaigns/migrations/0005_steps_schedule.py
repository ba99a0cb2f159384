"""Celery beat, every minute: queued launches, due campaign steps, finished campaigns."""

from django.db import migrations

TASK = "campaigns.tasks.campaign_steps_task"
TASK_NAME = "Campaigns: launches, due steps and completion (every minute)"


def schedule(apps, schema_editor):
    Interval = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_minute, _ = Interval.objects.get_or_create(every=1, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=TASK_NAME, defaults={
            "task": TASK, "interval": every_minute, "enabled": True,
            "description": "Runs launches left queued, the steps due on the trading calendar "
                           "and completes campaigns whose attribution window is over."})


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("campaigns", "0004_campaigns"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(schedule, unschedule)]
