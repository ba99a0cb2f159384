"""RMTask moves from campaigns to outreach (shared/DESIGN.md: RM tasks are outreach's, below
newsletters and campaigns). The table already exists as campaigns_rmtask: this migration only
tells Django's state that the model now lives here (campaigns 0003 removes it there), then
renames the table and moves the content type, so admin history and permissions follow."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def _move_content_type(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="outreach", model="rmtask").exists():
        ContentType.objects.filter(app_label="campaigns", model="rmtask").update(
            app_label="outreach")


def _move_content_type_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="campaigns", model="rmtask").exists():
        ContentType.objects.filter(app_label="outreach", model="rmtask").update(
            app_label="campaigns")


class Migration(migrations.Migration):

    dependencies = [
        ('clients', '0012_scoring_resume_schedule'),
        ('outreach', '0001_trading_calendar'),
        ('campaigns', '0002_task_client_optional_follow_up'),
        ('contenttypes', '0002_remove_content_type_name'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [migrations.SeparateDatabaseAndState(state_operations=[
        migrations.CreateModel(
            name='RMTask',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='created at')),
                ('updated_at', models.DateTimeField(auto_now=True, verbose_name='updated at')),
                ('source', models.CharField(choices=[('newsletter_comment', 'Newsletter comment'), ('newsletter_reply', 'Newsletter reply'), ('newsletter_rating', 'Low newsletter rating'), ('campaign', 'Campaign'), ('follow_up', 'Call follow-up'), ('manual', 'Manual')], max_length=24, verbose_name='source')),
                ('title', models.CharField(max_length=200, verbose_name='title')),
                ('detail', models.TextField(blank=True, verbose_name='detail')),
                ('status', models.CharField(choices=[('open', 'Open'), ('done', 'Done'), ('cancelled', 'Cancelled')], db_index=True, default='open', max_length=10, verbose_name='status')),
                ('due_on', models.DateField(blank=True, null=True, verbose_name='due on')),
                ('done_at', models.DateTimeField(blank=True, null=True, verbose_name='done at')),
                ('origin_type', models.CharField(blank=True, max_length=40)),
                ('origin_id', models.CharField(blank=True, max_length=64)),
                ('assignee', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='tasks', to=settings.AUTH_USER_MODEL, verbose_name='assigned to')),
                ('client', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='tasks', to='clients.client', verbose_name='client')),
            ],
            options={
                'verbose_name': 'RM task',
                'verbose_name_plural': 'RM tasks',
                'db_table': 'campaigns_rmtask',
                'ordering': ['status', '-created_at'],
                'indexes': [models.Index(fields=['assignee', 'status', '-created_at'], name='task_inbox'), models.Index(fields=['client', '-created_at'], name='task_client')],
                'constraints': [models.UniqueConstraint(condition=models.Q(('origin_type', ''), _negated=True), fields=('origin_type', 'origin_id'), name='task_unique_origin')],
            },
        ),
    ], database_operations=[]),
        migrations.AlterModelTable(name='rmtask', table=None),
        migrations.RunPython(_move_content_type, _move_content_type_back),
    ]
