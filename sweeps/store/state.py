"""A sweep's own state on disk: ``<storage>/<name>/``.

Layout::

    <storage>/mlflow.db          embedded MLflow store shared by the sweeps of this folder
    <storage>/<name>/sweep.json  what the sweep was given and how it stands
    <storage>/<name>/optuna.db   the Optuna study (study name = sweep name)
    <storage>/<name>/ray/        Ray Tune's experiment folder (trials, checkpoints)

``sweep.json`` is written atomically (temp file + rename) so a killed driver never leaves
a truncated file behind. Its ``state`` field changes only through
:func:`sweeps.store.lifecycle.transition`, the state machine.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweeps.errors import StateError
from sweeps.store.atomic import write_atomically

STATE_FILE = "sweep.json"
STUDY_FILE = "optuna.db"
RAY_FOLDER = "ray"
#: Written by `sweep stop` (or a signal) and polled by the driver and every running trial.
STOP_REQUEST_FILE = "stop-requested"


@dataclass(frozen=True)
class SweepPaths:
    storage: Path
    name: str

    @property
    def directory(self) -> Path:
        return self.storage / self.name

    @property
    def state_file(self) -> Path:
        return self.directory / STATE_FILE

    @property
    def study_file(self) -> Path:
        return self.directory / STUDY_FILE

    @property
    def optuna_url(self) -> str:
        return f"sqlite:///{self.study_file}"

    @property
    def ray_directory(self) -> Path:
        return self.directory / RAY_FOLDER

    @property
    def trials_directory(self) -> Path:
        """``<sweep>/trials/``: one folder per trial id, with what the trial printed."""
        return self.directory / "trials"

    @property
    def stop_request_file(self) -> Path:
        return self.directory / STOP_REQUEST_FILE

    @property
    def embedded_tracking_uri(self) -> str:
        return f"sqlite:///{self.storage / 'mlflow.db'}"

    @property
    def embedded_artifact_root(self) -> str:
        return (self.storage / "mlartifacts").as_uri()

    def exists(self) -> bool:
        return self.state_file.exists()


def is_embedded_tracking_uri(uri: str) -> bool:
    """Whether ``uri`` is a storage folder's embedded store, ``sqlite:///<storage>/mlflow.db``,
    wherever that folder was when the URI was recorded."""
    return uri.startswith("sqlite:///") and uri.endswith("/mlflow.db")


def sweep_paths(storage: str | Path, name: str) -> SweepPaths:
    return SweepPaths(Path(storage).expanduser().resolve(), name)


def write_state(paths: SweepPaths, state: dict[str, Any]) -> None:
    """Write the whole record. In the package only :mod:`sweeps.store.lifecycle` calls it (its
    ``transition`` is the one way a state changes); tests use it to build a sweep folder by hand."""
    paths.directory.mkdir(parents=True, exist_ok=True)
    write_atomically(paths.state_file, json.dumps(state, indent=2, default=str))


def read_state(paths: SweepPaths) -> dict[str, Any]:
    if not paths.state_file.exists():
        raise StateError(
            f"{paths.directory}: no sweep named `{paths.name}` under storage {paths.storage}. "
            "Run `sweep list --storage PATH` to see the sweeps there."
        )
    try:
        state = json.loads(paths.state_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StateError(
            f"{paths.state_file}: the sweep's state file is corrupt or truncated ({exc}). "
            "Restore it from a backup, or start the sweep again with `sweep run ... --overwrite`."
        ) from None
    if not isinstance(state, dict) or "spec" not in state:
        raise StateError(
            f"{paths.state_file}: the sweep's state file lacks its spec. Restore it from a "
            "backup, or start the sweep again with `sweep run ... --overwrite`."
        )
    return state


def utc_now() -> str:
    """The time, as sweep.json records it (``started_at``, ``stopped_at``...): UTC, to the second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
