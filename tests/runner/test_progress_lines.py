"""Progress in a log: `sweep run` with stdout a pipe prints plain lines as the sweep goes.

A real `sweep run` process whose stdout is a pipe, read line by line as the lines arrive.
Without the fix nothing arrives until the summary at the very end (rich's live view
redraws only on a terminal). With it, each ended trial has a line, a status line comes
every 10 s, and each is flushed, so lines arrive while the process still runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, small_spec

pytestmark = pytest.mark.slow

TRAINABLE = f"{Path(__file__).with_name('behaving_trainable.py')}:train"
NUM_SAMPLES = 10
#: `HH:MM:SS +Ns name: trial ID OUTCOME at iteration N (...) | k/n done: ... | best ... | N iterations`
TRIAL_LINE = re.compile(
    r"^\d\d:\d\d:\d\d \+\d+s lines: trial \w+ (completed|pruned|diverged|failed) at iteration \d+"
    r".* \| \d+/10 done: \d+ completed, \d+ pruned, \d+ diverged, \d+ failed, \d+ running \| "
    r"best val_accuracy \S+.* \| [\d,]+ iterations$"
)
STATUS_LINE = re.compile(
    r"^\d\d:\d\d:\d\d \+\d+s lines: \d+/10 done: .* running \| best val_accuracy .* iterations$"
)


def progress_spec(tmp_path: Path) -> Path:
    # 20-30 iterations of 0.1 s a trial, 10 trials on 2 CPUs: longer than one 10 s period.
    spec = small_spec(
        name="lines",
        storage=str(tmp_path / "results"),
        trainable=TRAINABLE,
        num_samples=NUM_SAMPLES,
        seed=1,
        trainable_args={"iteration_seconds": 0.1},
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


def test_a_piped_stdout_gets_a_flushed_line_per_ended_trial_and_periodic_status(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO), RAY_USAGE_STATS_ENABLED="0")
    driver = subprocess.Popen(
        [sys.executable, "-m", "sweeps", "run", str(progress_spec(tmp_path))],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    arrived: list[tuple[float, str]] = []

    def read() -> None:
        assert driver.stdout is not None
        for line in driver.stdout:
            arrived.append((time.monotonic(), line.rstrip("\n")))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert driver.wait(timeout=300) == 0
        exited = time.monotonic()
        reader.join(timeout=10)
    finally:
        try:
            os.killpg(driver.pid, 9)
        except ProcessLookupError:
            pass
    lines = [line for _, line in arrived]
    # The first line comes at once, before the heavy imports; then each start-up phase, in order.
    assert lines[0].startswith("Sweep lines: starting 10 trials on local Ray ("), lines[:5]
    ray = next(i for i, line in enumerate(lines) if line.startswith("  starting Ray (local, "))
    trainable = next(
        i for i, line in enumerate(lines) if "loading the trainable behaving_trainable.py:train" in line
    )
    first_trials = next(
        i for i, line in enumerate(lines) if line.startswith("  first trials starting, 2 at a time")
    )
    first_trial_ended = next(i for i, line in enumerate(lines) if TRIAL_LINE.match(line))
    assert 0 < ray < trainable < first_trials < first_trial_ended, lines[:10]
    trial_lines = [(t, line) for t, line in arrived if TRIAL_LINE.match(line)]
    assert len(trial_lines) == NUM_SAMPLES, [line for _, line in arrived]
    # Flushed as written: the first ended trial was readable well before the process ended.
    assert exited - trial_lines[0][0] > 2.0, (exited - trial_lines[0][0], arrived)
    assert any(STATUS_LINE.match(line) for _, line in arrived), [line for _, line in arrived]
    assert "10/10 done" in trial_lines[-1][1]
    assert any("Best trial" in line for _, line in arrived)  # the summary still comes last
