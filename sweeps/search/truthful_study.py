"""The Optuna study, told the truth about each trial: the searcher's logic, without Ray.

Ray's own ``OptunaSearch`` tells Optuna that a trial stopped early by ASHA is COMPLETE
with its last, low-fidelity value (which biases TPE: a trial cut at its first rung
competes as if finished) and keys intermediate values by report count. Here:

- a trial stopped before its own ``total_iterations`` is PRUNED, and its intermediate
  values are keyed by the budget unit (iterations, samples, or iterations for epochs,
  because Optuna steps must be integers);
- a trial that ran all its iterations is COMPLETE with its final value;
- a trial that raised, or whose metric diverged, is FAIL (:mod:`sweeps.outcomes`).

With several objectives (``metric: [a, b]``) the study is created with ``directions``, a
COMPLETE trial is told every objective's final value, and a trial missing one is FAIL.
Optuna keeps one intermediate value per step, so a step's intermediate value is the
first objective's, and the user attribute ``sweep.objectives`` holds every objective's
value at each step (step → list, in the spec's order): a PRUNED trial keeps what each
objective was at the rung that stopped it. Under ``constraints`` each finished trial
gets each constraint's violation (``Trial.set_constraint``, Optuna's successor of
``constraints_func``) before it is told, for the sampler and the front
(:mod:`sweeps.search.front`).

The study in SQLite is also the sweep's durable ledger: each Optuna trial carries the id
of the backend trial it belongs to and, once finished, its outcome and last result (user
attributes written just before ``tell``, :mod:`sweeps.store.study_records`). ``sweep
resume`` trusts the study over the backend's snapshot, which can be a checkpoint period
old when the driver dies. A backend adapts this class to its own searcher interface
(:mod:`sweeps.ray_backend.searcher`); the tests drive it directly.

The sweep's study reads from memory and commits each write at once
(:mod:`sweeps.store.study_cache`): on Optuna's own cached ``RDBStorage``, a 40-trial TPE
sweep's asks took 17.4 ms of CPU each, its reports 0.53 ms and its ends 6.2 ms (1.31 s
in all); now 2.95 ms, 0.092 ms and 0.60 ms (0.21 s), with the same writes committed at
the same moments (``python -m benchmarks.study_overhead``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import optuna

from sweeps.outcomes import error_headline
from sweeps.search.space import fixed_values, make_sampler, optuna_distributions
from sweeps.spec.models import LearningRateScale, SweepSpec
from sweeps.spec.objectives import Constraint, constraint_violations, objective_values
from sweeps.spec.scaling import learning_rate_scale, trial_config
from sweeps.store.state import SweepPaths
from sweeps.store.study import open_study_storage, write_intermediate_values
from sweeps.store.study_cache import WriteThroughStorage
from sweeps.store.study_records import (
    BACKEND_TRIAL_ID_ATTR,
    BRACKET_ATTR,
    ERROR_ATTR,
    OBJECTIVES_ATTR,
    RECORD_ATTR,
    STOPPED_ATTR,
    backend_trial_id,
    classify_trial,
    trial_record,
)

logger = logging.getLogger(__name__)

_INTEGER_STEP_KEY = {"iterations": "iteration", "samples": "samples_seen", "epochs": "iteration"}


def step_key(budget_unit: str) -> str:
    """The result key whose value is a report's Optuna step under ``budget_unit``."""
    return _INTEGER_STEP_KEY[budget_unit]


def new_intermediate_values(
    points: list[dict[str, Any]], metric: str, key: str, reported: set[int]
) -> dict[int, float]:
    """Step → value of the ``points`` whose step is not in ``reported`` yet (which it joins).

    Diverged reports and reports without the metric or the step have no value to record."""
    values: dict[int, float] = {}
    for point in points:
        if point.get("diverged") or metric not in point or key not in point:
            continue
        step = int(point[key])
        if step not in reported:
            reported.add(step)
            values[step] = float(point[metric])
    return values


class TruthfulStudy:
    """Asks Optuna for configs and tells it each trial's reports and end, truthfully."""

    def __init__(
        self,
        *,
        space: dict[str, optuna.distributions.BaseDistribution],
        metric: str,
        mode: str,
        sampler: optuna.samplers.BaseSampler,
        study_name: str,
        storage: optuna.storages.BaseStorage,
        budget_unit: str,
        fixed: dict[str, Any],
        scale: LearningRateScale | None = None,
        objectives: Sequence[tuple[str, str]] = (),
        constraints: Sequence[Constraint] = (),
    ) -> None:
        self.metric = metric
        #: Every objective's metric, the first (``metric``) included; one for a single objective.
        self.metrics = [m for m, _ in objectives] or [metric]
        self.constraints = list(constraints)
        self.space = dict(space)
        self.storage = storage
        modes = [m for _, m in objectives] or [mode]
        self.study = optuna.create_study(
            storage=storage,
            sampler=sampler,
            pruner=optuna.pruners.NopPruner(),
            study_name=study_name,
            load_if_exists=True,
            directions=["maximize" if m == "max" else "minimize" for m in modes],
        )
        self._objective_steps: dict[str, dict[str, list[float]]] = {}
        self._step_key = step_key(budget_unit)
        self._fixed = dict(fixed)
        self._scale = scale
        self._trials: dict[str, optuna.Trial] = {}
        self._finished: set[str] = set()
        #: Trial id → Optuna trial number.
        self.optuna_numbers: dict[str, int] = {}
        self._last_results: dict[str, dict[str, Any]] = {}
        self._reported_steps: dict[str, set[int]] = {}
        self.attach_existing_trials()

    def attach_existing_trials(self) -> None:
        """Bind the trials already in the study to their trial ids (a resumed sweep)."""
        for frozen in self.study.get_trials(deepcopy=False):
            trial_id = backend_trial_id(frozen)  # an older study's trials too (study_records)
            if trial_id is None:
                continue
            # compat: optuna-storage-internals
            self._trials[trial_id] = optuna.Trial(self.study, frozen._trial_id)
            self.optuna_numbers[trial_id] = frozen.number
            # A trial resumed from a checkpoint repeats the steps it reported after it.
            self._reported_steps[trial_id] = set(frozen.intermediate_values)
            steps = frozen.user_attrs.get(OBJECTIVES_ATTR)
            if isinstance(steps, dict):
                self._objective_steps[trial_id] = dict(steps)
            if frozen.state.is_finished():
                self._finished.add(trial_id)

    def ask(self, trial_id: str) -> dict[str, Any]:
        """The config of a new trial (a trial asked again gets the config it was given)."""
        trial = self._trials.get(trial_id)
        if trial is None:
            trial = self._trials[trial_id] = self.study.ask(fixed_distributions=self.space)
            trial.set_user_attr(BACKEND_TRIAL_ID_ATTR, trial_id)
            self.optuna_numbers[trial_id] = trial.number
        return trial_config(trial.params, self._fixed, self._scale)

    def report(self, trial_id: str, points: list[dict[str, Any]]) -> None:
        """Record the new steps of a delivered batch of reports, in one transaction."""
        if trial_id in self._finished or trial_id not in self._trials:
            return
        self._last_results[trial_id] = points[-1]
        reported = self._reported_steps.setdefault(trial_id, set())
        if len(self.metrics) > 1:
            # Only steps with every objective count, so the intermediate values and the
            # per-step objectives cover the same steps.
            points = [p for p in points if objective_values(p, self.metrics) is not None]
        values = new_intermediate_values(points, self.metric, self._step_key, reported)
        if values:
            write_intermediate_values(
                self.storage, self._trials[trial_id]._trial_id, values
            )  # compat: optuna-storage-internals
            if len(self.metrics) > 1:
                self._record_objective_steps(trial_id, points, set(values))

    def _record_objective_steps(self, trial_id: str, points: list[dict[str, Any]], steps: set[int]) -> None:
        recorded = self._objective_steps.setdefault(trial_id, {})
        for point in points:
            step = int(point[self._step_key])
            if step in steps:
                recorded[str(step)] = objective_values(point, self.metrics) or []
        self._trials[trial_id].set_user_attr(OBJECTIVES_ATTR, dict(recorded))

    def bracket_assigned(self, trial_id: str, bracket: int) -> None:
        """Record the trial's Hyperband bracket (a :class:`~sweeps.search.asha.ScheduleRecorder`):
        written before the trial starts, so a resumed sweep judges it in the same bracket."""
        if trial_id in self._trials:
            self._trials[trial_id].set_user_attr(BRACKET_ATTR, int(bracket))

    def trial_stopped(self, trial_id: str, explanation: dict[str, Any]) -> None:
        """Record why ASHA stopped the trial (its rung, value and the rung's cut-off), before it ends."""
        if trial_id in self._trials and trial_id not in self._finished:
            self._trials[trial_id].set_user_attr(STOPPED_ATTR, dict(explanation))

    def finish(
        self, trial_id: str, points: list[dict[str, Any]] | None, error: bool, error_text: str | None = None
    ) -> None:
        """The trial ended: ``points`` are the reports of its last delivery (None if unknown);
        ``error_text``, the traceback of a trial that raised, gives the FAIL trial its reason."""
        if trial_id in self._finished or trial_id not in self._trials:
            return
        if points:
            # The backend may not have reported the delivery it stopped the trial on (Tune
            # skips the searcher for the result on which ASHA decides to stop), yet that is
            # the value the trial was pruned on: record it here.
            self.report(trial_id, points)
        last = points[-1] if points else self._last_results.get(trial_id)
        state, value = classify_trial(last, error, self.metric)
        told: float | list[float] | None = value
        if len(self.metrics) > 1 and state == optuna.trial.TrialState.COMPLETE:
            told = objective_values(last, self.metrics)
            if told is None:  # an objective missing or not finite: nothing the sampler can rank
                state = optuna.trial.TrialState.FAIL
        trial = self._trials[trial_id]
        try:
            # Written before `tell`, so a finished trial in the study always has its record.
            trial.set_user_attr(RECORD_ATTR, trial_record(last, error, self.metric))
            for constraint, violation in zip(
                self.constraints, constraint_violations(last, self.constraints), strict=True
            ):
                trial.set_constraint(str(constraint), violation)
            headline = error_headline(error_text) if error else None
            if headline:
                trial.set_user_attr(ERROR_ATTR, headline)
            self.study.tell(trial, told, state=state)
        except Exception as exc:  # noqa: BLE001 - a bad value must not stop the sweep
            logger.warning("Optuna could not record trial %s: %s", trial_id, exc)
        self._finished.add(trial_id)


def open_truthful_study(
    spec: SweepSpec,
    paths: SweepPaths,
    trials_so_far: int = 0,
    milestones: Sequence[float] = (),
) -> TruthfulStudy:
    """The sweep's study (created, or opened to continue), with the spec's space and sampler.

    ``milestones``: the plan's ASHA rungs (in the budget unit, the study's step unit), for
    the multi-fidelity sampler."""
    return TruthfulStudy(
        space=optuna_distributions(spec),
        metric=spec.metric,
        mode=spec.mode,
        sampler=make_sampler(spec, trials_so_far, milestones),
        study_name=spec.name,
        # WAL: see store/study.py; reads from memory: see store/study_cache.py.
        storage=WriteThroughStorage(open_study_storage(paths.optuna_url)),
        budget_unit=spec.budget_unit,
        fixed=fixed_values(spec),
        scale=learning_rate_scale(spec),
        objectives=spec.objectives,
        constraints=spec.parsed_constraints,
    )
