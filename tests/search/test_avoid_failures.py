"""`failure.avoid`: TPE stops proposing the configs that fail, and the study stays truthful (no Ray)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from sweeps.search.avoid_failures import CONSTRAINTS_KEY, FailureAvoidingTPESampler
from sweeps.search.space import make_sampler, optuna_distributions
from sweeps.spec.loading import load_spec
from tests.conftest import small_spec


def oom_spec(tmp_path: Path, **failure: Any) -> Any:
    """Issue 24's case: batch sizes 16-256, and (in `drive`) every one of 128 or more fails."""
    spec = small_spec(
        search_space={
            "batch_size": {"type": "categorical", "values": [16, 32, 64, 128, 256]},
            "epochs": {"type": "int", "low": 1, "high": 3},
            "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
        },
        failure=failure,
    )
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return load_spec(path).spec


def drive(spec: Any, seed: int, trials: int) -> tuple[int, optuna.Study]:
    """Failing proposals in a study driven as the sweep drives it: failures told FAIL."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize", sampler=make_sampler(spec.model_copy(update={"seed": seed}))
    )
    space, failing = optuna_distributions(spec), 0
    for _ in range(trials):
        trial = study.ask(space)
        if trial.params["batch_size"] >= 128:
            failing += 1
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, 0.99 - 0.05 * (abs(trial.params["learning_rate"] - 0.01) * 10))
    return failing, study


def test_the_sampler_proposes_fewer_failing_configs_with_avoid(tmp_path: Path) -> None:
    on, off = oom_spec(tmp_path), oom_spec(tmp_path, avoid=False)
    assert isinstance(make_sampler(on), FailureAvoidingTPESampler)  # the default for TPE
    assert not isinstance(make_sampler(off), FailureAvoidingTPESampler)
    failing_on = sum(drive(on, seed, 30)[0] for seed in range(4))
    failing_off = sum(drive(off, seed, 30)[0] for seed in range(4))
    # Measured over 20 seeds (benchmarks/failure_avoid.py): 9.45 against 19.2 in 40 trials.
    assert failing_on < 0.75 * failing_off, (failing_on, failing_off)


def test_the_study_stays_truthful(tmp_path: Path) -> None:
    _, study = drive(oom_spec(tmp_path), 0, 15)
    failed = [t for t in study.trials if t.params["batch_size"] >= 128]
    assert failed and all(t.state == optuna.trial.TrialState.FAIL for t in failed)
    assert all(CONSTRAINTS_KEY not in t.system_attrs for t in study.trials)  # only TPE's view has them


@pytest.mark.parametrize("sampler", ["random", "qmc"])
def test_avoid_with_another_sampler_than_tpe_is_refused(tmp_path: Path, sampler: str) -> None:
    from sweeps.errors import SpecError

    spec = small_spec(sampler={"type": sampler}, failure={"avoid": True})
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert "field `failure.avoid`" in message and f"`sampler.type` is `{sampler}`" in message
    assert "works with the TPE sampler only" in message


def test_avoid_off_by_default_for_other_samplers(tmp_path: Path) -> None:
    spec = small_spec(sampler={"type": "random"})
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert not isinstance(make_sampler(load_spec(path).spec), FailureAvoidingTPESampler)


def test_a_non_boolean_avoid_is_refused(tmp_path: Path) -> None:
    from sweeps.errors import SpecError

    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(small_spec(failure={"avoid": "sometimes"})))
    with pytest.raises(SpecError, match="field `failure.avoid`"):
        load_spec(path)
