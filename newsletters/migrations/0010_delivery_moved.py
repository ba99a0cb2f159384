"""Delivery now lives in outreach (outreach 0008 takes over its table): state only."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('newsletters', '0009_delivery_generic_source'),
        ('outreach', '0008_delivery'),
    ]

    operations = [migrations.SeparateDatabaseAndState(state_operations=[
        migrations.AlterField(
            model_name='feedback', name='delivery',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='feedback', to='outreach.delivery'),
        ),
        migrations.AlterField(
            model_name='suppression', name='source_delivery',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='outreach.delivery'),
        ),
        migrations.DeleteModel(name='Delivery'),
    ], database_operations=[])]
