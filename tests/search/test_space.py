"""Every sampler the spec offers runs on the spec's space, seeded and reproducible."""

from __future__ import annotations

import optuna
import pytest

from sweeps.search.space import fixed_values, make_sampler, optuna_distributions
from sweeps.spec.models import SweepSpec
from sweeps.store.study_records import classify_trial
from tests.conftest import small_spec


@pytest.mark.parametrize("sampler", ["tpe", "random", "cmaes", "gp", "qmc", "multi_fidelity"])
def test_each_sampler_samples_the_space_reproducibly(sampler: str) -> None:
    spec = SweepSpec.model_validate(small_spec(sampler={"type": sampler}, seed=3))
    distributions = optuna_distributions(spec)

    def sample() -> list[dict]:
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        study = optuna.create_study(direction="maximize", sampler=make_sampler(spec))
        params = []
        for i in range(6):
            trial = study.ask(fixed_distributions=distributions)
            params.append(trial.params)
            study.tell(trial, float(i % 3))
        return params

    first = sample()
    assert first == sample()
    for params in first:
        assert params["batch_size"] in (64, 128)
        assert 1 <= params["epochs"] <= 3
        assert 1e-3 <= params["learning_rate"] <= 1e-1


def test_fixed_values_are_not_searched() -> None:
    spec = small_spec()
    spec["search_space"]["epochs"] = 4
    parsed = SweepSpec.model_validate(spec)
    assert "epochs" not in optuna_distributions(parsed)
    assert fixed_values(parsed) == {"epochs": 4}


@pytest.mark.parametrize(
    "result,error,expected",
    [
        ({"m": 0.9, "iteration": 50, "total_iterations": 50}, False, (optuna.trial.TrialState.COMPLETE, 0.9)),
        ({"m": 0.4, "iteration": 20, "total_iterations": 50}, False, (optuna.trial.TrialState.PRUNED, None)),
        (
            {"m": float("nan"), "iteration": 5, "total_iterations": 50, "diverged": True},
            False,
            (optuna.trial.TrialState.FAIL, None),
        ),
        ({"m": 0.4, "iteration": 20, "total_iterations": 50}, True, (optuna.trial.TrialState.FAIL, None)),
        (None, False, (optuna.trial.TrialState.FAIL, None)),
    ],
)
def test_trials_are_classified_truthfully(result: dict | None, error: bool, expected: tuple) -> None:
    assert classify_trial(result, error, "m") == expected


def test_a_space_with_every_hyperparameter_fixed_gives_optuna_one_choice_each() -> None:
    spec = SweepSpec.model_validate(
        small_spec(search_space={"batch_size": 64, "epochs": 2, "learning_rate": 0.01})
    )
    distributions = optuna_distributions(spec)
    assert {name: d.choices for name, d in distributions.items()} == {
        "batch_size": (64,),
        "epochs": (2,),
        "learning_rate": (0.01,),
    }
    study = optuna.create_study(sampler=make_sampler(spec))
    assert study.ask(fixed_distributions=distributions).params == fixed_values(spec)
