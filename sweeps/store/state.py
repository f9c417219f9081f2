"""A sweep's own state on disk: ``<storage>/<name>/``.

Layout::

    <storage>/mlflow.db          embedded MLflow store shared by the sweeps of this folder
    <storage>/<name>/sweep.json  what the sweep was given and how it stands
    <storage>/<name>/optuna.db   the Optuna study (study name = sweep name)
    <storage>/<name>/ray/        Ray Tune's experiment folder (trials, checkpoints)

``sweep.json`` is written atomically (temp file + rename) so a killed driver never leaves
a truncated file behind.
"""

from __future__ import annotations

import json
import os
import socket
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


def sweep_paths(storage: str | Path, name: str) -> SweepPaths:
    return SweepPaths(Path(storage).expanduser().resolve(), name)


def write_state(paths: SweepPaths, state: dict[str, Any]) -> None:
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


def update_state(paths: SweepPaths, **changes: Any) -> dict[str, Any]:
    state = read_state(paths)
    state.update(changes)
    write_state(paths, state)
    return state


def driver_alive(state: dict[str, Any]) -> bool:
    """Whether the driver recorded in ``state`` still runs (only knowable on its host)."""
    pid, host = state.get("driver_pid"), state.get("driver_host")
    if state.get("state") != "running" or not isinstance(pid, int) or host not in (None, socket.gethostname()):
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a recycled pid belongs to some other program
        return b"sweep" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
