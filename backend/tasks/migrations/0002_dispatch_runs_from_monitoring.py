# DispatchRun and Heartbeat move from the monitoring app to the tasks app (tasks write them,
# monitoring only reads them). The rows stay: the state moves without touching the database,
# then the tables are renamed to the tasks app's names.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("tasks", "0001_initial"),
        ("monitoring", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Heartbeat",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("component", models.CharField(max_length=100, unique=True)),
                        ("last_seen", models.DateTimeField()),
                        ("detail", models.JSONField(blank=True, default=dict)),
                    ],
                    options={"db_table": "monitoring_heartbeat"},
                ),
                migrations.CreateModel(
                    name="DispatchRun",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("schedule", models.CharField(db_index=True, max_length=200)),
                        ("slot", models.DateTimeField(help_text="Start of the time slot this run covers (UTC).")),
                        ("status", models.CharField(choices=[("running", "running"), ("done", "done"), ("skipped", "skipped (previous run still open)")], default="running", max_length=16)),
                        ("planned", models.PositiveIntegerField(default=0, help_text="Assets the dispatcher planned.")),
                        ("done", models.PositiveIntegerField(default=0, help_text="Assets whose batch succeeded.")),
                        ("failed", models.PositiveIntegerField(default=0, help_text="Assets whose batch finally failed.")),
                        ("batches", models.PositiveIntegerField(default=0)),
                        ("started_at", models.DateTimeField(auto_now_add=True)),
                        ("finished_at", models.DateTimeField(blank=True, null=True)),
                        ("note", models.CharField(blank=True, max_length=300)),
                    ],
                    options={
                        "db_table": "monitoring_dispatchrun",
                        "ordering": ["-slot"],
                        "constraints": [
                            models.UniqueConstraint(fields=("schedule", "slot"), name="dispatchrun_one_per_slot"),
                            models.CheckConstraint(condition=models.Q(("done__lte", models.F("planned"))), name="dispatchrun_done_le_planned"),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.AlterModelTable(name="heartbeat", table=None),
        migrations.AlterModelTable(name="dispatchrun", table=None),
    ]
