"""SQLite settings for the sweep's own databases: the Optuna study and the embedded MLflow store.

The driver commits to both many times per trial (a suggestion, each report, each finished
trial; MLflow runs, params and metrics), and Ray Tune waits for the study's writes before
it hands a trial its next step. With SQLite's defaults (rollback journal,
``synchronous=FULL``) every commit waits for the disk to flush: profiled with py-spy on a
200-trial no-op sweep (``make bench``, B1), 33 % of the driver's busy time was inside
``COMMIT``; an MLflow run with three metric batches took 22–86 ms instead of 15–27 ms.

Write-ahead logging with ``synchronous=NORMAL`` commits without flushing; the log is
flushed at checkpoints. A commit survives the driver being killed (what ``sweep resume``
is for); only a power loss or an OS crash can lose the last few transactions. WAL needs
the file on a local disk (a shared filesystem such as NFS lacks WAL's shared memory):
set ``SWEEPS_SQLITE_WAL=0`` to keep SQLite's defaults there.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import quote


def use_fast_commits(engine: Any) -> None:
    """Give every connection of the SQLAlchemy ``engine`` (a SQLite file) WAL and ``synchronous=NORMAL``."""
    if engine.dialect.name != "sqlite" or os.environ.get("SWEEPS_SQLITE_WAL", "1") == "0":
        return
    from sqlalchemy import event

    if not event.contains(engine, "connect", _fast_commits):
        event.listen(engine, "connect", _fast_commits)
        # Connections opened before the listener (schema checks at start-up) lack the
        # pragmas: drop the idle ones; any in use are discarded when given back.
        engine.dispose()


def _fast_commits(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")  # persistent in the file: readers see it too
        cursor.execute("PRAGMA synchronous=NORMAL")  # per connection
    finally:
        cursor.close()


# -- reading a finished sweep: never needs write access -------------------------------------
#
# Opened the usual way, SQLite (and Optuna's and MLflow's start-up on top of it) wants to
# write: a WAL database creates its `-shm` index beside it, Optuna's RDBStorage creates
# tables, and on a read-only mount (an archive, a shared results share) `sweep list` showed
# `unreadable` and `sweep report` died in SQLAlchemy. Readers open the file with
# `mode=ro`, so nothing can be written. Where its folder cannot be written either, SQLite
# could not create the `-shm` it needs for `mode=ro` on a WAL file, so the file is opened
# `immutable=1` (no locks, no `-shm`): nothing can change it there. immutable ignores a
# `-wal` file, though, so one that holds transactions (a driver killed before its last
# checkpoint) keeps `mode=ro`, which reads it through an existing `-shm`.


def read_only_uri(path: str | Path) -> str:
    """An SQLite URI filename (``file:...?mode=ro``) that reads ``path`` and never writes."""
    path = Path(path).resolve()
    wal = path.with_name(path.name + "-wal")
    unchanged = not wal.exists() or wal.stat().st_size == 0
    query = "immutable=1" if unchanged and not os.access(path.parent, os.W_OK) else "mode=ro"
    return f"file:{quote(str(path))}?{query}"


def read_only_url(path: str | Path) -> str:
    """The SQLAlchemy URL of :func:`read_only_uri` (``uri=true`` hands it to SQLite as is)."""
    # `sqlite+pysqlite`, not `sqlite`: both name the same driver, but MLflow creates the
    # parent folder of any `sqlite:///PATH` it opens, and for a URI filename that "parent"
    # is `file:/...` relative to the working directory, so every read left a `file:`
    # folder behind (and failed where the working directory is read-only).
    return f"sqlite+pysqlite:///{read_only_uri(path)}&uri=true"


def open_study_read_only(path: str | Path, study_name: str) -> Any:
    """The Optuna study in the SQLite file ``path``, for reading: no table creation, no writes."""
    import optuna

    storage = optuna.storages.RDBStorage(
        read_only_url(path),
        skip_compatibility_check=True,
        skip_table_creation=True,
    )
    return optuna.load_study(study_name=study_name, storage=storage)


def count_study_trials(path: str | Path) -> int:
    """How many trials the Optuna study in ``path`` holds, read without writing (0 if unreadable)."""
    if not Path(path).is_file():
        return 0
    try:
        with closing(sqlite3.connect(read_only_uri(path), uri=True)) as connection:
            return int(connection.execute("SELECT COUNT(*) FROM trials").fetchone()[0])
    except sqlite3.Error:
        return 0  # whoever opens the study reports a broken one with its own message
