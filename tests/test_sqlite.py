"""The sweep's SQLite databases commit in WAL mode (no flush per commit), unless turned off."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sweeps.store.study import open_study_storage


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


# -- readers open the databases read-only (issue 12, 6) ---------------------------------------


def _wal_database(path: Path, rows: int, checkpoint: bool) -> None:
    """A WAL database with ``rows`` rows; unless ``checkpoint``, they stay in its -wal file."""
    import shutil

    with sqlite3.connect(path.with_suffix(".tmp")) as writer:
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("PRAGMA wal_autocheckpoint=0")
        writer.execute("CREATE TABLE t (x)")
        writer.commit()
        writer.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(rows)])
        writer.commit()
        if checkpoint:
            writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        # Copied while the writer is open, as a driver killed before its checkpoint leaves them.
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{path.with_suffix('.tmp')}{suffix}")
            if source.exists() and (suffix == "" or not checkpoint):
                shutil.copy2(source, f"{path}{suffix}")
    writer.close()


def test_a_reader_in_a_writable_folder_opens_mode_ro_and_cannot_write(tmp_path: Path) -> None:
    from sweeps.sqlite import read_only_uri

    _wal_database(tmp_path / "a.db", 3, checkpoint=True)
    uri = read_only_uri(tmp_path / "a.db")
    assert uri.endswith("?mode=ro")
    with sqlite3.connect(uri, uri=True) as reader:
        assert reader.execute("SELECT count(*) FROM t").fetchone() == (3,)
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.execute("INSERT INTO t VALUES (9)")
    reader.close()


READ_CHECK = """
import sqlite3, sys
from sweeps.sqlite import read_only_uri
uri = read_only_uri(sys.argv[1])
with sqlite3.connect(uri, uri=True) as reader:
    print(uri.rsplit("?", 1)[1], reader.execute("SELECT count(*) FROM t").fetchone()[0])
"""


@pytest.mark.parametrize(
    ("checkpoint", "expected"),
    [(True, "immutable=1 5"), (False, "mode=ro 5")],
    ids=["closed-file", "rows-in-the-wal"],
)
def test_a_reader_on_a_read_only_mount_reads_every_row(
    tmp_path: Path, checkpoint: bool, expected: str
) -> None:
    """A real read-only bind mount: no -shm can be created, so a closed file is read immutable;
    rows still in a -wal file are read through its -shm (immutable would not see them)."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    folder = tmp_path / "archive"
    folder.mkdir()
    _wal_database(folder / "a.db", 5, checkpoint)
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
    done = subprocess.run(
        [
            "unshare",
            "-rm",
            "sh",
            "-c",
            script,
            "sh",
            str(folder),
            sys.executable,
            "-c",
            READ_CHECK,
            str(folder / "a.db"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected


def test_reading_the_mlflow_store_read_only_creates_nothing_in_the_working_directory(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """MLflow makes the parent folder of a `sqlite:///` path; for a URI filename that was a
    `file:` folder in the working directory (found in the repository after a test run)."""
    from mlflow.tracking import MlflowClient

    from sweeps.analysis.mlflow_reader import client

    store = tmp_path / "results" / "mlflow.db"
    store.parent.mkdir()
    MlflowClient(f"sqlite:///{store}").create_experiment("e")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert [e.name for e in client(f"sqlite:///{store}").search_experiments()].count("e") == 1
    assert list(elsewhere.iterdir()) == []
