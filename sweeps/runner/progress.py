"""The progress of a running sweep, fed by the backend's trial events: a live view, and log lines.

On a terminal, a rich live view (on stderr) redraws in place. In a log (``sweep run ... >
log``, nohup, CI, ``ray job logs``) a redrawing view writes nothing until it ends, so when
stdout is not a terminal the CLI also asks for plain lines on stdout, each flushed as it
is written: one per ended trial, and one every :data:`PLAIN_EVERY_SECONDS` while trials
run. Each line holds the time, the trials by state, the best value so far and the
iterations used (each line is one line in the log, wrapped here)::

    12:03:04 +35s digits-mlp: trial 3fc5ba18 pruned at iteration 20 (val_accuracy 0.9125)
        | 3/40 done: ...
    12:03:14 +45s digits-mlp: 3/40 done: 2 completed, 1 pruned, 0 diverged, 0 failed,
        2 running | best val_accuracy 0.9712 | 1,234 iterations
"""

from __future__ import annotations

import datetime as _dt
import time
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sweeps.backend import SweepListener, TrialError, TrialInfo
from sweeps.numbers import compact
from sweeps.outcomes import OUTCOMES
from sweeps.runner.ledger import TrialLedger
from sweeps.runner.limits import SweepLimits
from sweeps.runner.trial_table import trial_table

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self  # typing.Self needs Python 3.11

#: Seconds between two plain progress lines while trials run.
PLAIN_EVERY_SECONDS = 10.0


class LiveView(SweepListener):
    """Shows trials running/completed/pruned/diverged/failed, the best so far and progress."""

    def __init__(
        self,
        ledger: TrialLedger,
        name: str,
        num_samples: int,
        console: Console | None = None,
        lines: TextIO | None = None,
        milestones: list[float] | None = None,
        budget_unit: str = "iterations",
        limits: SweepLimits | None = None,
    ) -> None:
        self._ledger = ledger
        self._milestones, self._budget_unit = list(milestones or []), budget_unit
        self._limits = limits
        #: Ended trials, oldest first: the table shows the most recent under the running ones.
        self._ended: list[str] = []
        # Held as given: while the live view runs, rich redirects `sys.stdout` to its console.
        self._lines = lines
        self._started = time.monotonic()
        self._next_line = self._started + PLAIN_EVERY_SECONDS
        self._name = name
        self._num_samples = num_samples
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} trials"),
            TimeElapsedColumn(),
        )
        self._task = self._progress.add_task(name, total=num_samples)
        self._console = console or Console(stderr=True)
        self._live = Live(self._render(), console=self._console, refresh_per_second=4, transient=False)
        self._last_refresh = 0.0

    def __enter__(self) -> Self:
        self._live.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._live.update(self._render())
        self._live.__exit__(exc_type, exc, tb)

    def step_ended(self) -> None:
        # The driver loop steps many times a second; re-rendering is throttled.
        now = time.monotonic()
        if now - self._last_refresh > 0.25:
            self._last_refresh = now
            self._live.update(self._render())
        if self._lines is not None and now >= self._next_line:
            # On a fixed period, whatever trial lines came between: a log shows the sweep alive.
            self._next_line = now + PLAIN_EVERY_SECONDS
            self._write(self.status_line())

    def trial_completed(self, trial: TrialInfo) -> None:
        self._trial_ended(trial.trial_id)

    def trial_failed(self, trial: TrialInfo, error: TrialError) -> None:
        self._trial_ended(trial.trial_id)

    def _trial_ended(self, trial_id: str) -> None:
        # Runs after the ledger's own callback (earlier in the list): the outcome is known.
        self._ended.append(trial_id)
        record = self._ledger.trials.get(trial_id)
        if self._lines is None or record is None:
            return
        metric = self._ledger.metric
        value = record.last_result.get(metric) if record.last_result else None
        shown = f" ({metric} {compact(value)})" if isinstance(value, (int, float)) else ""
        self._write(
            f"trial {trial_id} {record.outcome or 'ended'} at iteration {record.iterations:,}{shown} | "
            + self.status_line()
        )

    def status_line(self) -> str:
        """Trials by state, the best value so far and the iterations used, in one line."""
        counts = self._ledger.counts()
        done = sum(counts[k] for k in OUTCOMES)
        states = ", ".join(f"{counts[k]} {k}" for k in OUTCOMES)
        best = self._ledger.best()
        if len(self._ledger.objectives) > 1:
            best_text = self.front_text()
        elif best is not None and best.last_result:
            best_text = (
                f"best {self._ledger.metric} {compact(best.last_result[self._ledger.metric])} "
                f"(trial {best.trial_id})"
            )
        else:
            best_text = f"best {self._ledger.metric} -"
        iterations = sum(r.iterations for r in self._ledger.trials.values())
        return (
            f"{done}/{self._num_samples} done: {states}, {counts['running']} running | {best_text} | "
            f"{iterations:,} iterations"
        )

    def front_text(self) -> str:
        """Several objectives: the front's size and its extremes, the best reached in each
        objective by a member, instead of one best value: ``front 3: val_accuracy 0.95..0.81,
        parameters 1.2e+04..3.1e+03``, each range from the best-in-the-first-objective end."""
        front = self._ledger.front()
        if not front:
            return "front -"
        extremes = []
        for metric, _ in self._ledger.objectives:
            values = [self._ledger.objective_values(r)[metric] for r in front]
            extremes.append(f"{metric} {compact(values[0])}..{compact(values[-1])}")
        return f"front {len(front)}: " + ", ".join(extremes)

    def _write(self, text: str) -> None:
        assert self._lines is not None
        now = time.monotonic()
        clock = _dt.datetime.now().strftime("%H:%M:%S")
        try:
            self._lines.write(f"{clock} +{now - self._started:.0f}s {self._name}: {text}\n")
            self._lines.flush()  # a pipe or file is block-buffered: flush, or the log shows nothing
        except (OSError, ValueError):
            self._lines = None  # the reader went away (closed pipe): keep the sweep running

    def _render(self) -> Group:
        counts = self._ledger.counts()
        finished = sum(counts[k] for k in ("completed", "pruned", "diverged", "failed"))
        self._progress.update(self._task, completed=finished)
        table = Table.grid(padding=(0, 2))
        table.add_row(
            f"running [cyan]{counts['running']}[/]",
            f"completed [green]{counts['completed']}[/]",
            f"pruned [yellow]{counts['pruned']}[/]",
            f"diverged [magenta]{counts['diverged']}[/]",
            f"failed [red]{counts['failed']}[/]",
        )
        best = self._ledger.best()
        if best is not None and best.last_result:
            value = best.last_result[self._ledger.metric]
            config = ", ".join(f"{k}={_short(v)}" for k, v in best.config.items())
            # A line of its own, not a row of the counts' grid: there it was squeezed into the
            # first column's width and broke over three lines.
            best_line = f"best {self._ledger.metric} [bold]{compact(value)}[/] ({config})"
        parts: list[Any] = [self._progress, table]
        if len(self._ledger.objectives) > 1:
            parts.append(f"Pareto {self.front_text()}")
        elif best is not None and best.last_result:
            parts.append(best_line)
        limit = self._limit_line()
        if limit:
            parts.append(limit)
        # Under the counts, as many trials as the terminal has lines left (a redrawn view
        # taller than the terminal scrolls and smears).
        trials = trial_table(
            list(self._ledger.trials.values()),
            self._ended,
            self._ledger.metric,
            self._milestones,
            self._budget_unit,
            self._console.size.height - 6 - len(parts),
        )
        if trials is not None:
            parts.append(trials)
        return Group(*parts)

    def _limit_line(self) -> str | None:
        limits = self._limits
        if limits is None or not limits.limits.any:
            return None
        if limits.reason:
            running = self._ledger.counts()["running"]
            then = "stopping" if limits.limits.on_exhausted == "stop" else "draining"
            return f"[bold]{limits.reason} reached[/]: no new trials; {then} {running} running"
        spent = []
        if limits.limits.max_iterations:
            spent.append(f"{limits.iterations:,}/{limits.limits.max_iterations:,} iterations")
        if limits.limits.max_samples:
            spent.append(f"{limits.samples:,}/{limits.limits.max_samples:,} samples")
        if limits.limits.max_time:
            spent.append(f"{limits.spent_seconds:,.0f}/{limits.limits.max_time:,.0f} s")
        return "limits: " + ", ".join(spent)


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
