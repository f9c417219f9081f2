"""The kill test: `sweep run` in its own process, `kill -9` once trials are done, `sweep resume`.

Real processes throughout (the driver, its Ray, `sweep resume` and its Ray), because a
SIGKILL is the point: nothing gets to clean up. After the resume, the sweep must hold
exactly ``num_samples`` finished Optuna trials with no config twice, exactly as many
MLflow child runs under one parent with none RUNNING, each run's steps exactly the
iterations the trial's schedule reports (none twice, none missing), and a best value at
least as good as before the kill.

Each case writes its figures (trials rerun, time lost) to test-artifacts/.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from sweeps.iterations import TrialShape
from sweeps.plan.planner import plan_spec
from sweeps.spec.loading import load_spec
from sweeps.training.context import LocalContext
from tests.conftest import REPO, small_spec
from tests.runner.integrity import check_sweep_integrity, finished_study_values, finished_trials
from tests.runner.test_failures import BEHAVING
from tests.runner.test_report_batching import assert_every_report_arrived_once

NUM_SAMPLES = 20
ARTIFACTS = REPO / "test-artifacts"


def tiny_spec(storage: Path) -> dict[str, Any]:
    """20 digits trials of 1–3 epochs at batch size 64 or 128 (10–69 iterations each)."""
    return small_spec(name="tiny", storage=str(storage), num_samples=NUM_SAMPLES, seed=7)


def batched_spec(storage: Path) -> dict[str, Any]:
    """20 hand-written trials that report every iteration (40 or 80 each, a checkpoint per
    epoch), so most reports are held in the workers when the driver is killed; in two
    Hyperband brackets (rungs at 10, 20, 40 and at 20, 40), whose draws must survive the kill."""
    return small_spec(
        name="tiny",
        storage=str(storage),
        num_samples=NUM_SAMPLES,
        seed=7,
        trainable=BEHAVING,
        trainable_args={"report_every": 1, "iteration_seconds": 0.01},
        search_space={
            "batch_size": 25,
            "epochs": {"type": "int", "low": 1, "high": 2},
            "learning_rate": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
        },
        scheduler={"type": "asha", "grace_period": 10, "reduction_factor": 2, "brackets": 2},
    )


WORKLOADS = {"digits": tiny_spec, "batched": batched_spec}


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL whatever the killed driver left (its Ray), all started by this test."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.mark.slow
@pytest.mark.parametrize("workload, kill_after", [("digits", 5), ("digits", 12), ("batched", 8)])
def test_sigkill_then_resume_loses_and_duplicates_nothing(
    tmp_path: Path, workload: str, kill_after: int
) -> None:
    storage = tmp_path / "results"
    spec_path = tmp_path / "tiny.yaml"
    spec_path.write_text(yaml.safe_dump(WORKLOADS[workload](storage), sort_keys=False))
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=str(REPO))
    command = [sys.executable, "-m", "sweeps"]
    database = storage / "tiny" / "optuna.db"

    started = time.monotonic()
    driver = subprocess.Popen(
        [*command, "run", str(spec_path), "--json"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "run.err").open("wb"),
        start_new_session=True,
    )
    try:
        while finished_trials(database) < kill_after:
            assert driver.poll() is None, (tmp_path / "run.err").read_text()[-3000:]
            assert time.monotonic() - started < 240, "the sweep did not reach the kill point"
            time.sleep(0.05)
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        killed_at = time.monotonic() - started
    finally:
        kill_group(driver)
    before = finished_study_values(storage, "tiny")
    assert before["states"].get("RUNNING", 0) or sum(before["states"].values()) < NUM_SAMPLES

    resume_started = time.monotonic()
    resumed = subprocess.run(
        [*command, "resume", "tiny", "--storage", str(storage), "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        start_new_session=True,
    )
    resume_seconds = time.monotonic() - resume_started
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads(resumed.stdout.strip().splitlines()[-1])

    figures = check_sweep_integrity(storage, "tiny", NUM_SAMPLES, "val_accuracy")
    assert sum(summary["trials"].values()) == NUM_SAMPLES, summary["trials"]
    assert figures["best"] >= (before["best"] or 0.0)
    assert summary["best"]["value"] >= (before["best"] or 0.0)
    if workload == "batched":  # every iteration once in the journal, MLflow and Optuna
        assert_every_report_arrived_once(storage, "tiny", NUM_SAMPLES, report_every=1)
        _assert_brackets_survived_the_kill(spec_path, storage)
    else:
        _assert_each_trial_reported_its_schedule(spec_path, storage)

    notes = " ".join(resumed.stderr.split())[:420]  # the "resume:" notes come first
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"kill_test_{workload}_after_{kill_after}.json").write_text(
        json.dumps(
            {
                "kill_after_finished_trials": kill_after,
                "study_at_kill": before["states"],
                "driver_killed_after_s": round(killed_at, 1),
                "resume_wall_s": round(resume_seconds, 1),
                "resume_ray_start_s": summary.get("start_seconds"),
                "resume_notes": notes,
                "best_before": before["best"],
                "best_after": figures["best"],
            },
            indent=2,
        )
    )


def _assert_each_trial_reported_its_schedule(spec_path: Path, storage: Path) -> None:
    """The journal of every trial is exactly its report schedule up to where it stopped."""
    import optuna

    from sweeps.store.journal import read_journal

    loaded = load_spec(spec_path, [f"storage={storage}"])
    _, plan = plan_spec(loaded)
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{storage / 'tiny' / 'optuna.db'}")
    configs = {t.user_attrs["backend_trial_id"]: t.params for t in study.get_trials()}
    for trial_id, results in read_journal(storage / "tiny" / "results.jsonl").items():
        config = configs[trial_id]
        shape = TrialShape(
            plan.dataset_size, int(config["batch_size"]), int(config["epochs"]), plan.drop_last
        )
        milestones = {shape.first_iteration_reaching(m, loaded.spec.budget_unit) for m in plan.milestones()}
        schedule = LocalContext(
            shape, "val_accuracy", report_iterations=frozenset(i for i in milestones if i)
        ).report_iterations
        expected = sorted(i for i in schedule if i <= int(results[-1]["iteration"]))
        assert [int(r["iteration"]) for r in results] == expected, (trial_id, results)


def _assert_brackets_survived_the_kill(spec_path: Path, storage: Path) -> None:
    """Each trial kept the bracket it was drawn into before the kill: the study, every journal
    line (one per start, before and after the kill) and its MLflow run agree; and ASHA judged
    the whole sweep, across the kill, as one scheduler would have: replaying the journal in
    order, each trial in its recorded bracket, stops each pruned trial at the rung, value and
    cut-off the study recorded for it. (A resume usually draws each trial's bracket again the
    same, seed and position being the same: that the record wins over a draw is checked in
    tests/ray_backend/test_scheduler.py.)"""
    import optuna
    from mlflow.tracking import MlflowClient

    from sweeps.search.asha import STOP, asha_rungs_for
    from sweeps.store.study_records import BACKEND_TRIAL_ID_ATTR, BRACKET_ATTR, STOPPED_ATTR

    loaded = load_spec(spec_path, [f"storage={storage}"])
    _, plan = plan_spec(loaded)
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{storage / 'tiny' / 'optuna.db'}")
    trials = {t.user_attrs[BACKEND_TRIAL_ID_ATTR]: t for t in study.get_trials()}
    brackets = {trial_id: t.user_attrs[BRACKET_ATTR] for trial_id, t in trials.items()}
    assert len(brackets) == NUM_SAMPLES and set(brackets.values()) == {0, 1}, brackets

    lines = [json.loads(line) for line in (storage / "tiny" / "results.jsonl").read_text().splitlines()]
    for line in lines:
        if "bracket" in line.get("schedule", {}):
            assert line["schedule"]["bracket"] == brackets[line["trial_id"]], line

    client = MlflowClient(f"sqlite:///{storage / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny")
    runs = client.search_runs([experiment.experiment_id], "tags.`sweep.role` = 'trial'", max_results=1000)
    assert {r.data.tags["sweep.trial_id"]: int(r.data.tags["sweep.bracket"]) for r in runs} == brackets

    replayed = asha_rungs_for(loaded.spec, plan)
    assert replayed is not None
    for trial_id, bracket in brackets.items():
        replayed.assign(trial_id, bracket)
    decisions = {}
    for line in lines:
        result = line.get("result", {})
        if "val_accuracy" in result and not result.get("diverged"):
            decisions[line["trial_id"]] = replayed.judge(
                line["trial_id"], result["iteration"], result["val_accuracy"]
            )
    pruned = [trial_id for trial_id, t in trials.items() if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned, "no trial was pruned: the replay checks nothing"
    for trial_id in pruned:
        decision = decisions[trial_id]  # its last result: the one ASHA stopped it on
        assert decision.action == STOP, trial_id
        assert decision.explanation() == pytest.approx(trials[trial_id].user_attrs[STOPPED_ATTR]), trial_id
