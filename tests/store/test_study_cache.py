"""The driver's study storage (sweeps/store/study_cache.py): reads from memory, writes committed at once.

After every write, a fresh ``RDBStorage`` on the file (what ``sweep resume`` and ``sweep
status`` read) must see exactly what the cache serves; a finished trial must never be
served as running; a finished trial refuses writes as Optuna's own storage does.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from sweeps.store.study import open_study_storage, write_intermediate_values
from sweeps.store.study_cache import WriteThroughStorage

SPACE = {
    "learning_rate": FloatDistribution(1e-4, 1.0, log=True),
    "epochs": IntDistribution(1, 10),
    "batch_size": CategoricalDistribution([16, 32, 64]),
}


def cached_study(tmp_path: Path) -> tuple[optuna.Study, WriteThroughStorage]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = WriteThroughStorage(open_study_storage(f"sqlite:///{tmp_path / 'optuna.db'}"))
    study = optuna.create_study(
        storage=storage,
        study_name="s",
        load_if_exists=True,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=2, constant_liar=True),
    )
    return study, storage


def snapshot(trial: FrozenTrial) -> dict[str, Any]:
    """Every field of a trial, with floats as their repr (NaN equals NaN here); the order of a
    dict's keys aside."""
    return {
        key: repr(sorted(value.items()) if isinstance(value, dict) else value)
        for key, value in sorted(vars(trial).items())
    }


def assert_file_matches_cache(tmp_path: Path, study: optuna.Study, storage: WriteThroughStorage) -> None:
    fresh = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")
    on_file = fresh.get_all_trials(fresh.get_study_id_from_name("s"))
    cached = storage.get_all_trials(study._study_id)
    assert [snapshot(t) for t in cached] == [snapshot(t) for t in on_file]
    assert [snapshot(storage.get_trial(t._trial_id)) for t in on_file] == [snapshot(t) for t in on_file]


def test_after_every_write_a_fresh_reader_of_the_file_sees_what_the_cache_serves(tmp_path: Path) -> None:
    study, storage = cached_study(tmp_path)

    def check() -> None:
        assert_file_matches_cache(tmp_path, study, storage)

    first = study.ask(fixed_distributions=SPACE)
    check()
    first.set_user_attr("ray_trial_id", "t1")
    first.set_user_attr("pair", (1, 2))  # stored as JSON: read back as a list, by both
    storage.set_trial_system_attr(first._trial_id, "note", {"a": [1.5]})
    check()
    write_intermediate_values(storage, first._trial_id, {10: 0.5, 20: math.nan, 30: math.inf})
    storage.set_trial_intermediate_value(first._trial_id, 40, -math.inf)
    storage.set_trial_intermediate_value(
        first._trial_id, 10, 0.25
    )  # a step written again takes the new value
    check()
    second = study.ask(fixed_distributions=SPACE)  # while the first one runs
    study.tell(first, 0.75)
    check()
    write_intermediate_values(storage, second._trial_id, {5: 0.1})
    study.tell(second, state=TrialState.PRUNED)  # Optuna takes the last intermediate value
    third = study.ask(fixed_distributions=SPACE)
    study.tell(third, state=TrialState.FAIL)
    study.enqueue_trial({"learning_rate": 0.01, "epochs": 3, "batch_size": 32})  # WAITING, then RUNNING
    check()
    fourth = study.ask(fixed_distributions=SPACE)
    assert fourth.params == {"learning_rate": 0.01, "epochs": 3, "batch_size": 32}
    study.tell(fourth, math.inf)
    check()
    states = [t.state for t in storage.get_all_trials(study._study_id)]
    assert states == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.COMPLETE]


def test_a_cached_read_never_serves_a_finished_trial_as_running(tmp_path: Path) -> None:
    study, storage = cached_study(tmp_path)
    trial = study.ask(fixed_distributions=SPACE)
    handed_out = storage.get_trial(trial._trial_id)
    assert [t.number for t in storage.get_all_trials(study._study_id, states=(TrialState.RUNNING,))] == [0]
    study.tell(trial, 0.5)
    assert storage.get_trial(trial._trial_id).state == TrialState.COMPLETE
    assert storage.get_all_trials(study._study_id, deepcopy=False, states=(TrialState.RUNNING,)) == []
    assert study.trials[0].state == TrialState.COMPLETE and study.best_trial.value == 0.5
    # Copy on write: what a sampler was handed before stays as it was, it is never half-changed.
    assert handed_out.state == TrialState.RUNNING and handed_out.value is None


@pytest.mark.parametrize(
    "write",
    [
        lambda s, i: s.set_trial_param(i, "extra", 0.5, FloatDistribution(0, 1)),
        lambda s, i: s.set_trial_user_attr(i, "k", 1),
        lambda s, i: s.set_trial_system_attr(i, "k", 1),
        lambda s, i: s.set_trial_intermediate_value(i, 99, 0.5),
        lambda s, i: write_intermediate_values(s, i, {99: 0.5}),
        lambda s, i: s.set_trial_state_values(i, TrialState.FAIL),
    ],
    ids=["param", "user-attr", "system-attr", "intermediate", "intermediate-batch", "state"],
)
def test_a_finished_trial_refuses_writes_as_rdbstorage_does(tmp_path: Path, write: Any) -> None:
    study, storage = cached_study(tmp_path)
    trial = study.ask(fixed_distributions=SPACE)
    study.tell(trial, 0.5)
    before = snapshot(storage.get_trial(trial._trial_id))
    with pytest.raises(UpdateFinishedTrialError):
        write(storage, trial._trial_id)
    assert snapshot(storage.get_trial(trial._trial_id)) == before
    assert_file_matches_cache(tmp_path, study, storage)


def test_a_param_of_another_kind_than_the_studys_is_refused_as_rdbstorage_does(tmp_path: Path) -> None:
    study, storage = cached_study(tmp_path)
    study.tell(study.ask(fixed_distributions=SPACE), 0.5)
    trial = study.ask()
    with pytest.raises(ValueError, match="Cannot set different distribution kind"):
        storage.set_trial_param(trial._trial_id, "epochs", 0.0, CategoricalDistribution([0.0, 1.0]))
    assert_file_matches_cache(tmp_path, study, storage)


def test_trials_another_writer_added_are_read_when_the_next_trial_is_created(tmp_path: Path) -> None:
    study, storage = cached_study(tmp_path)
    study.tell(study.ask(fixed_distributions=SPACE), 0.5)
    other = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    other.tell(other.ask(fixed_distributions=SPACE), 0.6)
    study.ask(fixed_distributions=SPACE)
    assert [t.number for t in study.trials] == [0, 1, 2]
    assert_file_matches_cache(tmp_path, study, storage)


def test_a_reopened_study_is_read_whole_from_the_file(tmp_path: Path) -> None:
    study, storage = cached_study(tmp_path)
    running = study.ask(fixed_distributions=SPACE)
    write_intermediate_values(storage, running._trial_id, {1: 0.2})
    study.tell(study.ask(fixed_distributions=SPACE), 0.5)
    again, reopened = cached_study(tmp_path)
    assert [snapshot(t) for t in again.trials] == [snapshot(t) for t in study.trials]
    assert_file_matches_cache(tmp_path, again, reopened)


def test_an_unpickled_storage_reads_the_file_again(tmp_path: Path) -> None:
    """Tune pickles the searcher with its storage; the pickle can be older than the file."""
    study, _ = cached_study(tmp_path)
    study.tell(study.ask(fixed_distributions=SPACE), 0.5)
    pickled = pickle.dumps(study)
    study.tell(study.ask(fixed_distributions=SPACE), 0.6)  # after the pickle
    copied = pickle.loads(pickled)
    copied.tell(copied.ask(fixed_distributions=SPACE), 0.7)
    assert [t.value for t in copied.trials] == [0.5, 0.6, 0.7]
    assert_file_matches_cache(tmp_path, copied, copied._storage)


def test_a_backend_other_than_sqlite_is_refused() -> None:
    backend = SimpleNamespace(engine=SimpleNamespace(dialect=SimpleNamespace(name="postgresql")))
    with pytest.raises(ValueError, match="but must be one on SQLite"):
        WriteThroughStorage(backend)  # type: ignore[arg-type]
