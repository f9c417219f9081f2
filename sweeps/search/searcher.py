"""Ray Tune's ``OptunaSearch``, corrected to tell Optuna the truth about each trial.

Ray's own ``OptunaSearch`` tells Optuna that a trial stopped early by ASHA is COMPLETE
with its last, low-fidelity value (which biases TPE: a trial cut at its first rung
competes as if finished) and keys intermediate values by report count. Here:

- a trial stopped before its own ``total_iterations`` is PRUNED, and its intermediate
  values are keyed by the budget unit (iterations, samples, or iterations for epochs,
  because Optuna steps must be integers);
- a trial that ran all its iterations is COMPLETE with its final value;
- a trial that raised, or whose metric diverged, is FAIL.
"""

from __future__ import annotations

import logging
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

logger = logging.getLogger(__name__)

_INTEGER_STEP_KEY = {"iterations": "iteration", "samples": "samples_seen", "epochs": "iteration"}


class TruthfulOptunaSearch(OptunaSearch):
    """``OptunaSearch`` with honest trial states and budget-keyed intermediate values."""

    def __init__(self, *args: Any, budget_unit: str, fixed: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._step_key = _INTEGER_STEP_KEY[budget_unit]
        self._fixed = dict(fixed)
        #: Ray trial id → Optuna trial number, for the tracker and the state file.
        self.optuna_numbers: dict[str, int] = {}

    @property
    def study(self) -> optuna.Study:
        return self._ot_study

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        params = super().suggest(trial_id)
        if params is None:
            return None
        self.optuna_numbers[trial_id] = self._ot_trials[trial_id].number
        return {**self._fixed, **params}

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if trial_id in self._completed_trials or result.get("diverged"):
            return
        self._ot_trials[trial_id].report(result[self.metric], int(result[self._step_key]))

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        ot_trial = self._ot_trials[trial_id]
        state, value = classify_trial(result, error, self.metric)
        try:
            self._ot_study.tell(ot_trial, value, state=state)
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
