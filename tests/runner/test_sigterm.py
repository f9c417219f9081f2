"""SIGTERM to `sweep run`: what Slurm, Kubernetes, `ray job stop`, systemd and `timeout` send.

Real processes throughout: `sweep run` with its own embedded Ray, a real SIGTERM to the
driver's pid once a trial has reported (the result journal has a line), then `sweep
resume`. Without the fix the driver dies by SIGABRT (exit 134) from Ray's C++ core
worker, with a "*** SIGTERM received" stack dump, and the sweep is left `running`.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from sweeps.store.state import read_state, sweep_paths
from tests.conftest import REPO, small_spec
from tests.runner.integrity import check_sweep_integrity

pytestmark = pytest.mark.slow

TRAINABLE = f"{Path(__file__).with_name('behaving_trainable.py')}:train"
HANGING = f"{Path(__file__).with_name('hanging_trainable.py')}:train"
NUM_SAMPLES = 6
ENV = dict(os.environ, PYTHONPATH=str(REPO), RAY_USAGE_STATS_ENABLED="0")


def write_spec(tmp_path: Path, trainable: str, trainable_args: dict[str, Any]) -> Path:
    spec = small_spec(
        name="term",
        storage=str(tmp_path / "results"),
        trainable=trainable,
        num_samples=NUM_SAMPLES,
        seed=5,
        trainable_args=trainable_args,
        search_space={
            "batch_size": 100,
            "epochs": {"type": "int", "low": 2, "high": 3},
            "learning_rate": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
        },
        scheduler={"type": "none"},
    )
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def start_and_wait_for_a_report(tmp_path: Path, spec: Path) -> subprocess.Popen[str]:
    driver = subprocess.Popen(
        [sys.executable, "-m", "sweeps", "run", str(spec)],
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    journal = tmp_path / "results" / "term" / "results.jsonl"
    deadline = time.monotonic() + 180
    while not (journal.exists() and journal.read_text().strip()):
        assert driver.poll() is None, driver.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no trial reported"
        time.sleep(0.05)
    return driver


def finish(driver: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        return driver.communicate(timeout=120)
    finally:
        try:
            os.killpg(driver.pid, signal.SIGKILL)  # whatever of the driver's Ray is left
        except ProcessLookupError:
            pass


def resume_and_check(tmp_path: Path) -> dict[str, Any]:
    storage = tmp_path / "results"
    resumed = subprocess.run(
        [sys.executable, "-m", "sweeps", "resume", "term", "--storage", str(storage), "--json"],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
        start_new_session=True,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return check_sweep_integrity(storage, "term", NUM_SAMPLES, "val_accuracy")


def mlflow_statuses(storage: Path) -> dict[str, str]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{storage / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("term").experiment_id])
    return {r.info.run_id: r.info.status for r in runs}


@pytest.mark.parametrize("to", ["pid", "group"])
def test_sigterm_stops_gracefully_exits_143_and_the_sweep_resumes(tmp_path: Path, to: str) -> None:
    # "group" is what bash's `kill %1` and `kill -TERM -PGID` send: every process of the
    # driver's group. The embedded Ray's processes are in groups of their own, so only the
    # driver gets it; before, the GCS died with it, the driver hung 60 s and exited 1.
    # 20-30 iterations a trial at 0.05 s each: trials are running when the signal comes.
    spec = write_spec(tmp_path, TRAINABLE, {"iteration_seconds": 0.05})
    driver = start_and_wait_for_a_report(tmp_path, spec)
    signalled = time.monotonic()
    if to == "group":
        os.killpg(driver.pid, signal.SIGTERM)  # a session leader: its pid is the group's id
    else:
        driver.send_signal(signal.SIGTERM)
    out, err = finish(driver)
    stop_seconds = time.monotonic() - signalled
    assert driver.returncode == 143, err[-3000:]
    assert stop_seconds < 30, f"{stop_seconds:.1f} s from SIGTERM to exit"
    assert "SIGTERM received" not in err  # Ray's C++ failure-signal dump
    storage = tmp_path / "results"
    assert f"sweep resume term --storage {storage}" in " ".join((out + err).split())
    assert "Stopping (SIGTERM)" in err
    assert read_state(sweep_paths(storage, "term"))["state"] == "stopped"
    statuses = mlflow_statuses(storage)
    assert "RUNNING" not in statuses.values() and "KILLED" in statuses.values(), statuses
    figures = resume_and_check(tmp_path)
    print(f"SIGTERM to exit: {stop_seconds:.1f} s; after resume {figures}")


def test_a_second_sigterm_stops_at_once_and_the_sweep_still_resumes(tmp_path: Path) -> None:
    # Trials that hang after their first report never save the stop checkpoint, so the
    # graceful stop is still waiting (30 s) when the second SIGTERM comes.
    release = tmp_path / "release"
    spec = write_spec(tmp_path, trainable=HANGING, trainable_args={"release_file": str(release)})
    driver = start_and_wait_for_a_report(tmp_path, spec)
    driver.send_signal(signal.SIGTERM)
    time.sleep(6.0)  # the waiting graceful stop says what it waits for every 5 s
    driver.send_signal(signal.SIGTERM)
    signalled = time.monotonic()
    _, err = finish(driver)
    stop_seconds = time.monotonic() - signalled
    assert driver.returncode == 143, err[-3000:]
    storage = tmp_path / "results"
    # Not 30 s of silence: which trials it waits for, where they are, how long it will wait.
    assert re.search(
        r"Stopping \(SIGTERM\): waiting for \d running trial\(s\) to save a checkpoint: "
        r"\w+ \(iteration \d+, last report \d+ s ago\).*Stopping without them in \d+ s",
        err,
    ), err[-3000:]
    assert "stopped at once" in err and f"sweep resume term --storage {storage}" in " ".join(err.split())
    assert read_state(sweep_paths(storage, "term"))["state"] == "interrupted"
    assert "RUNNING" not in mlflow_statuses(storage).values()
    release.write_text("")  # the resumed trials go on past their first report
    resume_and_check(tmp_path)
    print(f"second SIGTERM to exit: {stop_seconds:.1f} s")
