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
from typing import Any


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
