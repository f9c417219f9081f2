"""``<storage>/<name>/mlflow_runs.json``: which MLflow run belongs to which trial.

Ray's ``MLflowLoggerCallback`` keeps run ids in memory only, so after a driver crash its
runs stay RUNNING forever and a restored sweep opens new ones. We write every run id to
disk the moment MLflow has created it, so a resumed sweep reopens the same parent and
child runs (and the same ``t007`` numbering), and a crashed sweep's runs can be found
and closed. Layout::

    {"tracking_uri": "...", "experiment_id": "1", "parent": "<run id>",
     "trials": {"<ray trial id>": "<run id>", ...}, "indices": {"<ray trial id>": 7, ...}}

The file is replaced atomically (temp file + rename), so a kill never truncates it.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweeps.store.atomic import write_atomically

RUNS_FILE = "mlflow_runs.json"


@dataclass
class RunsFile:
    path: Path
    tracking_uri: str
    experiment_id: str | None = None
    parent: str | None = None
    trials: dict[str, str] = field(default_factory=dict)
    indices: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(cls, directory: Path, tracking_uri: str) -> RunsFile:
        """The sweep's run ids, or an empty record when there are none for ``tracking_uri``.

        Run ids recorded against another tracking URI mean nothing to this one, so they
        are not reused (the sweep then opens fresh runs there).
        """
        path = Path(directory) / RUNS_FILE
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            return cls(path, tracking_uri)
        if not isinstance(data, dict) or data.get("tracking_uri") != tracking_uri:
            return cls(path, tracking_uri)
        return cls(
            path,
            tracking_uri,
            experiment_id=data.get("experiment_id"),
            parent=data.get("parent"),
            trials={str(k): str(v) for k, v in (data.get("trials") or {}).items()},
            indices={str(k): int(v) for k, v in (data.get("indices") or {}).items()},
        )

    def record(self, key: str, run_id: str) -> None:
        """Note the run of ``key`` (``"parent"`` or a trial id) and save at once."""
        with self._lock:
            if key == "parent":
                self.parent = run_id
            else:
                self.trials[key] = run_id
            self._save_locked()

    def note_index(self, trial_id: str, index: int) -> None:
        """Note a trial's ``t007`` number; saved with its run id."""
        with self._lock:
            self.indices[trial_id] = index

    def save(self) -> None:
        with self._lock:
            self._save_locked()

    def _save_locked(self) -> None:
        data = {
            "tracking_uri": self.tracking_uri,
            "experiment_id": self.experiment_id,
            "parent": self.parent,
            "trials": self.trials,
            "indices": self.indices,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, json.dumps(data, indent=2))
