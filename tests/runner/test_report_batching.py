"""Report batching end to end (real Ray, real MLflow, real Optuna study): every report a
trial makes arrives exactly once in the journal, MLflow and Optuna, though most of them
cross to the driver in batches; ASHA still decides at the exact milestone iteration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from ray.tune import Callback

from sweeps.iterations import TrialShape
from sweeps.ray_backend import RayBackend
from sweeps.runner.runner import RunOptions, run_sweep
from sweeps.spec.loading import load_spec
from sweeps.store.journal import read_journal
from sweeps.training.batching import points_in
from tests.runner.integrity import check_sweep_integrity
from tests.runner.test_failures import behaving_spec, study_trials


class CrossingCounter(Callback):
    """Counts the results that crossed to the driver and the reports they delivered."""

    def __init__(self) -> None:
        self.crossed = 0
        self.delivered = 0

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        self.crossed += 1
        self.delivered += len(points_in(result))


def run_counted(folder: Path, spec: dict[str, Any]) -> tuple[Any, Any, CrossingCounter]:
    path = folder / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    loaded = load_spec(path, [])
    counter = CrossingCounter()
    summary = run_sweep(loaded, RunOptions(RayBackend(callbacks=[counter]), live=False, overwrite=True))
    return loaded, summary, counter


def assert_every_report_arrived_once(
    storage: Path, name: str, num_samples: int, report_every: int
) -> dict[str, Any]:
    """Journal, MLflow and Optuna each hold every report of every trial, once, in order."""
    figures = check_sweep_integrity(storage, name, num_samples, "val_accuracy")  # MLflow steps == journal
    journal = read_journal(storage / name / "results.jsonl")
    trials = {t.user_attrs["backend_trial_id"]: t for t in study_trials(storage, name)}
    for trial_id, results in journal.items():
        iterations = [int(r["iteration"]) for r in results]
        last, total = iterations[-1], int(results[-1]["total_iterations"])
        expected = [i for i in range(1, last + 1) if i % report_every == 0 or i == total]
        assert iterations == expected, (trial_id, iterations)
        assert sorted(trials[trial_id].intermediate_values) == expected, trial_id
    return figures


@pytest.mark.slow
def test_reports_every_iteration_arrive_once_each_in_batches_and_asha_decides_at_its_milestones(
    ray_session: Any,
    tmp_path: Path,
) -> None:
    spec = behaving_spec(
        tmp_path,
        "batched",
        "ok",
        num_samples=8,
        trainable_args={"report_every": 1},
        search_space={
            "batch_size": 25,
            "epochs": 2,  # 40 iterations per epoch, 80 per trial
            "learning_rate": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
        },
        scheduler={"type": "asha", "grace_period": 10, "reduction_factor": 2},
    )
    loaded, summary, counter = run_counted(tmp_path, spec)
    storage = tmp_path / "results"
    assert summary.trials["pruned"] >= 1 and summary.trials["completed"] >= 1, summary.trials
    assert_every_report_arrived_once(storage, "batched", 8, report_every=1)
    # Most reports travelled held: far fewer results crossed than reports were made.
    assert counter.delivered >= sum(r["iterations"] for r in summary.trial_records)
    assert counter.crossed * 4 < counter.delivered, (counter.crossed, counter.delivered)
    # ASHA stopped each pruned trial exactly at a milestone iteration (10, 20, 40).
    from sweeps.plan.planner import plan_spec

    _, plan = plan_spec(loaded)
    shape = TrialShape(plan.dataset_size, 25, 2)
    milestones = {shape.first_iteration_reaching(m, "iterations") for m in plan.milestones()}
    pruned = [r for r in summary.trial_records if r["outcome"] == "pruned"]
    assert pruned and {r["iterations"] for r in pruned} <= milestones, (pruned, milestones)
    # Every-iteration reports land on every milestone. (This hand-written loop never hands
    # its model to ctx, which the summary rightly notes; that is not what is checked here.)
    assert [w for w in summary.warnings if "milestone" in w] == [], summary.warnings


@pytest.mark.slow
def test_a_hand_written_loop_that_misses_the_milestones_is_warned_once(
    ray_session: Any, tmp_path: Path
) -> None:
    spec = behaving_spec(
        tmp_path,
        "misaligned",
        "ok",
        num_samples=2,
        trainable_args={"report_every": 32},
        search_space={
            "batch_size": 10,
            "epochs": 1,  # 100 iterations
            "learning_rate": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
        },
        scheduler={"type": "asha", "grace_period": 20, "reduction_factor": 2},
        checkpoint={"every_epochs": 0},
    )
    _, summary, _ = run_counted(tmp_path, spec)
    milestone_warnings = [
        w for w in summary.warnings if "milestone" in w
    ]  # not the loop's own checkpoint note
    assert len(milestone_warnings) == 1, summary.warnings
    assert (
        "milestone at iteration 20" in milestone_warnings[0] and "ctx.should_report" in milestone_warnings[0]
    )
    assert summary.to_json()["warnings"] == summary.warnings


@pytest.mark.slow
def test_a_trial_whose_worker_dies_mid_batch_loses_and_repeats_nothing(
    ray_session: Any, tmp_path: Path
) -> None:
    attempts = tmp_path / "attempts"
    attempts.mkdir()
    # 1 epoch = 40 iterations, checkpoint at each epoch end; the worker dies at iteration
    # 57 of the first attempt with reports 41-56 held. The retry resumes from iteration
    # 40 and reports 41-80 again: each must be delivered once.
    spec = behaving_spec(
        tmp_path,
        "dying",
        "ok",
        num_samples=2,
        trainable_args={"report_every": 1, "die_once_at": 57, "attempts_dir": str(attempts)},
        search_space={
            "batch_size": 25,
            "epochs": 2,
            "learning_rate": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
        },
        failure={"max_retries": 1, "max_failed_fraction": 1.0},
    )
    _, summary, _ = run_counted(tmp_path, spec)
    assert summary.trials["completed"] == 2, summary.trials
    assert sorted(len(f.read_text().splitlines()) for f in attempts.iterdir()) == [2, 2]  # each died once
    assert_every_report_arrived_once(tmp_path / "results", "dying", 2, report_every=1)
