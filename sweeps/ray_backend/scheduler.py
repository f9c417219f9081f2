"""The trial scheduler Tune runs: ASHA (:mod:`sweeps.search.asha`) counting the sweep's budget unit.

:class:`AshaScheduler` subclasses Tune's public ``FIFOScheduler`` (which places trials in
order) and hands each result to :class:`~sweeps.search.asha.AshaRungs`. Its time
attribute is the budget unit (``iteration``, ``samples_seen`` or ``epoch``), not Ray's
``training_iteration``, which counts ``report()`` calls and so depends on how often a
trainable reports: ASHA must compare trials by the work they did.
"""

from __future__ import annotations

from typing import Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from sweeps.iterations import BUDGET_RESULT_KEY
from sweeps.plan.planner import SweepPlan
from sweeps.search.asha import STOP, AshaRungs, asha_rungs_for
from sweeps.spec.models import SweepSpec


class AshaScheduler(FIFOScheduler):
    """Stops a trial whose value at a rung is below the rung's cutoff."""

    def __init__(self, rungs: AshaRungs, metric: str, budget_unit: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # unannotated in Ray
        self.rungs = rungs
        self._metric = metric
        self._time_attr = BUDGET_RESULT_KEY[budget_unit]

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return True  # metric and mode come with the rungs

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        return self._decide(trial.trial_id, result)

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> None:
        # A trial's last result reaches the scheduler here, not in `on_trial_result`: it
        # counts in the rungs it reached, as every other result does.
        self._decide(trial.trial_id, result)

    def _decide(self, trial_id: str, result: dict[str, Any]) -> str:
        if self._time_attr not in result or self._metric not in result:
            return str(TrialScheduler.CONTINUE)
        decision = self.rungs.decide(trial_id, result[self._time_attr], result[self._metric])
        return str(TrialScheduler.STOP if decision == STOP else TrialScheduler.CONTINUE)

    def debug_string(self) -> str:
        return "ASHA: " + ", ".join(f"{r.milestone:g}: {len(r.recorded)}" for r in self.rungs.rungs)


def make_scheduler(spec: SweepSpec, plan: SweepPlan) -> TrialScheduler:
    """ASHA on the plan's milestones, or FIFO (no early stopping) for `scheduler: none`."""
    rungs = asha_rungs_for(spec, plan)
    if rungs is None:
        return FIFOScheduler()  # type: ignore[no-untyped-call]  # unannotated in Ray
    return AshaScheduler(rungs, spec.metric, spec.budget_unit)
