"""Ray Tune's ``OptunaSearch``, corrected to tell Optuna the truth about each trial.

Ray's own ``OptunaSearch`` tells Optuna that a trial stopped early by ASHA is COMPLETE
with its last, low-fidelity value (which biases TPE: a trial cut at its first rung
competes as if finished) and keys intermediate values by report count. Here:

- a trial stopped before its own ``total_iterations`` is PRUNED, and its intermediate
  values are keyed by the budget unit (iterations, samples, or iterations for epochs,
  because Optuna steps must be integers);
- a trial that ran all its iterations is COMPLETE with its final value;
- a trial that raised, or whose metric diverged, is FAIL.

The study in SQLite is also the sweep's durable ledger: each Optuna trial carries the Ray
trial id it belongs to and, once finished, its outcome and last result (user attributes
written just before ``tell``). ``sweep resume`` trusts the study over Ray's experiment
snapshot, which can be a checkpoint period old when the driver dies.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

from sweeps.runner.study_storage import write_intermediate_values
from sweeps.training.batching import points_in

logger = logging.getLogger(__name__)

_INTEGER_STEP_KEY = {"iterations": "iteration", "samples": "samples_seen", "epochs": "iteration"}

#: User attribute naming the Ray trial an Optuna trial belongs to.
RAY_TRIAL_ID_ATTR = "ray_trial_id"
#: User attribute holding a finished trial's outcome and last result (see `trial_record`).
RECORD_ATTR = "sweep_record"
#: Result keys kept in the record: enough for summaries, `sweep status` and `sweep best`.
_RECORD_KEYS = ("iteration", "epoch", "samples_seen", "iterations_per_epoch", "total_iterations", "dataset_size")


class TruthfulOptunaSearch(OptunaSearch):
    """``OptunaSearch`` with honest trial states and budget-keyed intermediate values."""

    def __init__(self, *args: Any, budget_unit: str, fixed: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._study_storage = kwargs["storage"]
        self._step_key = _INTEGER_STEP_KEY[budget_unit]
        self._fixed = dict(fixed)
        #: Ray trial id → Optuna trial number, for the tracker and the state file.
        self.optuna_numbers: dict[str, int] = {}
        self._last_results: dict[str, dict[str, Any]] = {}
        self._reported_steps: dict[str, set[int]] = {}
        self.attach_existing_trials()

    @property
    def study(self) -> optuna.Study:
        # Ray's OptunaSearch declares `_ot_study = None` and creates the study in its
        # constructor whenever a space is given, as it always is here.
        return self._ot_study  # type: ignore[return-value]

    def attach_existing_trials(self) -> None:
        """Bind the trials already in the study to their Ray trial ids (a resumed sweep).

        Ray's pickled searcher state is up to one checkpoint period old and bound to the
        storage path of the first run, so it is never trusted: the study is.
        """
        for frozen in self.study.get_trials(deepcopy=False):
            ray_id = frozen.user_attrs.get(RAY_TRIAL_ID_ATTR)
            if ray_id is None:
                continue
            self._ot_trials[ray_id] = optuna.Trial(self.study, frozen._trial_id)
            self.optuna_numbers[ray_id] = frozen.number
            # A trial resumed from a checkpoint repeats the steps it reported after it.
            self._reported_steps[ray_id] = set(frozen.intermediate_values)
            if frozen.state.is_finished():
                self._completed_trials.add(ray_id)

    def restore(self, checkpoint_path: str) -> None:
        # Called by Ray on `Tuner.restore`; the study was attached in `__init__` already.
        self.attach_existing_trials()

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        params = super().suggest(trial_id)
        if params is None:
            return None
        ot_trial = self._ot_trials[trial_id]
        self.optuna_numbers[trial_id] = ot_trial.number
        ot_trial.set_user_attr(RAY_TRIAL_ID_ATTR, trial_id)
        return {**self._fixed, **params}

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if trial_id in self._completed_trials:
            return
        points = points_in(result)
        self._last_results[trial_id] = points[-1]
        self._report_intermediate(trial_id, points)

    def _report_intermediate(self, trial_id: str, points: list[dict[str, Any]]) -> None:
        """Record the new steps of a delivered batch of reports, in one transaction."""
        reported = self._reported_steps.setdefault(trial_id, set())
        values: dict[int, float] = {}
        for point in points:
            if point.get("diverged") or self.metric not in point:
                continue
            step = int(point[self._step_key])
            if step not in reported:
                reported.add(step)
                values[step] = float(point[self.metric])
        if values:
            write_intermediate_values(self._study_storage, self._ot_trials[trial_id], values)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        ot_trial = self._ot_trials[trial_id]
        state, value = classify_trial(result, error, self.metric)
        last = result or self._last_results.get(trial_id)
        if result:
            # Tune skips `on_trial_result` for the result on which ASHA decides to stop a
            # trial, yet that is the value the trial was pruned on: record it (and the
            # reports it carried) here.
            points = points_in(result)
            last = points[-1]
            self._report_intermediate(trial_id, points)
        try:
            # Written before `tell`, so a finished trial in the study always has its record.
            ot_trial.set_user_attr(RECORD_ATTR, trial_record(last, error, self.metric))
            self.study.tell(ot_trial, value, state=state)
        except Exception as exc:  # noqa: BLE001 - a bad value must not stop the sweep
            logger.warning("Optuna could not record trial %s: %s", trial_id, exc)
        self._completed_trials.add(trial_id)


def classify_trial(result: dict[str, Any] | None, error: bool, metric: str) -> tuple[TrialState, float | None]:
    """The Optuna state and value of a finished trial, from its last result.

    A diverged trial (NaN/inf) is FAIL rather than "worst value": Optuna's samplers skip
    FAIL trials, while an invented worst value would distort TPE's density of bad
    configs with a number the trial never produced.
    """
    if error or not result or result.get("diverged") or metric not in result:
        return TrialState.FAIL, None
    if result["iteration"] < result["total_iterations"]:
        return TrialState.PRUNED, None
    return TrialState.COMPLETE, float(result[metric])


def trial_record(result: dict[str, Any] | None, error: bool, metric: str) -> dict[str, Any]:
    """What the study keeps of a finished trial: its outcome and the last result's numbers."""
    from sweeps.runner.ledger import classify_outcome

    record: dict[str, Any] = {"outcome": classify_outcome(result, error)}
    if result:
        record.update({key: result[key] for key in _RECORD_KEYS if key in result})
        value = result.get(metric)
        record["value"] = value if isinstance(value, (int, float)) else None
    plain: dict[str, Any] = json.loads(json.dumps(record, default=float))
    return plain
