"""The history of a dead letter: every replay, discard and replay outcome, kept as its own row.

Who did what, when, to which dead letter and with what result, for one-by-one and bulk actions
alike (a bulk run's actions share its ``bulk`` id). Refusals are history too.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.db import transaction

logger = logging.getLogger(__name__)


def new_bulk_id(actor: str) -> str:
    """An id shared by every action of one bulk run."""
    return f"{actor[:40]}:{uuid.uuid4().hex[:12]}"


def record_action(dead_letter: Any, *, kind: str, result: str, actor: str, detail: str = "", bulk: str = "") -> Any:
    """Add one entry to the dead letter's history; the entry."""
    from .models import DeadLetterAction

    return DeadLetterAction.objects.create(
        dead_letter_id=dead_letter.pk, kind=kind, result=result, actor=actor[:150], detail=detail, bulk=bulk[:64]
    )


def mark_replay_outcome(original_task_id: str, *, succeeded: bool, actor: str, detail: str = "") -> bool:
    """Mark the dead letter a replay came from by how the replay ended; False if it was not waiting."""
    from .models import DeadLetter, DeadLetterAction

    state = DeadLetter.State.RESOLVED if succeeded else DeadLetter.State.FAILED_AGAIN
    result = DeadLetterAction.Result.SUCCEEDED if succeeded else DeadLetterAction.Result.FAILED_AGAIN
    with transaction.atomic():
        row = DeadLetter.objects.select_for_update().filter(task_id=original_task_id).first()
        if row is None or row.state != DeadLetter.State.REPLAYED:
            return False
        row.state = state
        row.save(update_fields=["state"])
        record_action(row, kind=DeadLetterAction.Kind.OUTCOME, result=result, actor=actor, detail=detail)
    logger.info("dead letter %s: replay %s", row.pk, "succeeded" if succeeded else "failed again")
    return True
