# DeadLetter and DeadLetterAction now belong to the deadletters app (deadletters.0001 took them over,
# tables and rows as they are); the tasks app forgets them without touching the database.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("tasks", "0006_deadletter_discarded_messages"),
        ("deadletters", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="deadletteraction", name="dead_letter"),
                migrations.DeleteModel(name="DeadLetterAction"),
                migrations.DeleteModel(name="DeadLetter"),
            ],
            database_operations=[],
        ),
    ]
