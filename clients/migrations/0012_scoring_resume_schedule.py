"""Celery beat, every 10 minutes: resume scoring runs that stopped moving (a database row)."""

from django.db import migrations

TASK = "clients.scoring.tasks.scoring_resume_stale_task"
TASK_NAME = "Scoring: resume runs that stopped moving (every 10 minutes)"


def schedule(apps, schema_editor):
    Interval = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_ten, _ = Interval.objects.get_or_create(every=10, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=TASK_NAME, defaults={
            "task": TASK, "interval": every_ten, "enabled": True,
            "description": "A queued or running scoring run with no progress for "
                           "SCORING_STALE_SECONDS (its worker died, its message was lost) is "
                           "resumed: chunks already done are kept."})


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("clients", "0011_score_sort_index"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(schedule, unschedule)]
