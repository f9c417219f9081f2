"""The Optuna study's SQLite storage, tuned for a sweep's many small transactions.

The driver writes the study once per suggestion, per report and per finished trial, and
Ray Tune waits for each of those writes before it hands the trial its next step. With
SQLite's defaults (rollback journal, ``synchronous=FULL``) every one of these commits
waits for the disk to flush (fsync): profiled with py-spy on a 200-trial no-op sweep
(``make bench``, B1), 33 % of the driver's busy time was inside ``COMMIT``.

Write-ahead logging with ``synchronous=NORMAL`` commits without flushing; the log is
flushed at checkpoints. A commit survives the driver being killed (the case ``sweep
resume`` is for); only a power loss or an OS crash can lose the last few transactions.
WAL needs the database on a local disk, which is where a sweep's storage lives (a shared
filesystem such as NFS does not support WAL's shared memory): set ``SWEEPS_SQLITE_WAL=0``
to keep SQLite's defaults there.
"""

from __future__ import annotations

import os
from typing import Any

import optuna


def open_study_storage(url: str) -> optuna.storages.RDBStorage:
    """An ``RDBStorage`` for ``url``; for SQLite, in WAL mode with ``synchronous=NORMAL``."""
    storage = optuna.storages.RDBStorage(url)
    if url.startswith("sqlite:") and os.environ.get("SWEEPS_SQLITE_WAL", "1") != "0":
        from sqlalchemy import event

        event.listen(storage.engine, "connect", _fast_commits)
        # Connections opened by RDBStorage's own start-up (schema checks) predate the
        # listener: drop them, so every connection the sweep uses has the pragmas.
        storage.engine.dispose()
    return storage


def _fast_commits(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")  # persistent: readers see it too
        cursor.execute("PRAGMA synchronous=NORMAL")  # per connection
    finally:
        cursor.close()
