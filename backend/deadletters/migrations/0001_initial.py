# DeadLetter and DeadLetterAction move from the tasks app to this one. The tables and their rows stay
# where they are (tasks_deadletter, tasks_deadletteraction, named by db_table): this migration creates
# the models in Django's state only, and tasks.0007 forgets them there, also without touching the
# database. 0002 then moves their content type (and with it every permission on them) to this app.

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("tasks", "0006_deadletter_discarded_messages"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='DeadLetter',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('task_name', models.CharField(blank=True, db_index=True, max_length=200)),
                        ('task_id', models.CharField(max_length=255, unique=True)),
                        ('origin', models.CharField(choices=[('task', 'task failed'), ('unregistered', 'unregistered task'), ('rejected', 'message rejected'), ('undecodable', 'undecodable message'), ('unknown', 'not a task message')], db_index=True, default='task', max_length=20)),
                        ('args', models.JSONField(blank=True, default=list)),
                        ('kwargs', models.JSONField(blank=True, default=dict)),
                        ('arguments_known', models.BooleanField(default=True, help_text='False when the message could not be decoded: there is nothing to re-send.')),
                        ('arguments_truncated', models.BooleanField(default=False, help_text='The arguments were cut to DEADLETTER_KEEP_CHARS: a replay sends the cut ones, once confirmed.')),
                        ('arguments_size', models.PositiveIntegerField(default=0, help_text='Characters of the arguments as JSON when they were captured, before any cut.')),
                        ('message', models.JSONField(blank=True, default=dict, help_text='A discarded message as it arrived: headers, content type, body (redacted, bounded).')),
                        ('symbols', models.TextField(blank=True, default='', help_text="Symbols in the arguments, as ',AAPL,MSFT,'.")),
                        ('providers', models.TextField(blank=True, default='', help_text="Every provider that failed, in the order tried, as ',yahoo,alphavantage,'.")),
                        ('provider_failures', models.JSONField(blank=True, default=list, help_text='Why each provider failed: [{provider, error, message}].')),
                        ('exception_class', models.CharField(db_index=True, help_text='Dotted name of the exception.', max_length=255)),
                        ('exception_lineage', models.TextField(blank=True, default='', help_text="The exception class and its bases, dotted, as ',a.B,builtins.Exception,'.")),
                        ('exception_message', models.TextField(blank=True, default='')),
                        ('traceback', models.TextField(blank=True, default='')),
                        ('retries', models.PositiveIntegerField(default=0, help_text='Retries used before the final failure.')),
                        ('deliveries', models.PositiveIntegerField(default=1, help_text='Times the failing message was delivered.')),
                        ('queue', models.CharField(blank=True, default='', max_length=100)),
                        ('worker', models.CharField(blank=True, default='', max_length=255)),
                        ('sanitised', models.BooleanField(default=False, help_text='Stored with characters the database refuses (NUL bytes) escaped; not replayable as stored.')),
                        ('first_failure_at', models.DateTimeField()),
                        ('last_failure_at', models.DateTimeField(db_index=True)),
                        ('state', models.CharField(choices=[('open', 'open'), ('replayed', 'replayed (running)'), ('resolved', 'replay succeeded'), ('failed_again', 'replay failed again'), ('discarded', 'discarded')], db_index=True, default='open', max_length=20)),
                        ('replay_task_id', models.CharField(blank=True, db_index=True, default='', max_length=255)),
                        ('replayed_by', models.CharField(blank=True, default='', max_length=150)),
                        ('replayed_at', models.DateTimeField(blank=True, null=True)),
                        ('discarded_by', models.CharField(blank=True, default='', max_length=150)),
                        ('discarded_at', models.DateTimeField(blank=True, null=True)),
                        ('replay_of', models.OneToOneField(blank=True, help_text='The dead letter whose replay failed into this one.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='replayed_as', to='deadletters.deadletter')),
                    ],
                    options={
                        'db_table': 'tasks_deadletter',
                        'ordering': ['-last_failure_at'],
                        'permissions': [('replay_deadletter', 'Can replay a dead letter'), ('discard_deadletter', 'Can discard a dead letter')],
                    },
                ),
                migrations.CreateModel(
                    name='DeadLetterAction',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('replay', 'replay'), ('discard', 'discard'), ('outcome', 'replay outcome')], max_length=10)),
                        ('result', models.CharField(choices=[('sent', 'sent'), ('discarded', 'discarded'), ('refused', 'refused'), ('send_failed', 'send failed'), ('succeeded', 'succeeded'), ('failed_again', 'failed again')], max_length=20)),
                        ('actor', models.CharField(help_text='admin:<user>, cli:<os user>, or worker:<host> for outcomes.', max_length=150)),
                        ('at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                        ('bulk', models.CharField(blank=True, default='', help_text='Shared by the actions of one bulk run.', max_length=64)),
                        ('detail', models.TextField(blank=True, default='', help_text='The new task id, or why it was refused.')),
                        ('dead_letter', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='actions', to='deadletters.deadletter')),
                    ],
                    options={
                        'db_table': 'tasks_deadletteraction',
                        'ordering': ['at', 'pk'],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
