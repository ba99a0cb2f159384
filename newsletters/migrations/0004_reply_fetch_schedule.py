"""Celery beat, every minute: email replies from the reply mailbox (a database row)."""

from django.db import migrations

TASK = "newsletters.tasks.replies_fetch_task"
TASK_NAME = "Newsletters: fetch email replies from the reply mailbox (every minute)"


def schedule(apps, schema_editor):
    Interval = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_minute, _ = Interval.objects.get_or_create(every=1, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=TASK_NAME, defaults={
            "task": TASK, "interval": every_minute, "enabled": True,
            "description": "Reads new messages in NEWSLETTER_REPLY_MAILBOX_URL; replies to a "
                           "newsletter become feedback and a task for the client's RM. Does "
                           "nothing while that setting is empty."})


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("newsletters", "0003_dispatch_schedule"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(schedule, unschedule)]
