"""Hyperparameter importance on the persisted Optuna study, and its fallback for few completed trials."""

from __future__ import annotations

import dataclasses
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from sweeps.analysis.importance import (
    MIN_COMPLETED_TRIALS,
    _with_pruned_as_complete,
    load_study,
    param_importances,
)
from sweeps.errors import StateError


def _trial(state: TrialState, lr: float, bs: int, value: float | None, intermediate: dict[int, float]) -> Any:
    return create_trial(
        state=state,
        value=value,
        intermediate_values=intermediate,
        params={"learning_rate": lr, "batch_size": bs},
        distributions={
            "learning_rate": FloatDistribution(1e-4, 1, log=True),
            "batch_size": CategoricalDistribution([64, 128]),
        },
    )


def test_pruned_trials_count_at_the_value_where_asha_stopped_them() -> None:
    study = optuna.create_study(direction="maximize")
    completed = [_trial(TrialState.COMPLETE, 0.01, 64, 0.9, {10: 0.5, 23: 0.9})]
    pruned = [_trial(TrialState.PRUNED, 0.1, 128, None, {10: 0.3, 20: 0.4})]
    copy = _with_pruned_as_complete(study, completed, pruned)
    assert [t.state for t in copy.trials] == [TrialState.COMPLETE, TrialState.COMPLETE]
    assert [t.value for t in copy.trials] == [0.9, 0.4]  # the pruned one at iteration 20, its last
    assert copy.direction == study.direction


@pytest.mark.slow
def test_the_study_is_the_sweeps_persisted_one(sweep_data: Any) -> None:
    study = load_study(sweep_data)
    assert study.study_name == sweep_data.name and len(study.trials) == len(sweep_data.trials)
    result = param_importances(sweep_data)
    completed = int((sweep_data.trials["state"] == "completed").sum())
    if completed >= MIN_COMPLETED_TRIALS:
        assert result.basis == f"from {completed} completed trials"
    else:
        assert "pruned trials taken at the value where ASHA stopped them" in result.basis


@pytest.mark.slow
def test_without_the_optuna_study_importance_is_a_state_error(sweep_data: Any) -> None:
    with pytest.raises(StateError, match="Optuna study"):
        param_importances(dataclasses.replace(sweep_data, paths=None))
