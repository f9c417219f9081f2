"""A trial's folders and checkpoints in the sweep's Ray folder (``<name>/ray/``), and their space.

Ray Tune names a trial's folder ``<trainable>_<trial id>_<index>_<config>_<date>`` and
its checkpoints ``checkpoint_000012`` inside it. A trial restarted by a resumed sweep may
get a second folder; its checkpoints there continue the numbering
(:func:`sweeps.ray_backend.snapshot.orphan_trial_json`).

**One rule for "the latest checkpoint"** (issue 25: the catalog took the highest index,
this module the newest folder's): the checkpoint folder with the highest index among all
the trial's folders, whatever their times (a copy or a restore changes mtimes, not indices).

**What is kept** (``checkpoint`` in the spec): while a trial runs, Ray keeps its newest
``keep`` checkpoints. Once it has ended (Ray never restarts an ended trial, and ``sweep
resume`` restarts only unfinished ones) only the best trial's last checkpoint is of use
(``sweep best``, MLflow's model): :func:`prune_ended_trial` removes the rest, and the
pruned trials' are kept only with ``keep_pruned: true``.
"""

from __future__ import annotations

import glob
import re
import shutil
from pathlib import Path

_CHECKPOINT_NAME = re.compile(r"checkpoint_(\d+)")


def trial_folders(ray_directory: Path, trial_id: str) -> list[Path]:
    """Every folder Ray made for ``trial_id`` (one, or more after a resume)."""
    return [Path(p) for p in glob.glob(str(ray_directory / f"*_{glob.escape(trial_id)}_*")) if Path(p).is_dir()]


def trial_folder(ray_directory: Path, trial_id: str) -> Path | None:
    """The trial's newest folder (where Ray writes for it now: its error file, its next
    checkpoint), or None when Ray never made one."""
    folders = trial_folders(ray_directory, trial_id)
    return max(folders, key=lambda p: p.stat().st_mtime) if folders else None


def trial_checkpoints(ray_directory: Path, trial_id: str) -> list[tuple[int, Path]]:
    """The trial's checkpoint folders across all its folders, by index, oldest first."""
    found = []
    for folder in trial_folders(ray_directory, trial_id):
        for entry in folder.iterdir():
            match = _CHECKPOINT_NAME.fullmatch(entry.name)
            if match and entry.is_dir():
                found.append((int(match.group(1)), entry))
    return sorted(found, key=lambda item: (item[0], str(item[1])))


def latest_checkpoint(ray_directory: Path, trial_id: str) -> Path | None:
    """The trial's latest checkpoint (the highest index), or None."""
    checkpoints = trial_checkpoints(ray_directory, trial_id)
    return checkpoints[-1][1] if checkpoints else None


def checkpoint_path(ray_directory: Path, trial_id: str, checkpoint_dir_name: str | None) -> str | None:
    """The folder of ``trial_id``'s checkpoint ``checkpoint_dir_name``, if it was fully written."""
    folder = trial_folder(ray_directory, trial_id)
    if folder is None or not checkpoint_dir_name or not (folder / checkpoint_dir_name).is_dir():
        return None
    return str(folder / checkpoint_dir_name)


def last_checkpoint_index(folder: Path) -> int:
    """The index of the newest ``checkpoint_NNNNNN`` in a trial folder (-1 for none)."""
    indices = [int(m.group(1)) for p in folder.iterdir() if (m := _CHECKPOINT_NAME.fullmatch(p.name))]
    return max(indices, default=-1)


def prune_ended_trial(ray_directory: Path, trial_id: str, *, keep_last: bool) -> int:
    """Remove an ended trial's checkpoints, all of them or all but its last; returns bytes freed."""
    checkpoints = trial_checkpoints(ray_directory, trial_id)
    doomed = checkpoints[:-1] if keep_last else checkpoints
    freed = 0
    for _, folder in doomed:
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


def checkpoint_bytes(ray_directory: Path) -> tuple[int, int, int]:
    """Every checkpoint under the sweep's Ray folder: (count, bytes in all, bytes of the largest)."""
    count = total = largest = 0
    for entry in ray_directory.glob("*/checkpoint_*"):
        if entry.is_dir() and _CHECKPOINT_NAME.fullmatch(entry.name):
            size = folder_bytes(entry)
            count, total, largest = count + 1, total + size, max(largest, size)
    return count, total, largest
