"""Jepsen-style accounting of one chaos scenario: what was asked, what ended where, and a verdict.

A scenario records a ``History`` (plain values, no Django): the items it expected, the items that
ended stored, what the dispatch run counted, the deliveries each task message got, the dead
letters, and how long the system took to recover. ``check`` turns it into a ``Verdict`` that fails
on any loss, any duplicate row, any miscount, an unexpected dead letter, or a slow recovery.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    dead_letters: tuple[str, ...] = ()  # "task_name: ExceptionClass" per dead letter
    expected_dead_letters: int = 0
    findings: tuple[Finding, ...] = ()


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
        lines = [
            f"== chaos scenario: {h.scenario}",
            f"expected items    {len(h.expected)}",
            f"stored            {len(h.stored & h.expected)}",
            f"failed (counted)  {len(h.failed_items & h.expected)}",
            f"lost              {len(self.lost)}" + (f"  e.g. {sorted(self.lost)[:5]}" if self.lost else ""),
            f"duplicated rows   {h.duplicated_rows}",
            f"double counted    {self.double_counted}  ({run_text})",
            f"under counted     {self.under_counted}",
            f"re-executions     {self.re_executions}  (deliveries beyond the first, retries excluded)",
            f"retries           {h.retries}",
            f"dead letters      {len(h.dead_letters)}  (expected {h.expected_dead_letters})"
            + (f"  {list(h.dead_letters)[:3]}" if h.dead_letters else ""),
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
            "lost": len(self.lost),
            "duplicated_rows": h.duplicated_rows,
            "double_counted": self.double_counted,
            "re_executions": self.re_executions,
            "retries": h.retries,
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
    lost = frozenset(h.expected - h.stored - h.failed_items)
    failures: list[str] = []
    if lost:
        failures.append(f"{len(lost)} items lost (neither stored nor counted as failed)")
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
    re_executions = max(0, sum(max(0, n - 1) for n in h.deliveries.values()) - h.retries)
    if len(h.dead_letters) != h.expected_dead_letters:
        failures.append(f"{len(h.dead_letters)} dead letters, {h.expected_dead_letters} expected")
    if h.recovery_seconds is None:
        failures.append("never recovered")
    elif h.recovery_seconds > h.recovery_bound:
        failures.append(f"recovery took {h.recovery_seconds:.1f} s, bound {h.recovery_bound:g} s")
    failures += [f"{f.name}: {f.detail}" for f in h.findings if not f.ok]
    return Verdict(h, lost, double_counted, under_counted, re_executions, tuple(failures))
