"""Hyperparameter importance from Optuna's evaluators on the sweep's persisted study.

The study lives in ``<storage>/<name>/optuna.db`` (study name = sweep name). Optuna's
evaluators only look at COMPLETE trials, and our searcher tells Optuna the truth: a trial
ASHA stopped is PRUNED. A small or aggressive sweep can therefore have too few completed
trials to say anything; then the pruned trials are added at the value where ASHA stopped
them, and the figure says so, since those values were measured at low fidelity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sweeps.analysis.loading import SweepData
from sweeps.errors import StateError

#: Below this many completed trials, pruned trials are added at their last intermediate value.
MIN_COMPLETED_TRIALS = 4


@dataclass(frozen=True)
class Importances:
    importances: dict[str, float]  # parameter → importance, sorted descending, summing to 1
    evaluator: str
    basis: str  # which trials the numbers come from, in words
    trials_used: int


def load_study(data: SweepData) -> Any:
    """The sweep's Optuna study, read from ``<storage>/<name>/optuna.db``."""
    import optuna

    from sweeps.sqlite import open_study_read_only

    if data.optuna_url is None:
        where = data.paths.directory if data.paths else "(no sweep folder given)"
        raise StateError(
            f"{where}: the sweep's Optuna study (optuna.db) is not there, so hyperparameter "
            "importance cannot be computed. Load the sweep by name with `storage=` pointing "
            "at the folder that holds `<name>/optuna.db`."
        )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    assert data.paths is not None  # optuna_url is None without the sweep's folder
    # Read-only (sweeps/sqlite.py): a report of an archived sweep must not need write access.
    return open_study_read_only(data.paths.study_file, data.name)


def param_importances(data: SweepData, evaluator: Any = None) -> Importances:
    """Importances of the sampled hyperparameters (fANOVA, seeded, unless ``evaluator`` is given)."""
    import optuna
    from optuna.trial import TrialState

    evaluator = evaluator or optuna.importance.FanovaImportanceEvaluator(seed=0)
    name = type(evaluator).__name__.removesuffix("ImportanceEvaluator")
    study = load_study(data)
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    basis = f"from {len(completed)} completed trials"
    used = len(completed)
    if len(completed) < MIN_COMPLETED_TRIALS:
        pruned = [
            t for t in study.get_trials(deepcopy=False, states=(TrialState.PRUNED,)) if t.intermediate_values
        ]
        study = _with_pruned_as_complete(study, completed, pruned)
        used = len(completed) + len(pruned)
        basis = (
            f"from {len(completed)} completed trials and {len(pruned)} pruned trials taken at "
            f"the value where ASHA stopped them (low fidelity: fewer than {MIN_COMPLETED_TRIALS} completed)"
        )
    if used < 2:
        return Importances({}, name, f"not enough trials to rank hyperparameters ({basis})", used)
    # Several objectives: importance for the first one (the value every single-valued view shows).
    target = (lambda t: t.values[0]) if len(study.directions) > 1 else None
    importances = optuna.importance.get_param_importances(study, evaluator=evaluator, target=target)
    ranked = dict(sorted(importances.items(), key=lambda item: -item[1]))
    return Importances(ranked, name, basis, used)


def _with_pruned_as_complete(study: Any, completed: list[Any], pruned: list[Any]) -> Any:
    """An in-memory copy of ``study`` in which pruned trials count as complete at their last value."""
    import optuna

    # Several objectives: the pruned trials' intermediate values are the first objective's,
    # so the copy ranks by the first objective alone.
    copy = optuna.create_study(direction=study.directions[0])
    for trial in completed:
        copy.add_trial(
            trial
            if len(study.directions) == 1
            else optuna.trial.create_trial(
                params=trial.params, distributions=trial.distributions, value=trial.values[0]
            )
        )
    for trial in pruned:
        last_step = max(trial.intermediate_values)
        copy.add_trial(
            optuna.trial.create_trial(
                params=trial.params,
                distributions=trial.distributions,
                value=trial.intermediate_values[last_step],
            )
        )
    return copy
