"""Jepsen-style accounting of one chaos scenario: what was asked, what ended where, and a verdict.

A scenario records a ``History`` (plain values, no Django): the items it expected, the items that
ended stored, what the dispatch run counted, the deliveries each task message got, the dead
letters (and the items each holds), and how long the system took to recover. ``check`` turns it
into a ``Verdict`` that fails on any loss, any duplicate row, any miscount, an unexpected dead
letter, or a slow recovery.

An item may also end retried and then dead-lettered, when the scenario accepts that end
(``History.accepted_dead_letter``): it is accounted only through a dead letter that really holds it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RunCount:
    """What a dispatch run says about itself."""

    run_id: int
    planned: int
    done: int
    failed: int
    status: str


@dataclass(frozen=True)
class Finding:
    """One scenario-specific check (for example: each slot dispatched once)."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class DeadLetterSeen:
    """One dead letter as a scenario read it: which task failed with what, after how many retries,
    and the items its arguments hold (``batch_items``: what the platform counts as the batch)."""

    task_name: str
    exception_class: str  # dotted, as stored
    items: frozenset[str] = frozenset()
    retries: int = 0
    parked: bool = False  # still in the fallback (the database was away when it was written)

    @property
    def label(self) -> str:
        """'task_name: ExceptionClass', as the ledger shows it."""
        return f"{self.task_name}: {self.exception_class}" + (" (parked)" if self.parked else "")

    def is_a(self, exception_name: str) -> bool:
        """Whether it failed with the exception class ``exception_name`` (undotted)."""
        return bool(exception_name) and self.exception_class.rsplit(".", 1)[-1] == exception_name


def batch_items(args: Iterable[object] | None, kwargs: Mapping[str, object] | None = None) -> frozenset[str]:
    """The items a batch task's arguments name: its list argument, as ``ReliableTask.on_failure`` counts it.

    A batch sent with its list as a keyword (a hand-made replay) is read from the keywords, so a dead
    letter of that shape is not missed; its items are strings, whatever they were (symbols, asset ids).
    """
    lists = [arg for arg in args or () if isinstance(arg, list)]
    lists += [value for value in (kwargs or {}).values() if isinstance(value, list)]
    return frozenset(str(item) for item in (lists[0] if lists else ()))


def accepted_dead_letters(
    dead_letters: Iterable[DeadLetterSeen], accepted: str, expected: frozenset[str]
) -> tuple[DeadLetterSeen, ...]:
    """The dead letters that end items as the scenario accepts: of the ``accepted`` exception, retried
    before (a retry budget spent, not a first failure or a poison cap), and holding expected items.

    A dead letter naming none of the run's items accounts for nothing (the platform must name them),
    so it stays an unexpected dead letter.
    """
    return tuple(d for d in dead_letters if d.is_a(accepted) and d.retries > 0 and d.items & expected)


def dead_lettered_items(
    dead_letters: Iterable[DeadLetterSeen], accepted: str, expected: frozenset[str]
) -> frozenset[str]:
    """Expected items held by an accepted dead letter (matched by item, never by count or task id)."""
    held = [d.items for d in accepted_dead_letters(dead_letters, accepted, expected)]
    return frozenset().union(*held) & expected


def settled(
    expected: frozenset[str],
    stored: frozenset[str],
    dead_letters: Iterable[DeadLetterSeen],
    accepted: str,
    run: RunCount | None,
) -> bool:
    """Every expected item stored or held by an accepted dead letter, and the run closed.

    The run counts a batch failed (``on_failure``) before its dead letter is written, so a closed run
    is not enough: each item must be found in a dead letter that is there to read.
    """
    ended = stored | dead_lettered_items(dead_letters, accepted, expected)
    return expected <= ended and run is not None and run.status != "running"


@dataclass(frozen=True)
class History:
    """Everything a scenario observed, for the checker."""

    scenario: str
    expected: frozenset[str]
    stored: frozenset[str]
    recovery_bound: float
    recovery_seconds: float | None  # None: never recovered within the scenario's patience
    # Items that ended failed on purpose (rejected, or dead-lettered and counted as failed).
    failed_items: frozenset[str] = frozenset()
    duplicated_rows: int = 0
    run: RunCount | None = None
    deliveries: Mapping[str, int] = field(default_factory=dict)  # task id -> times received
    retries: int = 0
    # Attempts that asked no provider, sent again without spending a retry (backend/tasks/deferral.py).
    deferrals: int = 0
    dead_letters: tuple[DeadLetterSeen, ...] = ()
    # Dead letters besides the accepted ones (a poison, a wire message): exactly this many.
    expected_dead_letters: int = 0
    # The exception (undotted class name) a batch may end dead-lettered with once its retries are spent;
    # its items then count as failed, not lost. Empty: no dead letter accounts for an item.
    accepted_dead_letter: str = ""
    findings: tuple[Finding, ...] = ()

    @property
    def dead_lettered(self) -> frozenset[str]:
        """Expected items held by an accepted dead letter."""
        return dead_lettered_items(self.dead_letters, self.accepted_dead_letter, self.expected)

    @property
    def accounted_failed(self) -> frozenset[str]:
        """Expected items that ended failed on purpose: counted failed, or held by an accepted dead letter."""
        return (self.failed_items | self.dead_lettered) & self.expected


@dataclass(frozen=True)
class Verdict:
    """The figures of one scenario and what, if anything, went wrong."""

    history: History
    lost: frozenset[str]
    double_counted: int
    under_counted: int
    re_executions: int
    failures: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.failures

    def table(self) -> str:
        """The accounting as aligned lines, Jepsen-style."""
        h = self.history
        run = h.run
        run_text = (
            f"run {run.run_id}: planned {run.planned}, done {run.done}, failed {run.failed}, {run.status}"
            if run
            else "no run"
        )
        recovery = "never" if h.recovery_seconds is None else f"{h.recovery_seconds:.1f} s"
        accepted = len(accepted_dead_letters(h.dead_letters, h.accepted_dead_letter, h.expected))
        lines = [
            f"== chaos scenario: {h.scenario}",
            f"expected items    {len(h.expected)}",
            f"stored            {len(h.stored & h.expected)}",
            f"failed (counted)  {len(h.accounted_failed)}"
            + (f"  ({len(h.dead_lettered)} held by {accepted} dead letters)" if accepted else ""),
            f"lost              {len(self.lost)}" + (f"  e.g. {sorted(self.lost)[:5]}" if self.lost else ""),
            f"duplicated rows   {h.duplicated_rows}",
            f"double counted    {self.double_counted}  ({run_text})",
            f"under counted     {self.under_counted}",
            f"re-executions     {self.re_executions}  (deliveries beyond the first, retries and deferrals excluded)",
            f"retries           {h.retries}",
            f"deferrals         {h.deferrals}  (attempts that asked no provider: no retry spent)",
            f"dead letters      {len(h.dead_letters)}  (expected {h.expected_dead_letters}"
            + (
                f", {accepted} accepted: retried, then dead-lettered with {h.accepted_dead_letter})"
                if accepted
                else ")"
            )
            + (f"  {[d.label for d in h.dead_letters[:3]]}" if h.dead_letters else ""),
            f"recovery time     {recovery}  (bound {h.recovery_bound:g} s)",
        ]
        lines += [f"check             {'ok  ' if f.ok else 'FAIL'} {f.name}: {f.detail}" for f in h.findings]
        lines.append("verdict           " + ("PASS" if self.ok else "FAIL: " + "; ".join(self.failures)))
        return "\n".join(lines)

    def figures(self) -> dict[str, object]:
        """The figures as plain values (for the results file the docs quote)."""
        h = self.history
        return {
            "scenario": h.scenario,
            "expected": len(h.expected),
            "stored": len(h.stored & h.expected),
            "failed": len(h.accounted_failed),
            "dead_lettered_items": len(h.dead_lettered),
            "lost": len(self.lost),
            "duplicated_rows": h.duplicated_rows,
            "double_counted": self.double_counted,
            "re_executions": self.re_executions,
            "retries": h.retries,
            "deferrals": h.deferrals,
            "dead_letters": len(h.dead_letters),
            "recovery_seconds": None if h.recovery_seconds is None else round(h.recovery_seconds, 1),
            "recovery_bound": h.recovery_bound,
            "ok": self.ok,
            "failures": list(self.failures),
        }

    def summary(self) -> str:
        """One line for the run's closing summary."""
        h = self.history
        recovery = "never" if h.recovery_seconds is None else f"{h.recovery_seconds:.1f}s"
        return (
            f"chaos {h.scenario}: expected={len(h.expected)} stored={len(h.stored & h.expected)} "
            f"lost={len(self.lost)} dup={h.duplicated_rows} double={self.double_counted} "
            f"re-exec={self.re_executions} retries={h.retries} dead={len(h.dead_letters)} "
            f"recovery={recovery}/{h.recovery_bound:g}s {'PASS' if self.ok else 'FAIL'}"
        )


def check(history: History) -> Verdict:
    """Judge a history: no loss, no duplicate, exact counts, expected dead letters, bounded recovery."""
    h = history
    truth_done = len(h.stored & h.expected)
    # Items are matched to their ends by item, so a dead letter accounts only for the items it holds.
    lost = frozenset(h.expected - h.stored - h.accounted_failed)
    failures: list[str] = []
    if lost:
        failures.append(f"{len(lost)} items lost (neither stored nor counted as failed nor held by a dead letter)")
    if h.duplicated_rows:
        failures.append(f"{h.duplicated_rows} duplicated rows")
    double_counted = under_counted = 0
    if h.run is not None:
        run = h.run
        truth_failed = len(h.expected) - truth_done
        double_counted = max(0, run.done - truth_done) + max(0, run.failed - truth_failed)
        under_counted = max(0, truth_done - run.done) + max(0, truth_failed - run.failed)
        if run.planned != len(h.expected):
            failures.append(f"run planned {run.planned} items, {len(h.expected)} expected")
        if double_counted:
            failures.append(f"run counted {double_counted} items more than happened")
        if under_counted:
            failures.append(f"run counted {under_counted} items fewer than happened")
        if run.status == "running":
            failures.append(f"run {run.run_id} still open")
    re_executions = max(0, sum(max(0, n - 1) for n in h.deliveries.values()) - h.retries - h.deferrals)
    accepted = accepted_dead_letters(h.dead_letters, h.accepted_dead_letter, h.expected)
    unexpected = len(h.dead_letters) - len(accepted)
    if unexpected != h.expected_dead_letters:
        besides = f" besides {len(accepted)} accepted" if accepted else ""
        failures.append(f"{unexpected} dead letters{besides}, {h.expected_dead_letters} expected")
    if h.recovery_seconds is None:
        failures.append("never recovered")
    elif h.recovery_seconds > h.recovery_bound:
        failures.append(f"recovery took {h.recovery_seconds:.1f} s, bound {h.recovery_bound:g} s")
    failures += [f"{f.name}: {f.detail}" for f in h.findings if not f.ok]
    return Verdict(h, lost, double_counted, under_counted, re_executions, tuple(failures))
