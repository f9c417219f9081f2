"""The Optuna study's storage, with SQLite set for a sweep's many small commits (:mod:`sweeps.sqlite`)."""

from __future__ import annotations

import optuna

from sweeps.sqlite import use_fast_commits


def open_study_storage(url: str) -> optuna.storages.RDBStorage:
    """An ``RDBStorage`` for ``url``; a SQLite file gets WAL and ``synchronous=NORMAL``."""
    storage = optuna.storages.RDBStorage(url)
    use_fast_commits(storage.engine)
    return storage


def write_intermediate_values(storage: optuna.storages.BaseStorage, trial: optuna.Trial, values: dict[int, float]) -> None:
    """Write a trial's intermediate values (step → value) in one transaction.

    Optuna's public ``Trial.report`` commits once per value, and a worker delivers its
    held reports in batches (:mod:`sweeps.training.batching`): one commit per batch cuts
    the driver's SQLite time per result. This relies on two private names of Optuna's
    ``RDBStorage`` and ``Trial._trial_id``, used here only and checked by ``tests/runner/test_study_storage.py``;
    any other storage, or an Optuna without them, takes the public path.
    """
    trial_id = trial._trial_id
    session_scope = getattr(optuna.storages._rdb.storage, "_create_scoped_session", None)
    write_one = getattr(storage, "_set_trial_intermediate_value_without_commit", None)
    if not isinstance(storage, optuna.storages.RDBStorage) or session_scope is None or write_one is None:
        for step, value in values.items():
            storage.set_trial_intermediate_value(trial_id, step, value)
        return
    with session_scope(storage.scoped_session, True) as session:
        for step, value in values.items():
            write_one(session, trial_id, step, value)
