"""Inspect, replay, discard and flush dead letters from a shell.

manage.py deadletters list [--state open] [--task quotes.fetch] [--exception TransientProviderError]
                           [--provider yahoo] [--symbol AAPL] [--origin unregistered]
                           [--since 2025-01-01] [--until ...]
manage.py deadletters show ID
manage.py deadletters replay (ID ... | --all-matching FILTERS) [--dry-run] [--confirm-truncated]
manage.py deadletters discard (ID ... | --all-matching FILTERS) [--dry-run]
manage.py deadletters flush [--dry-run]
manage.py deadletters parked [--clear]
"""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime, time
from functools import partial

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from tqdm import tqdm

from backend import deadletters
from backend.common.logsafe import escape, escape_lines
from backend.deadletters.models import DeadLetter

FILTERS = ("task", "exception", "provider", "symbol", "state", "origin", "since", "until")


def _moment(value: str) -> datetime:
    """An ISO date or date-time (UTC when naive)."""
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        if day is None:
            raise ValueError(f"not a date or date-time: {value!r}")
        parsed = datetime.combine(day, time.min)
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)


def summary_table(result: deadletters.BulkResult, *, ids_shown: int = 10) -> list[str]:
    """A bulk run's rows by outcome: one line per outcome with its count and the first ids."""
    width = max([len("outcome"), *(len(o) for o in result.outcomes)])
    lines = [f"{'outcome':<{width}}  {'rows':>5}  ids"]
    for outcome, pks in result.outcomes.items():
        shown = ", ".join(str(pk) for pk in pks[:ids_shown]) + (" ..." if len(pks) > ids_shown else "")
        lines.append(f"{outcome:<{width}}  {len(pks):>5}  {shown}")
    lines.append(f"{'total':<{width}}  {result.total:>5}")
    return lines


class Command(BaseCommand):
    help = "List, show, replay, discard or flush dead letters (failed tasks)."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, parser_class=CommandParser)

        def with_filters(sub: CommandParser) -> CommandParser:
            sub.add_argument("--task", help="task name, e.g. quotes.fetch")
            sub.add_argument("--exception", help="exception class or any base of it, bare or dotted")
            sub.add_argument("--provider", help="any provider that failed for the task, e.g. yahoo")
            sub.add_argument("--symbol", help="asset symbol in the task's arguments")
            sub.add_argument("--state", choices=DeadLetter.State.values)
            sub.add_argument(
                "--origin",
                choices=DeadLetter.Origin.values,
                help="a task that failed, or a message the worker discarded",
            )
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
            sub.add_argument("--dry-run", action="store_true", help="show the same summary, change nothing")
            if name == "replay":
                sub.add_argument(
                    "--confirm-truncated",
                    action="store_true",
                    help="also replay rows whose arguments were cut (DEADLETTER_KEEP_CHARS): they are sent cut",
                )
        actions.add_parser("flush", help="move fallback records into the table").add_argument(
            "--dry-run", action="store_true"
        )
        actions.add_parser("parked", help="show fallback records the database refused").add_argument(
            "--clear", action="store_true", help="forget them after reading"
        )

    def handle(self, *args, **options) -> None:
        getattr(self, f"do_{options['action']}")(options)

    # --- actions ----------------------------------------------------------------------------------
    def do_list(self, options: dict) -> None:
        rows = self._filtered(options)[: options["limit"]]
        for row in rows:
            origin = "" if row.origin == DeadLetter.Origin.TASK else f" ({row.get_origin_display()})"
            marks = (" permanent" if deadletters.permanent_cause(row) else "") + (
                " arguments-cut" if row.arguments_truncated else ""
            )
            line = (
                f"{row.pk:>6}  {row.state:<12}  {row.last_failure_at:%Y-%m-%d %H:%M:%S}  {row.task_name or '-'}"
                f"{origin}  {row.exception_name}{marks}  providers={','.join(row.provider_list) or '-'}  "
                f"retries={row.retries}  {','.join(row.symbol_list[:5])}"
            )
            self.stdout.write(escape(line))
        self.stdout.write(f"{len(rows)} dead letters")

    def do_show(self, options: dict) -> None:
        try:
            row = DeadLetter.objects.get(pk=options["id"])
        except DeadLetter.DoesNotExist:
            raise CommandError(f"no dead letter {options['id']}") from None
        for name in (
            "task_name", "task_id", "origin", "state", "queue", "worker", "exception_class", "exception_message",
            "retries", "deliveries", "first_failure_at", "last_failure_at", "replay_task_id", "sanitised",
        ):  # fmt: skip
            self.stdout.write(escape(f"{name}: {getattr(row, name)}"))
        self.stdout.write(escape(f"replay warning: {deadletters.replay_warning(row) or '-'}"))
        self.stdout.write(f"exception lineage: {' < '.join(row.lineage_names)}")
        if not row.arguments_known:
            self.stdout.write("args: - (the message could not be decoded: nothing to re-send)")
        else:
            self.stdout.write(f"args: {json.dumps(row.args)}")
            self.stdout.write(f"kwargs: {json.dumps(row.kwargs)}")
        if row.arguments_truncated:
            self.stdout.write(f"arguments cut: {deadletters.truncation_text(row)}; replay needs --confirm-truncated")
        if row.message:
            self._show_message(row.message)
        self.stdout.write(escape(f"symbols: {', '.join(row.symbol_list)}"))
        self.stdout.write("providers that failed:" + ("" if row.provider_failures else " -"))
        for failure in row.provider_failures:
            self.stdout.write(escape(f"  {failure.get('provider')}: {failure.get('error')}: {failure.get('message')}"))
        chain = row.replay_chain()
        if len(chain) > 1:
            self.stdout.write("replay chain (original first):")
            for link in chain:
                marker = "  <- this one" if link.pk == row.pk else ""
                self.stdout.write(f"  {link.pk}  {link.get_state_display()}  {link.task_id}{marker}")
        self.stdout.write("history:" + ("" if row.actions.exists() else " -"))
        for action in row.actions.all():
            detail = f"  {action.detail}" if action.detail else ""
            bulk = f"  (bulk {action.bulk})" if action.bulk else ""
            when = f"{action.at:%Y-%m-%d %H:%M:%S}"
            line = f"  {when}  {action.actor}  {action.kind}  {action.get_result_display()}{detail}{bulk}"
            self.stdout.write(escape(line))
        self.stdout.write("traceback:")
        self.stdout.write(escape_lines(row.traceback))

    def do_replay(self, options: dict) -> None:
        confirm = options["confirm_truncated"]
        self._bulk(
            options,
            "replay",
            partial(deadletters.preview_replay, confirm_truncated=confirm),
            partial(deadletters.replay_many, confirm_truncated=confirm),
            "nothing sent",
        )

    def do_discard(self, options: dict) -> None:
        self._bulk(options, "discard", deadletters.preview_discard, deadletters.discard_many, "nothing changed")

    def _bulk(self, options: dict, verb: str, preview, act, unchanged: str) -> None:
        """Act on the targets with a progress bar, then print the summary by outcome (or, with
        --dry-run, the summary it would print)."""
        rows = list(self._targets(options))
        if options["dry_run"]:
            self._summary(preview(rows), f"dry run: {unchanged}")
            return
        result = act(self._progress(rows, verb), actor=self._actor())
        self._summary(result, f"bulk {result.bulk}")

    def do_flush(self, options: dict) -> None:
        result = deadletters.flush_fallback(dry_run=options["dry_run"])
        prefix = "dry run: would flush" if options["dry_run"] else "flushed"
        self.stdout.write(f"{prefix} {result.flushed}, {result.remaining} remaining, {result.parked} parked")
        parked = deadletters.parked_count()
        if parked:
            self.stdout.write(f"{parked} records parked in all: `manage.py deadletters parked` shows them")

    def do_parked(self, options: dict) -> None:
        entries = deadletters.parked_records(limit=1000)
        for entry in entries:
            self.stdout.write(escape(f"{entry.get('parked_at', '')}  {entry.get('reason', '')}"))
            self.stdout.write(escape(f"  {entry.get('record', '')}"))
        total = deadletters.parked_count()
        self.stdout.write(f"{total} parked records")
        if options["clear"]:
            self.stdout.write(f"cleared {deadletters.clear_parked()} parked records")

    # --- helpers ----------------------------------------------------------------------------------
    def _summary(self, result: deadletters.BulkResult, title: str) -> None:
        self.stdout.write(title)
        for line in summary_table(result):
            self.stdout.write(line)
        for pk, reason in result.reasons.items():
            self.stderr.write(escape(f"{pk}: {reason}"))
        for pk, warning in result.warnings.items():
            self.stdout.write(escape(f"{pk}: warning: {warning}"))

    def _show_message(self, message: dict) -> None:
        """A discarded message as it arrived: content type, delivery, headers, then the body."""
        self.stdout.write("message as it arrived:")
        for key in ("content_type", "content_encoding", "delivery_info", "body_bytes", "body_truncated"):
            self.stdout.write(escape(f"  {key}: {message.get(key)}"))
        self.stdout.write(escape(f"  headers: {json.dumps(message.get('headers', {}), ensure_ascii=False)}"))
        self.stdout.write(f"  body ({message.get('body_format', 'text')}):")
        self.stdout.write(escape_lines(str(message.get("body", ""))))

    def _progress(self, rows: list, verb: str):
        # tqdm needs the raw stream: Django's OutputWrapper would end every redraw with a newline.
        stream = getattr(self.stderr, "_out", self.stderr)
        return tqdm(rows, desc=verb, unit="row", file=stream, disable=not rows)

    def _filtered(self, options: dict):
        return deadletters.filter_dead_letters(**{name: options.get(name) for name in FILTERS})

    def _targets(self, options: dict):
        if options["ids"]:
            rows = self._filtered(options).filter(pk__in=options["ids"])
            missing = set(options["ids"]) - set(rows.values_list("pk", flat=True))
            if missing:
                raise CommandError(f"no dead letter matching {sorted(missing)}")
            return rows.order_by("pk")
        if not options["all_matching"]:
            raise CommandError("name dead letter ids, or pass --all-matching with filters")
        if not any(options.get(name) for name in FILTERS):
            raise CommandError("--all-matching needs at least one filter (e.g. --state open --task quotes.fetch)")
        return self._filtered(options).order_by("pk")

    def _actor(self) -> str:
        try:
            return f"cli:{getpass.getuser()}"
        except (KeyError, OSError):
            return "cli:unknown"
