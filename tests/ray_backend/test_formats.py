"""Ray's files and result keys (sweeps/ray_backend/formats.py): the one rule for a trial's latest
checkpoint, its error file, and results without Ray's bookkeeping (no Ray started)."""

from __future__ import annotations

import os
from pathlib import Path

from sweeps.ray_backend.formats import RayTrialFiles, without_ray_keys
from sweeps.store.checkpoints import latest_checkpoint
from sweeps.store.journal import journal_entry
from tests.store.test_checkpoints import make_checkpoints


def test_the_latest_checkpoint_is_the_highest_index_where_the_newest_folder_says_otherwise(
    tmp_path: Path,
) -> None:
    """Issue 25: the catalog took the highest index, the store the newest folder's; here they
    disagree (the folder with the older checkpoints was touched last, as pruning one does)."""
    files = RayTrialFiles(tmp_path)
    first = make_checkpoints(tmp_path, "t1", [1, 2], folder_index=1)
    second = make_checkpoints(tmp_path, "t1", [3, 4], folder_index=2)  # a resumed sweep's second folder
    os.utime(second, (1_000, 1_000))
    os.utime(first, (2_000, 2_000))
    assert max(files.folders("t1"), key=lambda p: p.stat().st_mtime) == first  # the old rule's pick
    assert latest_checkpoint(files, "t1") == second / "checkpoint_000004"
    assert [index for index, _ in files.indexed_checkpoints("t1")] == [1, 2, 3, 4]
    # Every use follows it: where the trial goes on, and the index of its next checkpoint
    # (the old rule would have numbered it 3, beside the existing checkpoint_000003).
    assert files.current_folder("t1") == second
    assert files.next_checkpoint_index("t1") == 5
    assert files.checkpoint("t1", "checkpoint_000002") == first / "checkpoint_000002"  # in either folder
    assert files.checkpoint("t1", "checkpoint_000009") is None and files.checkpoint("t1", None) is None
    assert latest_checkpoint(files, "t2") is None and files.next_checkpoint_index("t2") == 0


def test_a_trial_without_checkpoints_goes_on_in_its_newest_folder(tmp_path: Path) -> None:
    files = RayTrialFiles(tmp_path)
    old = make_checkpoints(tmp_path, "t1", [], folder_index=1)
    new = make_checkpoints(tmp_path, "t1", [], folder_index=2)
    os.utime(old, (1_000, 1_000))
    assert files.current_folder("t1") == new and files.current_folder("t9") is None


def test_a_file_named_like_a_checkpoint_and_another_trials_are_not_its_checkpoints(tmp_path: Path) -> None:
    folder = make_checkpoints(tmp_path, "t1", [1])
    (folder / "checkpoint_000099").write_text("a file")
    make_checkpoints(tmp_path, "t10", [50])  # an id that starts with the other's
    files = RayTrialFiles(tmp_path)
    assert latest_checkpoint(files, "t1") == folder / "checkpoint_000001"
    assert sorted(p.name for p in files.every_checkpoint()) == ["checkpoint_000001", "checkpoint_000050"]


def test_the_error_is_the_newest_error_file_of_the_trial(tmp_path: Path) -> None:
    files = RayTrialFiles(tmp_path)
    assert files.error_text("t1") is None
    first = make_checkpoints(tmp_path, "t1", [1], folder_index=1)
    second = make_checkpoints(tmp_path, "t1", [], folder_index=2)  # restarted, failed before a checkpoint
    (first / "error.txt").write_text("Failure # 1\nValueError: first\n")
    (second / "error.txt").write_text("Failure # 2\nValueError: second\n")
    os.utime(first / "error.txt", (1_000, 1_000))
    assert files.error_text("t1") == "Failure # 2\nValueError: second\n"


def test_results_reach_the_listeners_and_the_journal_without_rays_bookkeeping() -> None:
    result = {
        "val_accuracy": 0.9,
        "iteration": 12,
        "epoch": 1.0,
        "done": True,
        "checkpoint_dir_name": "checkpoint_000001",
        "pid": 7,
        "config": {"a": 1},
        "time_this_iter_s": 0.1,
        "training_iteration": 3,
        "node_id": "n",
    }
    shown = without_ray_keys(result)
    assert shown == {
        "val_accuracy": 0.9,
        "iteration": 12,
        "epoch": 1.0,
        "done": True,
        "checkpoint_dir_name": "checkpoint_000001",
        "node_id": "n",
    }
    assert journal_entry(shown) == shown
