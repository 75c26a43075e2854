# DispatchRun and Heartbeat now belong to the tasks app (tasks.0002 took over and renamed their
# tables); monitoring forgets them without touching the database.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("monitoring", "0001_initial"),
        ("tasks", "0002_dispatch_runs_from_monitoring"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="DispatchRun"),
                migrations.DeleteModel(name="Heartbeat"),
            ],
            database_operations=[],
        ),
    ]
