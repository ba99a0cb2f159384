"""Celery beat, 04:30 Asia/Shanghai: the nightly catch-up refresh of the analytics rollups (a
database row). The refresh normally runs earlier, queued when the 02:00 scoring run succeeds;
this one finds nothing waiting and brings the rollups up to date if that did not happen."""

from django.db import migrations

TASK = "analytics.tasks.analytics_refresh_nightly_task"
TASK_NAME = "Analytics: refresh the rollups (nightly catch-up)"


def schedule(apps, schema_editor):
    Crontab = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    crontab, _ = Crontab.objects.get_or_create(
        minute="30", hour="4", day_of_week="*", day_of_month="*", month_of_year="*",
        timezone="Asia/Shanghai")
    PeriodicTask.objects.get_or_create(
        name=TASK_NAME, defaults={
            "task": TASK, "crontab": crontab, "enabled": True,
            "description": "Incremental refresh of the analytics rollups (clients touched since "
                           "the last refresh); normally already done after scoring."})


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("analytics", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(schedule, unschedule)]
