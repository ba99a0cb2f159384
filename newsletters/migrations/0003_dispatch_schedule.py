"""Celery beat, every minute: due scheduled editions, stale claims, retries (a database row)."""

from django.db import migrations

TASK = "newsletters.tasks.editions_due_task"
TASK_NAME = "Newsletters: due editions and outbox upkeep (every minute)"


def schedule(apps, schema_editor):
    Interval = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_minute, _ = Interval.objects.get_or_create(every=1, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=TASK_NAME, defaults={
            "task": TASK, "interval": every_minute, "enabled": True,
            "description": "Starts scheduled editions that are due, hands back rows claimed by "
                           "dead workers, re-kicks retries and finishes sent editions."})


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("newsletters", "0002_forbidden_phrases"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(schedule, unschedule)]
