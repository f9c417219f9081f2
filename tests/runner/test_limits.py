"""`limits` at run time: no new trial once a limit is reached, drained or stopped, resumed
with what was spent.

The fast tests run on the simulated backend; one real Ray sweep per `on_exhausted` checks
the Ray path (Tune's searcher says FINISHED; a stop goes through the graceful stop).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from sweeps.backend.simulated import SimulatedBackend
from sweeps.runner.resume import prepare_resume
from sweeps.runner.runner import RunOptions, run_sweep
from sweeps.spec.loading import load_spec
from sweeps.store.state import read_state, sweep_paths
from tests.conftest import small_spec


def spec_file(tmp_path: Path, **changes: object) -> Path:
    spec = small_spec(
        **{"num_samples": 20, "storage": str(tmp_path / "results"), "tracking": {"enabled": False}, **changes}
    )
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_no_trial_starts_once_max_iterations_is_spent_and_a_resume_counts_it(tmp_path: Path) -> None:
    path = spec_file(tmp_path, limits={"max_iterations": 300})
    summary = run_sweep(load_spec(path, []), RunOptions(live=False, backend=SimulatedBackend()))
    ran = sum(summary.trials.values())
    assert 0 < ran < 20
    assert summary.limit is not None and summary.limit.startswith("limits.max_iterations")
    # Trials run one at a time here: the limit is passed only by the trial that crossed it.
    last_trial = summary.trial_records[-1]["iterations"]
    assert 300 <= summary.iterations_used < 300 + last_trial + 1
    assert read_state(sweep_paths(tmp_path / "results", "tiny"))["state"] == "finished"

    # Raised on resume: the sweep goes on from what it spent, not from zero.
    loaded, resumption = prepare_resume(
        tmp_path / "results", "tiny", ["limits.max_iterations=400"], backend=SimulatedBackend()
    )
    resumed = run_sweep(loaded, RunOptions(live=False, resume=resumption, backend=SimulatedBackend()))
    assert ran < sum(resumed.trials.values()) < 20
    assert resumed.limit is not None
    assert 400 <= resumed.iterations_used < 400 + max(r["iterations"] for r in resumed.trial_records) + 1


def test_without_limits_every_trial_runs(tmp_path: Path) -> None:
    summary = run_sweep(
        load_spec(spec_file(tmp_path), []), RunOptions(live=False, backend=SimulatedBackend())
    )
    assert sum(summary.trials.values()) == 20 and summary.limit is None


def run_cli(spec: Path) -> tuple[int, dict[str, object], str]:
    done = subprocess.run(
        [sys.executable, "-m", "sweeps", "run", str(spec), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return done.returncode, json.loads(lines[-1]) if lines else {}, done.stderr


def test_a_real_sweep_drains_at_its_limit_and_exits_0(tmp_path: Path) -> None:
    # Tune asks for up to max(2, concurrency) pending trials ahead of the running ones, so
    # trials created before the limit is reached may still run (drain): the limit is set
    # at about two trials' samples, far below what 16 trials would train, so that however
    # the trials interleave the sweep ends with fewer than 16.
    code, summary, stderr = run_cli(spec_file(tmp_path, num_samples=16, limits={"max_samples": 2500}))
    assert code == 0, stderr
    trials = summary["trials"]
    assert isinstance(trials, dict) and sum(trials.values()) <= 8
    assert str(summary["limit"]).startswith("limits.max_samples")
    assert summary["stopped"] is None
    assert read_state(sweep_paths(tmp_path / "results", "tiny"))["state"] == "finished"


def test_a_real_sweep_stopped_at_its_limit_is_resumable_and_exits_0(tmp_path: Path) -> None:
    path = spec_file(tmp_path, num_samples=12, limits={"max_time": 1, "on_exhausted": "stop"})
    code, summary, stderr = run_cli(path)
    assert code == 0, stderr
    assert str(summary["limit"]).startswith("limits.max_time") and summary["stopped"]
    state = read_state(sweep_paths(tmp_path / "results", "tiny"))
    assert state["state"] == "stopped" and state["spent_seconds"] >= 1
    assert "Raise the limit and continue with: sweep resume tiny" in stderr
