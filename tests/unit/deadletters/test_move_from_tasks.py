"""Dead letters became an app of their own without losing a row, a link or a permission.

Each test migrates the test database back to the schema of before the move (the ``tasks`` app's last
migration holding the models), writes rows there through the historic models, migrates forward with
Django's own executor, and reads everything back through today's models.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from django.apps import apps as current_apps
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from backend.deadletters.models import DeadLetter, DeadLetterAction

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]

# Today's schema before the move: the tasks app at its last migration, the deadletters app absent.
BEFORE = [("tasks", "0006_deadletter_discarded_messages"), ("deadletters", None)]
# The historic models at that point (and the apps whose rows refer to them).
BEFORE_STATE = [
    ("tasks", "0006_deadletter_discarded_messages"),
    ("auth", "0012_alter_user_first_name_max_length"),
    ("contenttypes", "0002_remove_content_type_name"),
    ("admin", "0003_logentry_add_action_flag_choices"),
]
FAILED_AT = datetime(2026, 12, 5, 14, 30, tzinfo=UTC)


def migrate(targets: list[tuple[str, str | None]]) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    ContentType.objects.clear_cache()


def migrate_to_latest() -> None:
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.fixture
def before_the_move() -> Iterator[object]:
    """The database at today's schema; the historic app registry to write rows with. Forward again after."""
    migrate(BEFORE)
    try:
        yield MigrationExecutor(connection).loader.project_state(BEFORE_STATE).apps
    finally:
        migrate_to_latest()


def old_rows(apps) -> dict[str, object]:
    """A replayed dead letter that failed again, its replay's dead letter, their history, an operator group
    and two users holding the dead-letter permissions of the tasks app, and an admin history entry."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    User = apps.get_model("auth", "User")
    OldDeadLetter = apps.get_model("tasks", "DeadLetter")
    OldAction = apps.get_model("tasks", "DeadLetterAction")
    OldLogEntry = apps.get_model("admin", "LogEntry")

    content_type = ContentType.objects.get(app_label="tasks", model="deadletter")
    assert not ContentType.objects.filter(app_label="deadletters").exists()
    permission = {p.codename: p for p in Permission.objects.filter(content_type=content_type)}
    assert {"replay_deadletter", "discard_deadletter", "view_deadletter"} <= set(permission)

    original = OldDeadLetter.objects.create(
        task_name="quotes.fetch",
        task_id="original-1",
        args=["stock", ["AAPL", "MSFT"]],
        kwargs={"run_id": 7},
        symbols=",AAPL,MSFT,",
        providers=",yahoo,alphavantage,",
        exception_class="backend.providers.errors.AllProvidersFailedError",
        exception_lineage=",backend.providers.errors.AllProvidersFailedError,builtins.Exception,",
        first_failure_at=FAILED_AT,
        last_failure_at=FAILED_AT,
        state="failed_again",
        replay_task_id="replay-1",
        replayed_by="admin:ops",
        replayed_at=FAILED_AT,
    )
    replay = OldDeadLetter.objects.create(
        task_name="quotes.fetch",
        task_id="replay-1",
        args=["stock", ["AAPL", "MSFT"]],
        exception_class="backend.providers.errors.AllProvidersFailedError",
        first_failure_at=FAILED_AT,
        last_failure_at=FAILED_AT,
        replay_of=original,
    )
    OldAction.objects.create(dead_letter=original, kind="replay", result="sent", actor="admin:ops", detail="replay-1")
    OldAction.objects.create(dead_letter=original, kind="outcome", result="failed_again", actor="worker:w1")

    operators = Group.objects.create(name="operators")
    operators.permissions.add(permission["replay_deadletter"], permission["view_deadletter"])
    ops = User.objects.create(username="ops", is_staff=True)
    ops.groups.add(operators)
    viewer = User.objects.create(username="viewer", is_staff=True)
    viewer.user_permissions.add(permission["view_deadletter"], permission["discard_deadletter"])
    OldLogEntry.objects.create(
        action_time=FAILED_AT, user=ops, content_type=content_type, object_id=str(original.pk), action_flag=2
    )
    return {
        "original": original.pk,
        "replay": replay.pk,
        "content_type": content_type.pk,
        "permissions": {codename: p.pk for codename, p in permission.items()},
    }


def test_rows_links_history_and_permissions_survive_the_move(before_the_move) -> None:
    before = old_rows(before_the_move)

    migrate_to_latest()

    original = DeadLetter.objects.get(pk=before["original"])
    assert (original.task_id, original.state, original.args, original.kwargs) == (
        "original-1",
        "failed_again",
        ["stock", ["AAPL", "MSFT"]],
        {"run_id": 7},
    )
    assert original.provider_list == ["yahoo", "alphavantage"] and original.replayed_by == "admin:ops"
    assert DeadLetter.objects.get(pk=before["replay"]).replay_of == original
    assert [row.pk for row in original.replay_chain()] == [before["original"], before["replay"]]
    history = DeadLetterAction.objects.filter(dead_letter=original).values_list("kind", "result", "actor")
    assert list(history) == [("replay", "sent", "admin:ops"), ("outcome", "failed_again", "worker:w1")]

    # The same content type row, now the deadletters app's, with the same permission rows on it.
    content_type = ContentType.objects.get_for_model(DeadLetter)
    assert (content_type.pk, content_type.app_label) == (before["content_type"], "deadletters")
    assert not ContentType.objects.filter(app_label="tasks", model__in=["deadletter", "deadletteraction"]).exists()
    moved = dict(Permission.objects.filter(content_type=content_type).values_list("codename", "pk"))
    assert moved == before["permissions"]

    ops, viewer = User.objects.get(username="ops"), User.objects.get(username="viewer")
    assert ops.has_perm("deadletters.replay_deadletter") and ops.has_perm("deadletters.view_deadletter")
    assert not ops.has_perm("deadletters.discard_deadletter")
    assert viewer.has_perm("deadletters.discard_deadletter") and not viewer.has_perm("deadletters.replay_deadletter")
    assert not ops.has_perm("tasks.replay_deadletter")
    entry = LogEntry.objects.get(object_id=str(before["original"]))
    assert entry.get_edited_object() == original


def test_holders_are_carried_over_when_the_new_app_already_has_its_permissions(before_the_move) -> None:
    """post_migrate had created the deadletters content type and permissions before the move ran."""
    before = old_rows(before_the_move)
    ContentType = before_the_move.get_model("contenttypes", "ContentType")
    Permission_ = before_the_move.get_model("auth", "Permission")
    early = ContentType.objects.create(app_label="deadletters", model="deadletter")
    early_replay = Permission_.objects.create(content_type=early, codename="replay_deadletter", name="Can replay")

    migrate_to_latest()

    assert ContentType.objects.get_for_model(DeadLetter).pk == early.pk
    assert not ContentType.objects.filter(app_label="tasks", model="deadletter").exists()
    replay = Permission.objects.get(content_type=early.pk, codename="replay_deadletter")
    assert replay.pk == early_replay.pk
    # A permission the new app did not have yet moved as it was (its row, its holders).
    view = Permission.objects.get(content_type=early.pk, codename="view_deadletter")
    assert view.pk == before["permissions"]["view_deadletter"]
    ops, viewer = User.objects.get(username="ops"), User.objects.get(username="viewer")
    assert ops.has_perm("deadletters.replay_deadletter") and ops.has_perm("deadletters.view_deadletter")
    assert viewer.has_perm("deadletters.discard_deadletter")


def test_the_models_are_the_deadletters_apps_and_keep_their_tables() -> None:
    assert current_apps.get_model("deadletters", "DeadLetter") is DeadLetter
    assert (DeadLetter._meta.db_table, DeadLetterAction._meta.db_table) == (
        "tasks_deadletter",
        "tasks_deadletteraction",
    )
    with pytest.raises(LookupError):
        current_apps.get_model("tasks", "DeadLetter")
