# The content types of DeadLetter and DeadLetterAction move from the tasks app to this one, so every
# permission on them (replay_deadletter, discard_deadletter and the default view/change/add/delete)
# keeps its row, and every group and user holding one keeps it: Django checks them as
# deadletters.<codename> from now on. Admin's history (LogEntry) of the rows follows too.
#
# A database migrated from scratch has no content type yet when this runs (post_migrate creates them
# after the last migration, under the new app): nothing to move. Where both exist (post_migrate already
# ran for the new app), each permission's holders are carried over to the new app's permission of the
# same codename before the old content type goes.

from django.db import migrations

MODELS = ("deadletter", "deadletteraction")


def _move(apps, schema_editor, source: str, target: str) -> None:
    """Give the content types of MODELS under ``source`` to ``target``, permissions and history included."""
    db = schema_editor.connection.alias
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    LogEntry = apps.get_model("admin", "LogEntry")
    for model in MODELS:
        old = ContentType.objects.using(db).filter(app_label=source, model=model).first()
        if old is None:
            continue
        new = ContentType.objects.using(db).filter(app_label=target, model=model).first()
        if new is None:
            old.app_label = target
            old.save(update_fields=["app_label"])
            continue
        for permission in Permission.objects.using(db).filter(content_type=old):
            kept = Permission.objects.using(db).filter(content_type=new, codename=permission.codename).first()
            if kept is None:
                permission.content_type = new
                permission.save(update_fields=["content_type"])
                continue
            for group in permission.group_set.all():
                group.permissions.add(kept)
            for user in permission.user_set.all():
                user.user_permissions.add(kept)
            permission.delete()
        LogEntry.objects.using(db).filter(content_type=old).update(content_type=new)
        old.delete()


def to_deadletters(apps, schema_editor) -> None:
    _move(apps, schema_editor, "tasks", "deadletters")


def back_to_tasks(apps, schema_editor) -> None:
    _move(apps, schema_editor, "deadletters", "tasks")


class Migration(migrations.Migration):

    dependencies = [
        ("deadletters", "0001_initial"),
        ("tasks", "0007_dead_letters_to_their_own_app"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("admin", "0003_logentry_add_action_flag_choices"),
    ]

    operations = [migrations.RunPython(to_deadletters, back_to_tasks)]
