"""Contract test: the private Optuna names `write_intermediate_values` relies on (Optuna's
``RDBStorage`` models and their tables, ``Trial._trial_id``) still behave as assumed."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest

from sweeps.store.study import open_study_storage, write_intermediate_values


def new_trial(tmp_path: Path) -> tuple[optuna.Study, optuna.Trial, optuna.storages.RDBStorage]:
    """A running trial, and the plain RDBStorage `write_intermediate_values` is given by
    `sweep resume` (the searcher's own storage is tested in test_study_cache.py)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_study_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    study = optuna.create_study(storage=storage)
    return study, study.ask(), storage


def test_the_private_names_exist_in_the_installed_optuna() -> None:
    from optuna.storages._rdb import models

    assert hasattr(models.TrialIntermediateValueModel, "intermediate_value_to_stored_repr"), (
        "optuna.storages._rdb.models.TrialIntermediateValueModel.intermediate_value_to_stored_repr"
    )
    assert set(models.TrialIntermediateValueModel.__table__.c.keys()) >= {
        "trial_id",
        "step",
        "intermediate_value",
        "intermediate_value_type",
    }


def test_the_batch_takes_the_one_transaction_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, trial, storage = new_trial(tmp_path)

    def refuse(*args: object) -> None:
        raise AssertionError("the public per-value path was taken")

    monkeypatch.setattr(storage, "set_trial_intermediate_value", refuse)
    write_intermediate_values(storage, trial._trial_id, {1: 0.1, 2: 0.2})
    assert storage.get_trial(trial._trial_id).intermediate_values == {1: 0.1, 2: 0.2}


def test_a_batch_reads_back_through_optunas_public_api(tmp_path: Path) -> None:
    study, trial, storage = new_trial(tmp_path)
    assert isinstance(trial._trial_id, int), "optuna.Trial._trial_id"
    write_intermediate_values(storage, trial._trial_id, {10: 0.5, 20: 0.75})
    write_intermediate_values(storage, trial._trial_id, {30: math.inf})
    study.tell(trial, 0.75)
    reread = optuna.load_study(study_name=study.study_name, storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert reread.trials[0].intermediate_values == {10: 0.5, 20: 0.75, 30: math.inf}


def test_a_finished_trial_is_refused_as_optuna_refuses_it(tmp_path: Path) -> None:
    study, trial, storage = new_trial(tmp_path)
    study.tell(trial, 1.0)
    with pytest.raises(RuntimeError, match="finished"):
        write_intermediate_values(storage, trial._trial_id, {1: 0.1})
