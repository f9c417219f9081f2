"""A multi-objective study (directions, PRUNED with every objective per step, COMPLETE with all
values), constraints through the sampler's constraints_func, and the front. No Ray."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from sweeps.search.front import front_trials
from sweeps.spec.objectives import constraint_violations, parse_constraint
from sweeps.store.study_records import OBJECTIVES_ATTR, backend_trial_id
from tests.search.test_truthful_study import TOTAL, opened, point, reread

TWO = {"metric": ["val_accuracy", "parameters"], "mode": ["max", "min"]}


def test_a_multi_objective_study_has_directions_pruned_steps_and_complete_values(tmp_path: Path) -> None:
    study = opened(tmp_path, **TWO)
    assert study.study.directions == [
        optuna.study.StudyDirection.MAXIMIZE,
        optuna.study.StudyDirection.MINIMIZE,
    ]
    study.ask("pruned")
    study.report("pruned", [point(5, 0.3, parameters=100), point(7, 0.35)])  # step 7 lacks an objective
    study.finish("pruned", [point(10, 0.4, parameters=100)], error=False)
    study.ask("done")
    study.finish("done", [point(TOTAL, 0.9, parameters=50)], error=False)
    study.ask("partial")
    study.finish("partial", [point(TOTAL, 0.9)], error=False)  # complete, but without `parameters`
    pruned, done, partial = reread(tmp_path, 0), reread(tmp_path, 1), reread(tmp_path, 2)
    assert pruned.state == TrialState.PRUNED
    assert pruned.intermediate_values == {5: 0.3, 10: 0.4}  # the first objective's
    assert pruned.user_attrs[OBJECTIVES_ATTR] == {"5": [0.3, 100.0], "10": [0.4, 100.0]}
    assert done.state == TrialState.COMPLETE and done.values == [0.9, 50.0]
    assert partial.state == TrialState.FAIL


def test_a_single_objective_study_is_unchanged(tmp_path: Path) -> None:
    study = opened(tmp_path)
    study.ask("t")
    study.report("t", [point(5, 0.3, parameters=100)])
    study.finish("t", [point(TOTAL, 0.8)], error=False)
    frozen = reread(tmp_path)
    assert frozen.values == [0.8] and OBJECTIVES_ATTR not in frozen.user_attrs
    assert frozen.constraints == {}


def test_constraints_reach_the_sampler_and_keep_infeasible_trials_off_the_front(tmp_path: Path) -> None:
    study = opened(tmp_path, constraints=["latency_ms <= 5"], **TWO)
    for trial_id, accuracy, parameters, latency in [
        ("fast", 0.8, 50, 4.0),
        ("slow", 0.95, 10, 9.0),
        ("dominated", 0.7, 60, 1.0),
        ("other", 0.9, 80, 5.0),
    ]:
        study.ask(trial_id)
        study.finish(
            trial_id, [point(TOTAL, accuracy, parameters=parameters, latency_ms=latency)], error=False
        )
    trials = study.study.get_trials()
    # Optuna's own record of each trial's feasibility, which its samplers read.
    assert [t.constraints for t in trials] == [{"latency_ms <= 5": v} for v in (-1.0, 4.0, -4.0, 0.0)]
    front = front_trials(trials, ["max", "min"])
    assert [backend_trial_id(t) for t in front] == ["other", "fast"]  # best first by accuracy
    assert {t.number for t in study.study.best_trials} == {t.number for t in front}  # Optuna agrees


def test_a_missing_constrained_metric_is_infeasible() -> None:
    constraint = parse_constraint("latency_ms <= 5", 0)
    assert constraint_violations({"other": 1}, [constraint]) == [math.inf]
    assert constraint_violations(None, [constraint]) == [math.inf]
    assert constraint_violations({"latency_ms": 2}, [constraint]) == [-3.0]


@pytest.mark.parametrize("avoid", [True, False])
def test_tpe_learns_from_pruned_trials_of_a_multi_objective_study(tmp_path: Path, avoid: bool) -> None:
    """Optuna's TPE asks `study.direction` to rank pruned trials, which a multi-objective study
    refuses: our samplers rank them by the first objective, the study's intermediate value."""
    study = opened(tmp_path, failure={"avoid": avoid}, sampler={"type": "tpe", "n_startup_trials": 2}, **TWO)
    for number in range(4):
        study.ask(f"t{number}")
        study.finish(f"t{number}", [point(10 + number, 0.1 * number, parameters=5)], error=False)  # pruned
    assert all(t.state == TrialState.PRUNED for t in study.study.trials)
    assert set(study.ask("after")) >= {"batch_size", "learning_rate"}  # TPE past its start-up
