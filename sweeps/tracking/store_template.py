"""A new SQLite MLflow store, copied from an empty one migrated once per MLflow version.

MLflow creates a SQLite store by building its oldest schema and then running every alembic
migration since (69 files in MLflow 3.17), each a few table rebuilds. Measured with
``python -m benchmarks.store_creation --reps 5`` (fresh processes, medians, 2 shared
cores, MLflow 3.17.2), from an empty interpreter to a first
``MlflowClient(uri).search_experiments()`` on a new path:

    the new store made by       process CPU s   wall s   store CPU s (after imports)
    MLflow's migrations              2.85         2.92        0.84
    a copy of the template           1.99         1.87        0.11

The copy itself takes about 5 ms; the rest of the 0.11 s is MLflow opening any store
(its schema check reads every migration file). The first sweep of a machine (or of a new
MLflow version) still pays the migrations once, to make the template.

:func:`create_store_from_template` promises:

- it acts only on a ``sqlite:///PATH`` URI whose file does not exist yet (nor a ``-wal``
  or ``-journal`` of it). A server, an existing store, an in-memory or a parameterised
  URI is left to MLflow, untouched;
- the copy is an ordinary MLflow store: MLflow's own schema and alembic revision, without
  the ``Default`` experiment, which MLflow adds when it first opens the store, with the
  artifact location of that moment, as it does for a store it creates itself;
- the template is made once per combination of MLflow, its list of migrations,
  SQLAlchemy, alembic and SQLite, in ``$XDG_CACHE_HOME/sweeps/`` (``~/.cache/sweeps/``).
  It is built under a temporary name and published with one ``os.replace``, so two sweeps
  starting at once may both build it and both read a whole file. It is left in SQLite's
  rollback-journal mode and closed, so it is one self-contained file (no ``-wal`` or
  ``-shm`` beside it; the sweep's writer turns WAL on later, :mod:`sweeps.sqlite`);
- the target appears with one hard link from a full copy in its folder: never half a
  file, and never over a store another process created in the meantime;
- when anything fails (an unwritable cache, no hard links on that file system, a broken
  template), it returns False and MLflow creates the store as before: never an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import shutil
import sqlite3
from contextlib import closing
from importlib import metadata
from pathlib import Path

from sweeps.sqlite import read_only_uri

_logger = logging.getLogger("sweeps.tracking")

#: Bump when the way the template is made changes, so older cached templates are not used.
_TEMPLATE_FORMAT = 1
_PREFIX = "sqlite:///"


def create_store_from_template(uri: str) -> bool:
    """Create the SQLite store ``uri`` as a copy of the cached empty store, if it does not exist.

    Returns True when this call created the file; False when it left the store to MLflow
    (not a new local SQLite file, another process created it first, or the template
    could not be made or read).

    Example::

        create_store_from_template(paths.embedded_tracking_uri)
        MlflowClient(paths.embedded_tracking_uri).search_experiments()  # no migrations
    """
    target = _new_sqlite_file(uri)
    if target is None:
        return False
    try:
        template = template_path()
        if not template.is_file():
            _build_template(template)
        return _place_copy(template, target)
    except Exception as exc:  # noqa: BLE001 - MLflow creates the store as before
        _logger.debug("No MLflow store template for %s (%s); MLflow creates the store.", uri, exc)
        return False


def cache_folder() -> Path:
    """``$XDG_CACHE_HOME/sweeps``, else ``~/.cache/sweeps`` (a relative XDG path is ignored, per the spec)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(base) if os.path.isabs(base) else Path.home() / ".cache") / "sweeps"


def template_path() -> Path:
    """Where the template for the installed MLflow, SQLAlchemy, alembic and SQLite lies."""
    import mlflow
    from mlflow.version import VERSION

    migrations = Path(mlflow.__file__).parent / "store" / "db_migrations" / "versions"
    # A development build of MLflow can carry migrations its version number does not tell.
    key = json.dumps(
        {
            "format": _TEMPLATE_FORMAT,
            "mlflow": VERSION,
            "migrations": sorted(name for name in os.listdir(migrations) if name.endswith(".py")),
            "sqlalchemy": metadata.version("sqlalchemy"),
            "alembic": metadata.version("alembic"),
            "sqlite": sqlite3.sqlite_version,
        }
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_folder() / f"mlflow-{VERSION}-store-{digest}.db"


def _new_sqlite_file(uri: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URI if nothing exists there yet, else None."""
    if not uri.startswith(_PREFIX):
        return None
    path = uri[len(_PREFIX) :]
    if not path or "?" in path or path.startswith((":memory:", "file:")):
        return None
    target = Path(path)
    # A leftover -wal or -journal beside a missing file would be replayed into the copy.
    if any(os.path.lexists(f"{target}{suffix}") for suffix in ("", "-wal", "-journal")):
        return None
    return target


def _build_template(template: Path) -> None:
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    template.parent.mkdir(parents=True, exist_ok=True)
    temporary = template.with_name(f".{template.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    artifacts = temporary.with_name(f"{temporary.name}-artifacts")  # older MLflows create it
    try:
        # Created here first so that a cache that cannot be written fails at once: MLflow
        # retries a store it cannot open with a backoff that stalls the sweep for 100 s.
        os.close(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        # The store's own constructor: MLflow's migrations, exactly as for any new store.
        store = SqlAlchemyStore(f"{_PREFIX}{temporary}", str(artifacts))  # type: ignore[no-untyped-call]
        store.engine.dispose()
        with closing(sqlite3.connect(temporary)) as connection:
            # The Default experiment records the artifact root of the moment it was made;
            # MLflow adds it again on the copy's first opening, with the copy's own.
            connection.execute("DELETE FROM experiments WHERE experiment_id = 0")
            connection.commit()
            connection.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            revisions = connection.execute("SELECT version_num FROM alembic_version").fetchall()
        if len(revisions) != 1:
            raise RuntimeError(f"the new template has {len(revisions)} alembic revisions, not 1")
        os.replace(temporary, template)
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{temporary}{suffix}").unlink(missing_ok=True)
        shutil.rmtree(artifacts, ignore_errors=True)


def _place_copy(template: Path, target: Path) -> bool:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        shutil.copyfile(template, temporary)
        if not _is_migrated_store(temporary):
            template.unlink(missing_ok=True)  # the next sweep builds a new one
            return False
        with open(temporary, "rb+") as stream:
            os.fsync(stream.fileno())  # a power loss must not leave an empty store behind
        try:
            os.link(temporary, target)  # unlike a rename, never replaces a file that appeared
        except FileExistsError:
            return False  # another sweep created the store first; MLflow opens theirs
        return True
    finally:
        temporary.unlink(missing_ok=True)


def _is_migrated_store(path: Path) -> bool:
    try:
        with closing(sqlite3.connect(read_only_uri(path), uri=True)) as connection:
            return len(connection.execute("SELECT version_num FROM alembic_version").fetchall()) == 1
    except sqlite3.Error:
        return False
