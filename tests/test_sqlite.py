"""The sweep's SQLite databases commit in WAL mode (no flush per commit), unless turned off."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sweeps.runner.study_storage import open_study_storage


def _journal_mode(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        return str(connection.execute("PRAGMA journal_mode").fetchone()[0])


def _write_a_trial(storage: object) -> None:
    import optuna

    study = optuna.create_study(storage=storage, study_name="s")
    study.tell(study.ask(), 1.0)


def test_study_storage_uses_wal_and_normal_sync(tmp_path: Path) -> None:
    storage = open_study_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    _write_a_trial(storage)
    assert _journal_mode(tmp_path / "optuna.db") == "wal"
    with storage.engine.connect() as connection:
        # 1 = NORMAL (2 = FULL, SQLite's default)
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1


def test_sweeps_sqlite_wal_0_keeps_sqlite_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWEEPS_SQLITE_WAL", "0")
    _write_a_trial(open_study_storage(f"sqlite:///{tmp_path / 'optuna.db'}"))
    assert _journal_mode(tmp_path / "optuna.db") == "delete"


def test_embedded_mlflow_store_uses_wal(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from sweeps.tracking.writer import _use_fast_commits

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    _use_fast_commits(client)
    client.create_experiment("e")
    assert _journal_mode(tmp_path / "mlflow.db") == "wal"
