"""Celery beat, every minute: due SMS and app push contacts go to the gateway (a database row)."""

from django.db import migrations

TASK = "outreach.channels.tasks.gateway_send_due_task"
TASK_NAME = "Outreach: SMS and app push to the gateway (every minute)"


def schedule(apps, schema_editor):
    Interval = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_minute, _ = Interval.objects.get_or_create(every=1, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=TASK_NAME, defaults={
            "task": TASK, "interval": every_minute, "enabled": True,
            "description": "Sends queued SMS and app push contacts that are due (outside quiet "
                           "hours, consent and opt-outs re-checked), takes over claims of dead "
                           "workers and retries refused ones; about 50 s a run."})


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("outreach", "0006_contact_ledger"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(schedule, unschedule)]
