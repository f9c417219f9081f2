"""The live terminal view of a running sweep (rich), fed by Ray Tune callbacks."""

from __future__ import annotations

import time
from typing import Any

from ray.tune import Callback
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sweeps.runner.ledger import TrialLedger


class LiveView(Callback):
    """Shows trials running/completed/pruned/diverged/failed, the best so far and progress."""

    def __init__(self, ledger: TrialLedger, name: str, num_samples: int, console: Console | None = None) -> None:
        self._ledger = ledger
        self._name = name
        self._num_samples = num_samples
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} trials"),
            TimeElapsedColumn(),
        )
        self._task = self._progress.add_task(name, total=num_samples)
        self._live = Live(self._render(), console=console or Console(stderr=True), refresh_per_second=4, transient=False)
        self._last_refresh = 0.0

    def __getstate__(self) -> dict[str, Any]:
        # Ray pickles callbacks with the experiment state; a terminal view holds locks and
        # a console, and is rebuilt by whoever resumes the sweep, so none of it is saved.
        return {}

    def __enter__(self) -> LiveView:
        self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._live.update(self._render())
        self._live.__exit__(*exc)

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        # The driver loop steps many times a second; re-rendering is throttled.
        now = time.monotonic()
        if now - self._last_refresh > 0.25:
            self._last_refresh = now
            self._live.update(self._render())

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
            table.add_row(f"best {self._ledger.metric} [bold]{value:.4f}[/] ({config})")
        return Group(self._progress, table)


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
