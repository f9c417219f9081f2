"""The checkpoints an ended trial keeps (sweeps/runner/checkpoint_pruning.py), driven as a backend drives it.

Trial folders are real folders under a real sweep path; the ledger is the runner's own,
fed the results a backend would deliver. No Ray.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sweeps.backend import TrialError, TrialInfo
from sweeps.ray_backend.formats import RayTrialFiles
from sweeps.runner.checkpoint_pruning import CheckpointPruner
from sweeps.runner.ledger import TrialLedger
from sweeps.spec.models import CheckpointSpec
from sweeps.store.state import sweep_paths
from tests.store.test_checkpoints import make_checkpoints

TOTAL = 30


class Sweep:
    def __init__(self, tmp_path: Path, **settings: bool) -> None:
        self.paths = sweep_paths(tmp_path, "tiny")
        self.ledger = TrialLedger(metric="val_accuracy", mode="max")
        self.pruner = CheckpointPruner(
            self.ledger, RayTrialFiles(self.paths.ray_directory), CheckpointSpec(keep=2, **settings)
        )
        self.listeners = [self.ledger, self.pruner]  # the runner's order: the ledger first

    def run(self, trial_id: str, checkpoints: list[int]) -> None:
        make_checkpoints(self.paths.ray_directory, trial_id, checkpoints)
        for listener in self.listeners:
            listener.trial_started(TrialInfo(trial_id, {}))

    def end(self, trial_id: str, iteration: int, value: float, failed: bool = False) -> None:
        result = {"iteration": iteration, "total_iterations": TOTAL, "val_accuracy": value}
        trial = TrialInfo(trial_id, {}, result)
        for listener in self.listeners:
            listener.trial_reported(trial, [result])
        for listener in self.listeners:
            listener.trial_failed(
                trial, TrialError("RuntimeError: boom")
            ) if failed else listener.trial_completed(trial)

    def kept(self) -> dict[str, list[int]]:
        folders = self.paths.ray_directory.glob("*_*_*")
        ids = sorted({folder.name.split("_")[2] for folder in folders})
        return {
            i: [n for n, _ in RayTrialFiles(self.paths.ray_directory).indexed_checkpoints(i)] for i in ids
        }


def test_as_trials_end_only_the_best_trials_last_checkpoint_is_left(tmp_path: Path) -> None:
    sweep = Sweep(tmp_path)
    for trial_id in ("a", "b", "c", "d"):
        sweep.run(trial_id, [1, 2])
    sweep.end("a", TOTAL, 0.80)
    assert sweep.kept() == {
        "a": [2],
        "b": [1, 2],
        "c": [1, 2],
        "d": [1, 2],
    }  # running trials keep Ray's `keep`
    sweep.end("b", 10, 0.95)  # pruned: a low-fidelity value never beats a completed trial
    sweep.end("c", 4, 0.10, failed=True)
    assert sweep.kept() == {"a": [2], "b": [], "c": [], "d": [1, 2]}
    sweep.end("d", TOTAL, 0.90)  # a better trial: the former best's checkpoint goes
    assert sweep.kept() == {"a": [], "b": [], "c": [], "d": [2]}
    assert sweep.pruner.kept_best == "d" and sweep.pruner.freed_bytes == 700


def test_keep_pruned_keeps_the_pruned_trials_checkpoints(tmp_path: Path) -> None:
    sweep = Sweep(tmp_path, keep_pruned=True)
    for trial_id in ("a", "b"):
        sweep.run(trial_id, [1, 2])
    sweep.end("b", 10, 0.95)  # the best so far (no trial completed): its last is kept either way
    sweep.end("a", TOTAL, 0.80)
    assert sweep.kept() == {"a": [2], "b": [1, 2]}


def test_without_keep_pruned_a_pruned_best_is_replaced_once_a_trial_completes(tmp_path: Path) -> None:
    sweep = Sweep(tmp_path)
    for trial_id in ("a", "b"):
        sweep.run(trial_id, [1, 2])
    sweep.end("b", 10, 0.95)
    assert sweep.kept()["b"] == [2]
    sweep.end("a", TOTAL, 0.80)
    assert sweep.kept() == {"a": [2], "b": []}


@pytest.mark.parametrize("mode", ["max", "min"])
def test_a_resumed_sweeps_best_so_far_is_replaced_by_a_better_trial(tmp_path: Path, mode: str) -> None:
    sweep = Sweep(tmp_path)
    sweep.ledger.mode = mode
    sweep.run("old", [1, 2])
    sweep.end("old", TOTAL, 0.5)
    resumed = CheckpointPruner(
        sweep.ledger, RayTrialFiles(sweep.paths.ray_directory), CheckpointSpec()
    )  # the next run's, same ledger
    sweep.listeners = [sweep.ledger, resumed]
    assert resumed.kept_best == "old"
    sweep.run("new", [3])
    sweep.end("new", TOTAL, 0.9 if mode == "max" else 0.1)
    assert sweep.kept() == {"new": [3], "old": []}


def test_a_trial_being_retried_keeps_its_checkpoints_to_restart_from(tmp_path: Path) -> None:
    sweep = Sweep(tmp_path)
    sweep.run("a", [1, 2])
    sweep.run("flaky", [1, 2])
    sweep.end("a", TOTAL, 0.8)
    flaky = TrialInfo("flaky", {}, {"iteration": 12, "total_iterations": TOTAL, "val_accuracy": 0.5})
    for listener in sweep.listeners:  # as the backend says a worker died and the trial restarts
        listener.trial_raised(flaky, TrialError("RuntimeError: worker died"))
        listener.trial_retried(flaky)
    sweep.pruner.trial_completed(
        TrialInfo("a", {})
    )  # another end (a duplicate) prunes nothing of a running trial
    assert sweep.kept()["flaky"] == [1, 2]
    sweep.end("flaky", TOTAL, 0.9)  # retried to its end: now the best
    assert sweep.kept() == {"a": [], "flaky": [2]}
