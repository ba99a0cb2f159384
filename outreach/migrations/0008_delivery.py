"""The email outbox (Delivery) moves from newsletters to outreach: one dispatcher for
newsletters and campaigns (newsletters 0009 gave it a generic source). State first, then the
table is renamed and the content type moved, as 0005 did for ForbiddenPhrase."""

import django.db.models.deletion
from django.db import migrations, models


def _move_content_type(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="outreach", model="delivery").exists():
        ContentType.objects.filter(app_label="newsletters", model="delivery").update(
            app_label="outreach")


def _move_content_type_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="newsletters", model="delivery").exists():
        ContentType.objects.filter(app_label="outreach", model="delivery").update(
            app_label="newsletters")


class Migration(migrations.Migration):

    dependencies = [
        ('outreach', '0007_gateway_send_schedule'),
        ('newsletters', '0009_delivery_generic_source'),
        ('contenttypes', '0002_remove_content_type_name'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.CreateModel(
                name='Delivery',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('source', models.CharField(choices=[('campaign', 'Campaign'), ('newsletter', 'Newsletter')], default='newsletter', max_length=12, verbose_name='source')),
                    ('source_id', models.PositiveIntegerField(verbose_name='source id')),
                    ('step', models.PositiveSmallIntegerField(default=0, verbose_name='step')),
                    ('status', models.CharField(choices=[('pending', 'Pending'), ('sending', 'Sending'), ('sent', 'Sent'), ('retry', 'Waiting to retry'), ('failed', 'Failed'), ('excluded', 'Excluded'), ('cancelled', 'Cancelled')], default='pending', max_length=10, verbose_name='status')),
                    ('exclusion_reason', models.CharField(blank=True, choices=[('no_consent', 'No email consent'), ('unsubscribed', 'Unsubscribed'), ('no_address', 'No email address'), ('bounced', 'Bounced before')], max_length=16, verbose_name='excluded because')),
                    ('to_email', models.EmailField(blank=True, max_length=254, verbose_name='to')),
                    ('message_id', models.CharField(max_length=200, verbose_name='Message-ID')),
                    ('token', models.CharField(help_text='random key of the signed links in this message', max_length=64)),
                    ('attempts', models.PositiveSmallIntegerField(default=0)),
                    ('next_attempt_at', models.DateTimeField(blank=True, null=True)),
                    ('claimed_at', models.DateTimeField(blank=True, null=True)),
                    ('sent_at', models.DateTimeField(blank=True, null=True)),
                    ('last_error', models.TextField(blank=True)),
                    ('opened_at', models.DateTimeField(blank=True, null=True)),
                    ('clicked_at', models.DateTimeField(blank=True, null=True)),
                    ('clicks', models.PositiveIntegerField(default=0)),
                    ('context', models.JSONField(blank=True, default=dict)),
                    ('client', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='email_deliveries', to='clients.client')),
                ],
                options={
                    'verbose_name': 'delivery',
                    'verbose_name_plural': 'deliveries',
                    'db_table': 'newsletters_delivery',
                    'constraints': [
                        models.UniqueConstraint(fields=('source', 'source_id', 'step', 'client'), name='delivery_once_per_step'),
                        models.UniqueConstraint(fields=('message_id',), name='delivery_message_id_unique'),
                        models.UniqueConstraint(fields=('token',), name='delivery_token_unique'),
                        models.CheckConstraint(condition=models.Q(('status__in', ['pending', 'sending', 'sent', 'retry', 'failed', 'excluded', 'cancelled'])), name='delivery_status_valid'),
                    ],
                    'indexes': [
                        models.Index(fields=['source', 'source_id', 'status'], name='delivery_source_status'),
                        models.Index(condition=models.Q(('status__in', ['pending', 'retry'])), fields=['status', 'next_attempt_at'], name='delivery_due'),
                    ],
                },
            ),
        ]),
        migrations.AlterModelTable(name='delivery', table=None),
        migrations.RunPython(_move_content_type, _move_content_type_back),
    ]
