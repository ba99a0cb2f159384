"""ForbiddenPhrase moves from newsletters to outreach (campaigns check their scripts against
the same list and may not import newsletters). State first, then the table is renamed and the
content type moved, as outreach 0002 did for RMTask."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def _move_content_type(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="outreach", model="forbiddenphrase").exists():
        ContentType.objects.filter(app_label="newsletters", model="forbiddenphrase").update(
            app_label="outreach")


def _move_content_type_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="newsletters", model="forbiddenphrase").exists():
        ContentType.objects.filter(app_label="outreach", model="forbiddenphrase").update(
            app_label="newsletters")


class Migration(migrations.Migration):

    dependencies = [
        ('outreach', '0004_contact_policy'),
        ('newsletters', '0007_suppression_lift'),
        ('contenttypes', '0002_remove_content_type_name'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.CreateModel(
                name='ForbiddenPhrase',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('phrase', models.CharField(max_length=100, unique=True, verbose_name='phrase')),
                    ('is_builtin', models.BooleanField(default=False, verbose_name='built in')),
                    ('created_at', models.DateTimeField(auto_now_add=True)),
                    ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ],
                options={
                    'verbose_name': 'forbidden phrase',
                    'verbose_name_plural': 'forbidden phrases',
                    'ordering': ['phrase'],
                    'db_table': 'newsletters_forbiddenphrase',
                },
            ),
        ]),
        migrations.AlterModelTable(name='forbiddenphrase', table=None),
        migrations.RunPython(_move_content_type, _move_content_type_back),
    ]
