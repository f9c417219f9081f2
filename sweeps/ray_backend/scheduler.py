"""The trial scheduler Tune runs: ASHA (:mod:`sweeps.search.asha`) counting the sweep's budget unit.

:class:`AshaScheduler` subclasses Tune's public ``FIFOScheduler`` (which places trials in
order) and hands each result to :class:`~sweeps.search.asha.AshaBrackets`. Its time
attribute is the budget unit (``iteration``, ``samples_seen`` or ``epoch``), not Ray's
``training_iteration``, which counts ``report()`` calls and so depends on how often a
trainable reports: ASHA must compare trials by the work they did.

It draws each new trial's bracket as Tune adds the trial (after the searcher has asked
the study for its config) and tells its :class:`~sweeps.search.asha.ScheduleRecorder`
(the study) at once, and records why it stopped a trial; :meth:`AshaScheduler.notes`
shows both to the sweep's listeners (the journal, MLflow), through the listener bridge.
"""

from __future__ import annotations

from typing import Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from sweeps.iterations import BUDGET_RESULT_KEY
from sweeps.plan.planner import SweepPlan
from sweeps.search.asha import STOP, AshaBrackets, ScheduleRecorder, asha_rungs_for
from sweeps.spec.models import SweepSpec


class AshaScheduler(FIFOScheduler):
    """Stops a trial whose value at a rung of its bracket is below the rung's cutoff."""

    def __init__(self, rungs: AshaBrackets, metric: str, budget_unit: str) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # unannotated in Ray
        self.rungs = rungs
        self._metric = metric
        self._sweep_metric = metric  # typed str (Ray declares `_metric` optional)
        self._time_attr = BUDGET_RESULT_KEY[budget_unit]
        #: Told of each new bracket and each stop (the study); set by the tuner.
        self.recorder: ScheduleRecorder | None = None
        #: Trial id → why the scheduler stopped it (Decision.explanation()).
        self._stops: dict[str, dict[str, Any]] = {}

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its TuneConfig into `tuner.pkl`; a resumed sweep builds its own
        # scheduler and replays it from the journal, so the study connection stays out.
        return {**self.__dict__, "recorder": None}

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return True  # metric and mode come with the rungs

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        # Tune adds a trial again when it retries it or restores a sweep: it keeps its bracket.
        drawn = trial.trial_id not in self.rungs.assignments
        bracket = self.rungs.assign(trial.trial_id)
        if drawn and self.recorder is not None and len(self.rungs.brackets) > 1:
            self.recorder.bracket_assigned(trial.trial_id, bracket)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        if self._time_attr not in result:
            return str(TrialScheduler.CONTINUE)
        # One objective: the metric's value; several: all of them (MOASHA), or no decision.
        decision = self.rungs.judge_result(
            trial.trial_id, result[self._time_attr], result, self._sweep_metric
        )
        if decision is None:
            return str(TrialScheduler.CONTINUE)
        explanation = decision.explanation()
        if explanation:
            self._stops[trial.trial_id] = explanation
            if self.recorder is not None:  # before the searcher ends the trial in the study
                self.recorder.trial_stopped(trial.trial_id, explanation)
        return str(TrialScheduler.STOP if decision.action == STOP else TrialScheduler.CONTINUE)

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> None:
        # A trial's last result reaches the scheduler here, not in `on_trial_result`: it
        # counts in the rungs it reached, as every other result does (a trial that ran to
        # its end is not "stopped", whatever the rung says).
        if self._time_attr in result:
            self.rungs.judge_result(trial.trial_id, result[self._time_attr], result, self._sweep_metric)

    def notes(self, trial_id: str) -> dict[str, Any]:
        """What the scheduler says of a trial: its bracket (with brackets), and why it stopped it."""
        notes: dict[str, Any] = {}
        if len(self.rungs.brackets) > 1 and trial_id in self.rungs.assignments:
            notes["bracket"] = self.rungs.assignments[trial_id]
        notes.update(self._stops.get(trial_id, {}))
        return notes

    def debug_string(self) -> str:
        return "ASHA: " + "; ".join(
            ", ".join(f"{r.milestone:g}: {len(r.recorded)}" for r in bracket.rungs)
            for bracket in self.rungs.brackets
        )


def make_scheduler(spec: SweepSpec, plan: SweepPlan) -> TrialScheduler:
    """ASHA on the plan's milestones, or FIFO (no early stopping) for `scheduler: none`."""
    rungs = asha_rungs_for(spec, plan)
    if rungs is None:
        return FIFOScheduler()  # type: ignore[no-untyped-call]  # unannotated in Ray
    return AshaScheduler(rungs, spec.metric, spec.budget_unit)
