"""What the Optuna study records of each trial: its backend's trial id, its state and its outcome.

The study in SQLite is the sweep's durable ledger (see :mod:`sweeps.ray_backend.searcher`,
which writes it): each Optuna trial carries the id of the backend trial it belongs to and,
once finished, its outcome and last result. ``sweep resume`` and ``sweep status`` read them
back from here, with no backend running.
"""

from __future__ import annotations

import json
from typing import Any

from optuna.trial import TrialState

from sweeps.outcomes import classify_outcome

#: User attribute naming the backend's trial an Optuna trial belongs to (read it with
#: :func:`backend_trial_id`, which also reads older studies).
BACKEND_TRIAL_ID_ATTR = "backend_trial_id"
#: Its name in studies written before it was neutral. Optuna refuses to change a finished
#: trial, so old studies are migrated as they are read, not rewritten.
LEGACY_TRIAL_ID_ATTR = "ray_trial_id"
#: User attribute holding a finished trial's outcome and last result (see `trial_record`).
RECORD_ATTR = "sweep_record"
#: User attribute holding the Hyperband bracket ASHA drew the trial into (with `brackets` > 1).
BRACKET_ATTR = "sweep.bracket"
#: User attribute saying why ASHA stopped the trial: {"stopped_at_rung", "rung_value", "rung_cutoff", ...}.
STOPPED_ATTR = "sweep.stopped"
#: User attribute holding a failed trial's error, its first line (:func:`sweeps.outcomes.error_headline`):
#: what a FAIL trial in the study, optuna-dashboard included, says of why it failed.
ERROR_ATTR = "error"
#: User attribute of a multi-objective trial: step → every objective's value there, in the spec's
#: order (Optuna keeps one intermediate value per step: the first objective's).
OBJECTIVES_ATTR = "sweep.objectives"
#: Result keys kept in the record: enough for summaries, `sweep status` and `sweep best`.
_RECORD_KEYS = (
    "iteration",
    "epoch",
    "samples_seen",
    "iterations_per_epoch",
    "total_iterations",
    "dataset_size",
)


def backend_trial_id(frozen: Any) -> str | None:
    """The id of the backend trial ``frozen`` (an Optuna trial) belongs to, or None (not yet started)."""
    attrs = frozen.user_attrs
    trial_id = attrs.get(BACKEND_TRIAL_ID_ATTR, attrs.get(LEGACY_TRIAL_ID_ATTR))
    return None if trial_id is None else str(trial_id)


def classify_trial(
    result: dict[str, Any] | None, error: bool, metric: str
) -> tuple[TrialState, float | None]:
    """The Optuna state and value of a finished trial, from its last result.

    A diverged trial (NaN/inf) is FAIL rather than "worst value": Optuna's samplers skip
    FAIL trials, while an invented worst value would distort TPE's density of bad
    configs with a number the trial never produced.
    """
    outcome = classify_outcome(result, error)
    if result is None or metric not in result:  # nothing for the sampler to learn from
        return TrialState.FAIL, None
    state = TrialState[outcome.optuna_state]
    return state, float(result[metric]) if state == TrialState.COMPLETE else None


def trial_record(result: dict[str, Any] | None, error: bool, metric: str) -> dict[str, Any]:
    """What the study keeps of a finished trial: its outcome and the last result's numbers."""
    record: dict[str, Any] = {"outcome": classify_outcome(result, error)}
    if result:
        record.update({key: result[key] for key in _RECORD_KEYS if key in result})
        value = result.get(metric)
        record["value"] = value if isinstance(value, (int, float)) else None
    plain: dict[str, Any] = json.loads(json.dumps(record, default=float))
    return plain


def recorded_brackets(frozen_trials: list[Any]) -> dict[str, int]:
    """Trial id → the bracket the study recorded for it (trials drawn into none are left out)."""
    return _recorded(frozen_trials, BRACKET_ATTR, int)


def recorded_stops(frozen_trials: list[Any]) -> dict[str, dict[str, Any]]:
    """Trial id → why ASHA stopped it, as the study recorded (trials it did not stop are left out)."""
    return _recorded(frozen_trials, STOPPED_ATTR, dict)


def _recorded(frozen_trials: list[Any], attr: str, kind: type) -> dict[str, Any]:
    """Trial id → the user attribute ``attr`` of each trial that has one of type ``kind``."""
    found = {}
    for frozen in frozen_trials:
        trial_id, value = backend_trial_id(frozen), frozen.user_attrs.get(attr)
        if trial_id is not None and isinstance(value, kind):
            found[str(trial_id)] = value
    return found
