"""A sweep's checkpoints (sweeps/store/checkpoints.py): the latest, pruning, space; read through
the backend's TrialFiles (Ray's here; its naming rules are tested in tests/ray_backend/test_formats.py)."""

from __future__ import annotations

from pathlib import Path

from sweeps.ray_backend.formats import RayTrialFiles
from sweeps.store.checkpoints import checkpoint_bytes, latest_checkpoint, prune_ended_trial


def make_checkpoints(
    ray: Path, trial_id: str, indices: list[int], folder_index: int = 0, size: int = 100
) -> Path:
    folder = ray / f"run_trial_{trial_id}_{folder_index}_batch_size=64_2026-12-04_10-00-0{folder_index}"
    folder.mkdir(parents=True, exist_ok=True)
    for index in indices:
        checkpoint = folder / f"checkpoint_{index:06d}"
        checkpoint.mkdir()
        (checkpoint / "state.pt").write_bytes(b"\0" * size)
    return folder


def test_the_latest_checkpoint_is_the_last_the_backend_lists(tmp_path: Path) -> None:
    first = make_checkpoints(tmp_path, "t1", [1, 2], folder_index=1)
    second = make_checkpoints(tmp_path, "t1", [3, 4], folder_index=2)
    files = RayTrialFiles(tmp_path)
    assert files.checkpoints("t1") == [
        first / "checkpoint_000001",
        first / "checkpoint_000002",
        second / "checkpoint_000003",
        second / "checkpoint_000004",
    ]
    assert latest_checkpoint(files, "t1") == second / "checkpoint_000004"
    assert latest_checkpoint(files, "t2") is None


def test_pruning_an_ended_trial_keeps_its_last_checkpoint_or_none(tmp_path: Path) -> None:
    make_checkpoints(tmp_path, "best", [1, 2, 3])
    make_checkpoints(tmp_path, "other", [4, 5])
    files = RayTrialFiles(tmp_path)
    assert prune_ended_trial(files, "best", keep_last=True) == 200
    assert [p.name for p in files.checkpoints("best")] == ["checkpoint_000003"]
    assert prune_ended_trial(files, "other", keep_last=False) == 200
    assert files.checkpoints("other") == []
    assert prune_ended_trial(files, "never-ran", keep_last=False) == 0


def test_the_space_of_every_checkpoint_is_counted(tmp_path: Path) -> None:
    make_checkpoints(tmp_path, "a", [1, 2], size=100)
    make_checkpoints(tmp_path, "b", [1], size=300)
    assert checkpoint_bytes(RayTrialFiles(tmp_path)) == (3, 500, 300)
    assert checkpoint_bytes(RayTrialFiles(tmp_path / "missing")) == (0, 0, 0)
