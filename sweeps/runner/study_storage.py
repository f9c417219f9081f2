"""The Optuna study's storage, with SQLite set for a sweep's many small commits (:mod:`sweeps.sqlite`)."""

from __future__ import annotations

import optuna

from sweeps.sqlite import use_fast_commits


def open_study_storage(url: str) -> optuna.storages.RDBStorage:
    """An ``RDBStorage`` for ``url``; a SQLite file gets WAL and ``synchronous=NORMAL``."""
    storage = optuna.storages.RDBStorage(url)
    use_fast_commits(storage.engine)
    return storage
