"""The outbox row names its source (newsletter or campaign, id, step) instead of an edition
foreign key, so one email dispatcher serves newsletters and campaigns; outreach 0008 then takes
the table over (state), as it did RMTask and ForbiddenPhrase. Existing rows become
("newsletter", their edition's id, step 0)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('newsletters', '0008_forbiddenphrase_moved'),
    ]

    operations = [
        migrations.RemoveConstraint(model_name='delivery', name='delivery_once_per_client'),
        migrations.RemoveIndex(model_name='delivery', name='delivery_edition_status'),
        migrations.AddField(
            model_name='delivery', name='source',
            field=models.CharField(choices=[('campaign', 'Campaign'), ('newsletter', 'Newsletter')], default='newsletter', max_length=12, verbose_name='source'),
        ),
        migrations.AddField(
            model_name='delivery', name='source_id',
            field=models.PositiveIntegerField(null=True, verbose_name='source id'),
        ),
        migrations.AddField(
            model_name='delivery', name='step',
            field=models.PositiveSmallIntegerField(default=0, verbose_name='step'),
        ),
        migrations.RunSQL("UPDATE newsletters_delivery SET source_id = edition_id",
                          "UPDATE newsletters_delivery SET edition_id = source_id"),
        migrations.RemoveField(model_name='delivery', name='edition'),
        migrations.AlterField(
            model_name='delivery', name='source_id',
            field=models.PositiveIntegerField(verbose_name='source id'),
        ),
        migrations.AddConstraint(
            model_name='delivery',
            constraint=models.UniqueConstraint(fields=('source', 'source_id', 'step', 'client'), name='delivery_once_per_step'),
        ),
        migrations.AddIndex(
            model_name='delivery',
            index=models.Index(fields=['source', 'source_id', 'status'], name='delivery_source_status'),
        ),
    ]
