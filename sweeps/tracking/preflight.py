"""Where a sweep logs, and the check that it can log there before any trial starts.

- No ``tracking.uri``: the embedded SQLite store ``<storage>/mlflow.db`` with artifacts
  under ``<storage>/mlartifacts``; no server needed (``sweep ui`` shows it).
- ``tracking.uri: http://host:port`` (or ``--tracking-uri``): an MLflow tracking server,
  which is how the nodes of a cluster share one record.

A server that does not answer is reported as a :class:`~sweeps.errors.TrackingError`
(exit code 2) before Ray starts, rather than discovered after an hour of training.

Once the check passes, the store is opened on a background thread: importing mlflow and
creating a fresh SQLite store's schema take about 3 s on 2 cores, which then overlap
Ray's own start-up instead of adding to the sweep (:func:`wait_for_store`). A new SQLite
store is a copy of an empty one MLflow migrated once
(:mod:`sweeps.tracking.store_template`), not a fresh run of all its migrations.
"""

from __future__ import annotations

import logging
import os
import threading
import urllib.error
import urllib.request
from typing import Any

from sweeps.errors import TrackingError
from sweeps.spec.models import SweepSpec
from sweeps.store.state import SweepPaths

#: Seconds the preflight waits for a tracking server's health endpoint.
PREFLIGHT_TIMEOUT = 5.0


def tracking_uri(spec: SweepSpec, paths: SweepPaths) -> str:
    return spec.tracking.uri or paths.embedded_tracking_uri


def experiment_name(spec: SweepSpec) -> str:
    return spec.tracking.experiment or spec.name


def preflight(spec: SweepSpec, paths: SweepPaths, source: str) -> str:
    """Check that the sweep's tracking store can be reached; return its URI."""
    uri = tracking_uri(spec, paths)
    if uri.startswith(("http://", "https://")):
        _check_server(uri, source)
    elif uri.startswith("sqlite:///"):
        _check_sqlite_folder(uri, spec, source)
    _open_in_background(uri)
    return uri


_opening: dict[str, threading.Thread] = {}


def _open_in_background(uri: str) -> None:
    def open_store() -> None:
        try:
            from mlflow.tracking import MlflowClient

            from sweeps.tracking.store_template import create_store_from_template

            _quiet_store_logs()
            create_store_from_template(uri)  # before MLflow's first call would migrate a new file
            MlflowClient(uri).search_experiments(max_results=1)
        except Exception:  # noqa: BLE001, S110 - start_tracking opens it again and reports the error
            pass

    if uri not in _opening:
        _opening[uri] = threading.Thread(target=open_store, name="sweeps-mlflow-open", daemon=True)
        _opening[uri].start()


def wait_for_store(uri: str) -> None:
    """Wait for the background opening that :func:`preflight` started, if any."""
    thread = _opening.pop(uri, None)
    if thread is not None:
        thread.join()


def _check_server(uri: str, source: str) -> None:
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=PREFLIGHT_TIMEOUT) as response:
            if response.status == 200:
                return
            reason = f"HTTP {response.status} from {url}"
    except urllib.error.HTTPError as exc:
        reason = f"HTTP {exc.code} from {url}"
    except (urllib.error.URLError, OSError) as exc:
        reason = str(getattr(exc, "reason", exc))
    raise TrackingError(
        f"{source}: field `tracking.uri` is {uri!r}, but no MLflow tracking server answers "
        f"there ({reason}). Start one (e.g. `mlflow server --host 127.0.0.1 --port 5000`), "
        "correct `tracking.uri` (or `--tracking-uri`), or remove it to log into the embedded "
        "SQLite store under `storage`. No trial was started."
    )


def _check_sqlite_folder(uri: str, spec: SweepSpec, source: str) -> None:
    folder = os.path.dirname(uri[len("sqlite:///") :]) or "."
    try:
        os.makedirs(folder, exist_ok=True)
        writable = os.access(folder, os.W_OK)
    except OSError:
        writable = False
    if not writable:
        field = "tracking.uri" if spec.tracking.uri else "storage"
        value = spec.tracking.uri if spec.tracking.uri else spec.storage
        raise TrackingError(
            f"{source}: field `{field}` is {value!r}, but the MLflow store's folder {folder} "
            "cannot be written. Choose a writable folder. No trial was started."
        )


def open_experiment(client: Any, spec: SweepSpec, paths: SweepPaths, source: str) -> str:
    """The id of the sweep's experiment, created if needed; errors become TrackingError."""
    from mlflow.exceptions import MlflowException

    name = experiment_name(spec)
    uri = tracking_uri(spec, paths)
    # The embedded store has no server to choose an artifact root, and MLflow's fallback is
    # ./mlruns under whatever folder the sweep was started from; keep artifacts by the store.
    location = f"{paths.embedded_artifact_root}/{name}" if spec.tracking.uri is None else None
    _quiet_store_logs()
    try:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            try:
                return str(client.create_experiment(name, artifact_location=location))
            except MlflowException:
                # Another sweep created it in the meantime.
                experiment = client.get_experiment_by_name(name)
                if experiment is None:
                    raise
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        return str(experiment.experiment_id)
    except MlflowException as exc:
        message = str(exc).splitlines()[0][:400]
        raise TrackingError(
            f"{source}: MLflow at `tracking.uri` {uri!r} refused to open experiment {name!r} "
            f"({message}). Check the server and its permissions, or choose another "
            "`tracking.experiment`. No trial was started."
        ) from None


def _quiet_store_logs() -> None:
    # Creating the SQLite store runs its schema migrations, which log a dozen INFO lines
    # through alembic; they say nothing a sweep's user can act on.
    for name in ("alembic", "mlflow.store.db.utils"):
        logging.getLogger(name).setLevel(logging.WARNING)
