"""A trial's checkpoints on disk (sweeps/store/checkpoints.py): one rule for "the latest", pruning, space."""

from __future__ import annotations

import os
from pathlib import Path

from sweeps.store.checkpoints import (
    checkpoint_bytes,
    latest_checkpoint,
    prune_ended_trial,
    trial_checkpoints,
    trial_folder,
)


def make_checkpoints(ray: Path, trial_id: str, indices: list[int], folder_index: int = 0, size: int = 100) -> Path:
    folder = ray / f"run_trial_{trial_id}_{folder_index}_batch_size=64_2026-12-04_10-00-0{folder_index}"
    folder.mkdir(parents=True, exist_ok=True)
    for index in indices:
        checkpoint = folder / f"checkpoint_{index:06d}"
        checkpoint.mkdir()
        (checkpoint / "state.pt").write_bytes(b"\0" * size)
    return folder


def test_the_latest_checkpoint_is_the_highest_index_whatever_the_folders_times(tmp_path: Path) -> None:
    """Issue 25: the catalog took the highest index and this module the newest folder; now one rule."""
    first = make_checkpoints(tmp_path, "t1", [1, 2], folder_index=1)
    second = make_checkpoints(tmp_path, "t1", [3, 4], folder_index=2)  # a resumed sweep's second folder
    os.utime(second, (1_000, 1_000))  # a copy or a restore left it looking older
    os.utime(first, (2_000, 2_000))
    assert latest_checkpoint(tmp_path, "t1") == second / "checkpoint_000004"
    assert [index for index, _ in trial_checkpoints(tmp_path, "t1")] == [1, 2, 3, 4]
    assert trial_folder(tmp_path, "t1") == first  # the folder Ray writes to now: the newest
    assert latest_checkpoint(tmp_path, "t2") is None


def test_a_file_named_like_a_checkpoint_and_another_trials_are_not_its_checkpoints(tmp_path: Path) -> None:
    folder = make_checkpoints(tmp_path, "t1", [1])
    (folder / "checkpoint_000099").write_text("a file")
    make_checkpoints(tmp_path, "t10", [50])  # an id that starts with the other's
    assert latest_checkpoint(tmp_path, "t1") == folder / "checkpoint_000001"


def test_pruning_an_ended_trial_keeps_its_last_checkpoint_or_none(tmp_path: Path) -> None:
    make_checkpoints(tmp_path, "best", [1, 2, 3])
    make_checkpoints(tmp_path, "other", [4, 5])
    assert prune_ended_trial(tmp_path, "best", keep_last=True) == 200
    assert [i for i, _ in trial_checkpoints(tmp_path, "best")] == [3]
    assert prune_ended_trial(tmp_path, "other", keep_last=False) == 200
    assert trial_checkpoints(tmp_path, "other") == []
    assert prune_ended_trial(tmp_path, "never-ran", keep_last=False) == 0


def test_the_space_of_every_checkpoint_is_counted(tmp_path: Path) -> None:
    make_checkpoints(tmp_path, "a", [1, 2], size=100)
    make_checkpoints(tmp_path, "b", [1], size=300)
    assert checkpoint_bytes(tmp_path) == (3, 500, 300)
    assert checkpoint_bytes(tmp_path / "missing") == (0, 0, 0)
