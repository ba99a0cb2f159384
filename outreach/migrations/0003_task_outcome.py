"""RM tasks record what came of them: outcome code, note, when (shared/API.md PATCH /tasks/{id}/)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('outreach', '0002_rmtask'),
    ]

    operations = [
        migrations.AddField(
            model_name='rmtask',
            name='outcome',
            field=models.CharField(blank=True, choices=[('reached', 'Reached'), ('no_answer', 'No answer'), ('wrong_number', 'Wrong number'), ('interested', 'Interested'), ('not_interested', 'Not interested'), ('bought', 'Bought'), ('do_not_call', 'Do not call')], max_length=16, verbose_name='outcome'),
        ),
        migrations.AddField(
            model_name='rmtask',
            name='outcome_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='outcome recorded at'),
        ),
        migrations.AddField(
            model_name='rmtask',
            name='outcome_note',
            field=models.TextField(blank=True, verbose_name='outcome note'),
        ),
    ]
