"""ForbiddenPhrase now lives in outreach (outreach 0005 takes over its table): state only."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('newsletters', '0007_suppression_lift'),
        ('outreach', '0005_forbiddenphrase'),
    ]

    operations = [migrations.SeparateDatabaseAndState(
        state_operations=[migrations.DeleteModel(name='ForbiddenPhrase')], database_operations=[])]
