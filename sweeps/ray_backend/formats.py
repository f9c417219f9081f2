"""What Ray Tune leaves on disk and adds to results: the one module outside Ray that knows it.

Nothing here imports Ray: the store, the tracker and the CLI read a sweep's files through
:class:`RayTrialFiles` (the :class:`sweeps.store.checkpoints.TrialFiles` of a Ray sweep),
and the listeners see results without Ray's bookkeeping keys (:func:`without_ray_keys`,
applied by :mod:`sweeps.ray_backend.bridge`).

**Ray's names.** Under the sweep's Ray folder (``<sweep>/ray/``) a trial's folder is
``<trainable>_<trial id>_<index>_<config>_<date>``; a trial restarted by a resumed sweep may
get a second one. Its checkpoints are ``checkpoint_000012`` folders inside, numbered by a
counter Ray keeps with the trial (``StorageContext.current_checkpoint_index``) and
restores with it, so a second folder continues the numbering
(:func:`sweeps.ray_backend.snapshot.orphan_trial_json` sets it for a trial Ray's snapshot
missed). A failed trial's traceback is ``error.txt`` in the folder Ray wrote it in.

**One rule for "the latest checkpoint"**: the checkpoint folder with the highest index
among all the trial's folders, whatever the folders' times. The index is what Ray itself
orders checkpoints by; a folder's mtime changes when a checkpoint inside it is written,
but also when one is removed (pruning, Ray's ``num_to_keep``), copied or restored, so
"the newest folder" may hold older checkpoints than another.
"""

from __future__ import annotations

import glob
import re
from pathlib import Path
from typing import Any

from sweeps.store.state import SweepPaths

#: Keys Ray Tune adds to every result, which are its bookkeeping, not what the trainable
#: reported (``ray.tune.result.AUTO_RESULT_KEYS`` and friends). ``done`` (Tune ended the
#: trial at this result) and ``checkpoint_dir_name`` (the result's checkpoint was written)
#: are not among them: they are the backend's answer listeners read (sweeps.store.journal).
RESULT_KEYS = frozenset(
    {
        "training_iteration",
        "time_total_s",
        "time_this_iter_s",
        "time_since_restore",
        "timestamp",
        "date",
        "trial_id",
        "experiment_id",
        "experiment_tag",
        "pid",
        "hostname",
        "node_ip",
        "config",
        "iterations_since_restore",
        "timesteps_since_restore",
        "timesteps_total",
        "episodes_total",
        "should_checkpoint",
        "warmup_time",
    }
)

#: The traceback Tune writes in a failed trial's folder.
ERROR_FILE = "error.txt"

_CHECKPOINT_FOLDER = re.compile(r"checkpoint_(\d+)")


def without_ray_keys(result: dict[str, Any]) -> dict[str, Any]:
    """``result`` without Ray's bookkeeping keys (:data:`RESULT_KEYS`)."""
    return {key: value for key, value in result.items() if key not in RESULT_KEYS}


def checkpoint_index(folder: Path) -> int | None:
    """The index of a folder named as a Ray checkpoint (``checkpoint_000012`` → 12), or None."""
    match = _CHECKPOINT_FOLDER.fullmatch(folder.name)
    return int(match.group(1)) if match else None


class RayTrialFiles:
    """A Ray sweep's trial folders, checkpoints and error files, under its Ray folder."""

    def __init__(self, ray_directory: Path) -> None:
        self.ray_directory = Path(ray_directory)

    def folders(self, trial_id: str) -> list[Path]:
        """Every folder Ray made for ``trial_id`` (one, or more after a resume)."""
        pattern = str(self.ray_directory / f"*_{glob.escape(trial_id)}_*")
        return [Path(p) for p in glob.glob(pattern) if Path(p).is_dir()]

    def indexed_checkpoints(self, trial_id: str) -> list[tuple[int, Path]]:
        """The trial's checkpoint folders across all its folders with their index, oldest first."""
        found = []
        for folder in self.folders(trial_id):
            for entry in folder.iterdir():
                index = checkpoint_index(entry)
                if index is not None and entry.is_dir():
                    found.append((index, entry))
        return sorted(found, key=lambda item: (item[0], str(item[1])))

    def checkpoints(self, trial_id: str) -> list[Path]:
        """The trial's checkpoint folders, oldest first: the last is its latest (the one rule)."""
        return [path for _, path in self.indexed_checkpoints(trial_id)]

    def checkpoint(self, trial_id: str, name: str | None) -> Path | None:
        """The trial's checkpoint folder ``name`` (a result's ``checkpoint_dir_name``), if it was
        written, in whichever of its folders (the numbering continues across them)."""
        if not name or checkpoint_index(Path(name)) is None:
            return None
        found = [folder / name for folder in self.folders(trial_id) if (folder / name).is_dir()]
        # Two only when an older sweep restarted the numbering in a second folder: the newer.
        return max(found, key=lambda p: p.stat().st_mtime) if found else None

    def next_checkpoint_index(self, trial_id: str) -> int:
        """The index Ray must give the trial's next checkpoint: one past its highest (0: none yet)."""
        indexed = self.indexed_checkpoints(trial_id)
        return indexed[-1][0] + 1 if indexed else 0

    def current_folder(self, trial_id: str) -> Path | None:
        """The folder the trial goes on in: its latest checkpoint's, or (none yet) its newest."""
        indexed = self.indexed_checkpoints(trial_id)
        if indexed:
            return indexed[-1][1].parent
        folders = self.folders(trial_id)
        return max(folders, key=lambda p: p.stat().st_mtime) if folders else None

    def every_checkpoint(self) -> list[Path]:
        """Every trial's checkpoint folders under the Ray folder."""
        return [
            entry
            for entry in self.ray_directory.glob("*/checkpoint_*")
            if entry.is_dir() and checkpoint_index(entry) is not None
        ]

    def error_text(self, trial_id: str) -> str | None:
        """The traceback Tune wrote when the trial last failed: the newest of its error files."""
        files = [folder / ERROR_FILE for folder in self.folders(trial_id) if (folder / ERROR_FILE).is_file()]
        if not files:
            return None
        return max(files, key=lambda p: p.stat().st_mtime).read_text(errors="replace")


def ray_trial_files(paths: SweepPaths) -> RayTrialFiles:
    """The trial files of the sweep at ``paths``, run with Ray."""
    return RayTrialFiles(paths.ray_directory)
