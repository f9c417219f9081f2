"""A sweep's checkpoints on disk: which is a trial's latest, what is kept, and their space.

Where a backend keeps them, and how it names them, only the backend knows: the store
reads them through a :class:`TrialFiles` (for Ray, :class:`sweeps.ray_backend.formats.RayTrialFiles`,
which also holds the one rule for "the latest checkpoint": the highest index).

**What is kept** (``checkpoint`` in the spec): while a trial runs, the backend keeps its
newest ``keep`` checkpoints. Once it has ended (an ended trial is never restarted, and
``sweep resume`` restarts only unfinished ones) only the best trial's last checkpoint is of
use (``sweep best``, MLflow's model): :func:`prune_ended_trial` removes the rest, and the
pruned trials' are kept only with ``keep_pruned: true``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Protocol


class TrialFiles(Protocol):
    """What a backend left on disk for a sweep's trials."""

    def checkpoints(self, trial_id: str) -> list[Path]:
        """The trial's checkpoint folders, oldest first (the last is its latest)."""

    def every_checkpoint(self) -> list[Path]:
        """Every trial's checkpoint folders."""

    def error_text(self, trial_id: str) -> str | None:
        """The error the backend recorded when the trial last failed, or None."""


class NoTrialFiles:
    """The :class:`TrialFiles` of a backend that keeps none on disk (the simulator)."""

    def checkpoints(self, trial_id: str) -> list[Path]:
        return []

    def every_checkpoint(self) -> list[Path]:
        return []

    def error_text(self, trial_id: str) -> str | None:
        return None


def latest_checkpoint(files: TrialFiles, trial_id: str) -> Path | None:
    """The trial's latest checkpoint folder, or None."""
    checkpoints = files.checkpoints(trial_id)
    return checkpoints[-1] if checkpoints else None


def prune_ended_trial(files: TrialFiles, trial_id: str, *, keep_last: bool) -> int:
    """Remove an ended trial's checkpoints, all of them or all but its last; returns bytes freed."""
    checkpoints = files.checkpoints(trial_id)
    doomed = checkpoints[:-1] if keep_last else checkpoints
    freed = 0
    for folder in doomed:
        freed += folder_bytes(folder)
        shutil.rmtree(folder, ignore_errors=True)
    return freed


def folder_bytes(folder: Path) -> int:
    """Bytes the files under ``folder`` take (0 when it is gone)."""
    total = 0
    for path in folder.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
        except OSError:
            continue
    return total


def checkpoint_bytes(files: TrialFiles) -> tuple[int, int, int]:
    """Every checkpoint of the sweep: (count, bytes in all, bytes of the largest)."""
    count = total = largest = 0
    for folder in files.every_checkpoint():
        size = folder_bytes(folder)
        count, total, largest = count + 1, total + size, max(largest, size)
    return count, total, largest
