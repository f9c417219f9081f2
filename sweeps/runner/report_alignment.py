"""Warn when a trainable's reports miss ASHA's milestones, so ASHA decides late.

ASHA decides at the first report at or past a milestone. A hand-written loop that
reports on its own cadence (every 32 iterations, say) and never at the milestone
iteration makes every decision late: at iterations 32 and 63 instead of 20 and 40, so
weak trials train longer than the plan says and trials are compared at different
budgets. ``ctx.should_report(i)`` is true at every milestone; the warning says so, once
per sweep, naming the first milestone it saw missed.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sweeps.backend import SweepListener, TrialError, TrialInfo
from sweeps.iterations import TrialShape


class ReportAlignment(SweepListener):
    """Watches each trial's reported iterations; keeps one warning in :attr:`warning`."""

    def __init__(self, dataset_size: int, drop_last: bool, milestones: list[float], budget_unit: str) -> None:
        self._dataset_size, self._drop_last = dataset_size, drop_last
        self._milestones, self._budget_unit = tuple(milestones), budget_unit
        self._last_iteration: dict[str, int] = {}
        self.warning: str | None = None

    def trial_reported(self, trial: TrialInfo, points: list[dict[str, Any]]) -> None:
        if self.warning is not None:
            return
        config = trial.config
        milestones = self._milestone_iterations(int(config["batch_size"]), int(config["epochs"]))
        previous = self._last_iteration.get(trial.trial_id, 0)
        for point in points:
            reached = int(point.get("iteration", previous))
            missed = [m for m in milestones if previous < m < reached]
            if missed:
                self.warning = misaligned_warning(
                    trial.trial_id, previous, reached, missed[0], self._budget_unit
                )
                return
            previous = reached
        self._last_iteration[trial.trial_id] = previous

    def trial_completed(self, trial: TrialInfo) -> None:
        self._last_iteration.pop(trial.trial_id, None)

    def trial_failed(self, trial: TrialInfo, error: TrialError) -> None:
        self._last_iteration.pop(trial.trial_id, None)

    def _milestone_iterations(self, batch_size: int, epochs: int) -> tuple[int, ...]:
        return _milestone_iterations(
            self._dataset_size, batch_size, epochs, self._drop_last, self._milestones, self._budget_unit
        )


@lru_cache(maxsize=256)
def _milestone_iterations(
    dataset_size: int,
    batch_size: int,
    epochs: int,
    drop_last: bool,
    milestones: tuple[float, ...],
    budget_unit: str,
) -> tuple[int, ...]:
    shape = TrialShape(dataset_size, batch_size, epochs, drop_last)
    found = (shape.first_iteration_reaching(m, budget_unit) for m in milestones)
    return tuple(sorted(i for i in found if i is not None))


def misaligned_warning(trial_id: str, before: int, after: int, milestone: int, budget_unit: str) -> str:
    where = f"iterations {before:,} and {after:,}" if before else f"iteration {after:,}"
    return (
        f"trial {trial_id} reported at {where}, never at ASHA's milestone at iteration "
        f"{milestone:,} ({budget_unit} budget), so ASHA decided at iteration {after:,} instead. "
        "Report when `ctx.should_report(i)` is true (it is at every milestone), or train "
        "with `sweeps.fit`, which does."
    )
