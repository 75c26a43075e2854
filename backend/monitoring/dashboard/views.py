"""The operator dashboard page and its two buttons, for logged-in staff only.

Anyone else is sent to the admin login page and back. Replay and Discard call the same dead-letter
operations, with the same permissions, as the admin's buttons: every click, refused or not, lands in
the dead letter's history with the user's name.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from kombu.exceptions import KombuError

from backend import deadletters
from backend.deadletters.models import DeadLetter, DeadLetterAction

from . import charts, panels, series


def _actor(request: HttpRequest) -> str:
    # The same actor form as the admin's buttons: the dashboard is a staff page of the same site.
    return f"admin:{request.user.get_username()}"


def _charts(visible: frozenset[str]) -> list[dict[str, str]]:
    """Each visible chart's id, title, one-line meaning and SVG (our own escaped markup, safe to embed);
    a chart is read only when its panel is visible (``panels.PANEL_PERMISSIONS``)."""
    built = [
        ("tasks", "tasks", "Tasks finished per 10 minutes",
         "Tasks by final state (result-less batches: from run accounting).", charts.stacked_bars, series.task_results),
        ("dead-letters", "dead_letters", "New dead letters per 10 minutes", "Tasks that failed for good, by task.",
         charts.stacked_bars, series.dead_letters),
        ("dispatch", "runs", "Assets of periodic runs per 10 minutes", "Planned assets done, failed, or still missing.",
         charts.stacked_bars, series.dispatch_outcomes),
        ("tick-wait", "runs", "Queue wait of beat ticks", "Seconds from beat sending a tick to a worker starting it.",
         charts.lines, series.tick_wait),
    ]  # fmt: skip
    return [
        {"id": key, "title": title, "meaning": meaning, "svg": mark_safe(draw(read(), title=title))}  # noqa: S308
        for key, panel, title, meaning, draw, read in built
        if panel in visible
    ]


@staff_member_required
@never_cache
def dashboard(request: HttpRequest) -> HttpResponse:
    """Freshness, queues, charts, dead letters, runs, providers and liveness on one page; each panel whose
    rows have an admin page only for those who may view that page (and only then read)."""
    now = timezone.now()
    visible = panels.visible_panels(request.user)
    beat, workers = panels.liveness()
    letters, open_count = panels.open_letters(request.user) if "dead_letters" in visible else ([], 0)
    provider_rows, provider_note = panels.providers()
    context = {
        "now": now,
        "refresh_seconds": settings.DASHBOARD_REFRESH_SECONDS,
        "visible": visible,
        "hidden": panels.hidden_panels(visible),
        "freshness": panels.freshness(now) if "freshness" in visible else [],
        "beat": beat,
        "workers": workers,
        "queues": panels.queues(workers),
        "charts": _charts(visible),
        "letters": letters,
        "open_count": open_count,
        "runs": panels.recent_runs() if "runs" in visible else [],
        "providers": provider_rows,
        "provider_note": provider_note,
    }
    return render(request, "monitoring/dashboard.html", context)


def _back() -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("dashboard") + "#dead-letters")


@staff_member_required
@require_POST
def replay_dead_letter(request: HttpRequest, pk: int) -> HttpResponse:
    """Replay one dead letter (needs ``deadletters.replay_deadletter``), then back to the dashboard.

    A refusal (no permission, a row that cannot be replayed as it stands) lands in the row's history;
    a row whose arguments were cut is replayed from its admin page, which asks for a confirmation.
    """
    row = get_object_or_404(DeadLetter, pk=pk)
    if not request.user.has_perm("deadletters.replay_deadletter"):
        _refuse(request, row, DeadLetterAction.Kind.REPLAY, "deadletters.replay_deadletter")
        messages.error(request, "You may not replay dead letters (refused; noted in its history).")
        return _back()
    try:
        new_id = deadletters.replay(row, actor=_actor(request))
    except deadletters.ReplayRefused as exc:
        messages.warning(request, f"Not replayed: {exc}")
    except (KombuError, OSError) as exc:
        messages.error(request, f"Not replayed: the broker refused the task ({type(exc).__name__})")
    except DatabaseError as exc:
        messages.error(request, f"Not replayed, nothing sent: the database refused the change ({type(exc).__name__})")
    else:
        messages.success(request, f"Dead letter #{row.pk} ({row.task_name}) replayed as task {new_id}.")
        warning = deadletters.replay_warning(row)
        if warning:
            messages.warning(request, f"#{row.pk}: {warning}")
    return _back()


@staff_member_required
@require_POST
def discard_dead_letter(request: HttpRequest, pk: int) -> HttpResponse:
    """Discard one open dead letter (needs ``deadletters.discard_deadletter``), then back to the dashboard."""
    row = get_object_or_404(DeadLetter, pk=pk)
    if not request.user.has_perm("deadletters.discard_deadletter"):
        _refuse(request, row, DeadLetterAction.Kind.DISCARD, "deadletters.discard_deadletter")
        messages.error(request, "You may not discard dead letters (refused; noted in its history).")
    elif deadletters.discard(row, actor=_actor(request)):
        messages.success(request, f"Dead letter #{row.pk} ({row.task_name}) discarded.")
    else:
        row.refresh_from_db(fields=["state"])
        messages.warning(request, f"Not discarded: #{row.pk} is {row.get_state_display()}, not open.")
    return _back()


def _refuse(request: HttpRequest, row: DeadLetter, kind: str, permission: str) -> None:
    """A click without the permission is history too (docs/OPERATIONS.md: refusals are recorded)."""
    actor = _actor(request)
    deadletters.refuse([row], kind=kind, actor=actor, reason=f"refused: {actor} lacks the permission {permission}")
