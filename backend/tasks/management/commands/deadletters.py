"""Inspect, replay, discard and flush dead letters from a shell.

manage.py deadletters list [--state open] [--task quotes.fetch] [--exception TransientProviderError]
                           [--provider coingecko] [--symbol AAPL] [--since 2025-01-01] [--until ...]
manage.py deadletters show ID
manage.py deadletters replay (ID ... | --all-matching FILTERS) [--dry-run]
manage.py deadletters discard (ID ... | --all-matching FILTERS) [--dry-run]
manage.py deadletters flush [--dry-run]
"""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime, time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from backend.tasks import deadletters
from backend.tasks.models import DeadLetter


def _moment(value: str) -> datetime:
    """An ISO date or date-time (UTC when naive)."""
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        if day is None:
            raise ValueError(f"not a date or date-time: {value!r}")
        parsed = datetime.combine(day, time.min)
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)


class Command(BaseCommand):
    help = "List, show, replay, discard or flush dead letters (failed tasks)."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, parser_class=CommandParser)

        def with_filters(sub: CommandParser) -> CommandParser:
            sub.add_argument("--task", help="task name, e.g. quotes.fetch")
            sub.add_argument("--exception", help="exception class, dotted or bare")
            sub.add_argument("--provider", help="provider named by the exception")
            sub.add_argument("--symbol", help="asset symbol in the task's arguments")
            sub.add_argument("--state", choices=DeadLetter.State.values)
            sub.add_argument("--since", type=_moment, help="last failure at or after (ISO date/time, UTC)")
            sub.add_argument("--until", type=_moment, help="last failure before (ISO date/time, UTC)")
            return sub

        listing = with_filters(actions.add_parser("list", help="list dead letters, newest first"))
        listing.add_argument("--limit", type=int, default=50)
        actions.add_parser("show", help="show one dead letter in full").add_argument("id", type=int)
        for name, verb in (("replay", "re-send the original task"), ("discard", "mark discarded")):
            sub = with_filters(actions.add_parser(name, help=f"{verb} (open dead letters only)"))
            sub.add_argument("ids", nargs="*", type=int, help="dead letter ids")
            sub.add_argument("--all-matching", action="store_true", help="act on every row matching the filters")
            sub.add_argument("--dry-run", action="store_true", help="say what would happen, change nothing")
        actions.add_parser("flush", help="move fallback records into the table").add_argument(
            "--dry-run", action="store_true"
        )

    def handle(self, *args, **options) -> None:
        getattr(self, f"do_{options['action']}")(options)

    # --- actions ----------------------------------------------------------------------------------
    def do_list(self, options: dict) -> None:
        rows = self._filtered(options)[: options["limit"]]
        for row in rows:
            self.stdout.write(
                f"{row.pk:>6}  {row.state:<9}  {row.last_failure_at:%Y-%m-%d %H:%M:%S}  {row.task_name}  "
                f"{row.exception_class.rsplit('.', 1)[-1]}  retries={row.retries} deliveries={row.deliveries}  "
                f"{','.join(row.symbol_list[:5])}"
            )
        self.stdout.write(f"{len(rows)} dead letters")

    def do_show(self, options: dict) -> None:
        try:
            row = DeadLetter.objects.get(pk=options["id"])
        except DeadLetter.DoesNotExist:
            raise CommandError(f"no dead letter {options['id']}") from None
        for name in (
            "task_name", "task_id", "state", "queue", "worker", "provider", "exception_class", "exception_message",
            "retries", "deliveries", "first_failure_at", "last_failure_at", "replay_task_id", "replayed_by",
            "replayed_at", "discarded_by", "discarded_at",
        ):  # fmt: skip
            self.stdout.write(f"{name}: {getattr(row, name)}")
        self.stdout.write(f"args: {json.dumps(row.args)}")
        self.stdout.write(f"kwargs: {json.dumps(row.kwargs)}")
        self.stdout.write(f"symbols: {', '.join(row.symbol_list)}")
        self.stdout.write("traceback:")
        self.stdout.write(row.traceback)

    def do_replay(self, options: dict) -> None:
        self._act(options, "replay", "replayed", deadletters.replay_many, show_args=True)

    def do_discard(self, options: dict) -> None:
        self._act(options, "discard", "discarded", deadletters.discard_many, show_args=False)

    def _act(self, options: dict, verb: str, done: str, act, *, show_args: bool) -> None:
        """Replay or discard the matching rows (or, with --dry-run, say what would happen)."""
        rows = list(self._targets(options))
        if options["dry_run"]:
            for row in rows:
                verdict = f"would {verb}" if row.state == DeadLetter.State.OPEN else f"would skip ({row.state})"
                extra = f" args={json.dumps(row.args)}" if show_args else ""
                self.stdout.write(f"{verdict} {row.pk} {row.task_name}{extra}")
            self.stdout.write(f"dry run: nothing {'sent' if verb == 'replay' else 'changed'} ({len(rows)} matched)")
            return
        result = act(rows, actor=self._actor())
        for pk in result.done:
            self.stdout.write(f"{done} {pk}")
        for reason in result.refused.values():
            self.stderr.write(f"not {done}: {reason}")
        self.stdout.write(f"{len(result.done)} {done}, {len(result.refused)} refused")

    def do_flush(self, options: dict) -> None:
        result = deadletters.flush_fallback(dry_run=options["dry_run"])
        prefix = "dry run: would flush" if options["dry_run"] else "flushed"
        self.stdout.write(f"{prefix} {result.flushed}, {result.remaining} remaining, {result.rejected} unreadable")

    # --- helpers ----------------------------------------------------------------------------------
    def _filtered(self, options: dict):
        return deadletters.filter_dead_letters(
            task=options.get("task"),
            exception=options.get("exception"),
            provider=options.get("provider"),
            symbol=options.get("symbol"),
            state=options.get("state"),
            since=options.get("since"),
            until=options.get("until"),
        )

    def _targets(self, options: dict):
        filters = any(options.get(k) for k in ("task", "exception", "provider", "symbol", "state", "since", "until"))
        if options["ids"]:
            rows = self._filtered(options).filter(pk__in=options["ids"])
            missing = set(options["ids"]) - set(rows.values_list("pk", flat=True))
            if missing:
                raise CommandError(f"no dead letter matching {sorted(missing)}")
            return rows.order_by("pk")
        if not options["all_matching"]:
            raise CommandError("name dead letter ids, or pass --all-matching with filters")
        if not filters:
            raise CommandError("--all-matching needs at least one filter (e.g. --state open --task quotes.fetch)")
        return self._filtered(options).order_by("pk")

    def _actor(self) -> str:
        try:
            return f"cli:{getpass.getuser()}"
        except (KeyError, OSError):
            return "cli:unknown"
