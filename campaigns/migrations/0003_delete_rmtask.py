"""RMTask now lives in outreach (outreach 0002 takes over its table): state only."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0002_task_client_optional_follow_up'),
        ('outreach', '0002_rmtask'),
    ]

    operations = [migrations.SeparateDatabaseAndState(
        state_operations=[migrations.DeleteModel(name='RMTask')], database_operations=[])]
