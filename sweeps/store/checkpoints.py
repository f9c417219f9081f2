"""Finding a trial's folder and checkpoints in the sweep's Ray folder (``<name>/ray/``).

Ray Tune names a trial's folder ``<trainable>_<trial id>_<index>_<config>_<date>`` and
its checkpoints ``checkpoint_000012`` inside it. A trial restarted by a resumed sweep may
get a second folder; the newest one is the trial's.
"""

from __future__ import annotations

import glob
import re
from pathlib import Path


def checkpoint_path(ray_directory: Path, trial_id: str, checkpoint_dir_name: str | None) -> str | None:
    """The folder of ``trial_id``'s checkpoint ``checkpoint_dir_name``, if it was fully written."""
    folder = trial_folder(ray_directory, trial_id)
    if folder is None or not checkpoint_dir_name or not (folder / checkpoint_dir_name).is_dir():
        return None
    return str(folder / checkpoint_dir_name)


def trial_folder(ray_directory: Path, trial_id: str) -> Path | None:
    """The trial's newest folder, or None when Ray never made one."""
    folders = [Path(p) for p in glob.glob(str(ray_directory / f"*_{trial_id}_*")) if Path(p).is_dir()]
    return max(folders, key=lambda p: p.stat().st_mtime) if folders else None


def last_checkpoint_index(folder: Path) -> int:
    """The index of the newest ``checkpoint_NNNNNN`` in a trial folder (-1 for none)."""
    indices = [int(m.group(1)) for p in folder.iterdir() if (m := re.fullmatch(r"checkpoint_(\d+)", p.name))]
    return max(indices, default=-1)
