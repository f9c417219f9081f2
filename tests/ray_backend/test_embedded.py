"""The embedded Ray starts only what a sweep needs, and Tune's trials land on its prestarted,
preloaded workers (sweeps/ray_backend/embedded.py), checked on a real Ray in a fresh driver."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow

DRIVER = r'''
import json, os, sys, time
import psutil
from sweeps.ray_backend.embedded import RayStarter, trial_actors_on_prestarted_workers, worker_preload_modules

starter = RayStarter(None, worker_preload_modules("digits_mlp")).begin()
starter.wait()
from ray import tune

def processes():
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            out.append((p.pid, " ".join(p.cmdline())))
        except psutil.Error:
            pass
    return out

def idle_workers():
    return [psutil.Process(pid) for pid, command in processes() if command.startswith("ray::IDLE")]

# Until both prestarted workers have registered and finished their preload (their CPU time
# stops growing): on a loaded machine a trial requested earlier gets a fresh worker.
deadline, last = time.monotonic() + 120, None
while time.monotonic() < deadline:
    try:
        now = [sum(p.cpu_times()[:2]) for p in idle_workers()]
    except psutil.Error:
        now = None
    if now and len(now) == 2 and last and len(last) == 2 and max(b - a for a, b in zip(last, now)) < 0.02:
        break
    last = now
    time.sleep(0.5)
before = processes()

def trial(config):
    # What this worker had imported before the trial's own code ran.
    tune.report({"pid": os.getpid(), "torch": "torch" in sys.modules,
                 "trainable": "trainables.digits_mlp" in sys.modules})

with trial_actors_on_prestarted_workers():
    grid = tune.Tuner(trial, tune_config=tune.TuneConfig(num_samples=2, max_concurrent_trials=2, reuse_actors=True),
                      run_config=tune.RunConfig(storage_path=sys.argv[1], verbose=0)).fit()
print(json.dumps({"before": before, "trials": [r.metrics for r in grid], "after": processes()}))
starter.stop()
'''


def test_only_what_a_sweep_needs_starts_and_trials_take_the_preloaded_prestarted_workers(tmp_path: object) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO), RAY_USAGE_STATS_ENABLED="0")
    done = subprocess.run([sys.executable, "-c", DRIVER, str(tmp_path)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    commands = " | ".join(command for _, command in seen["before"])
    assert "gcs_server" in commands and "raylet" in commands, commands
    for unwanted in ("monitor.py", "log_monitor.py", "dashboard/dashboard.py"):
        assert unwanted not in commands, f"the embedded Ray started {unwanted}: {commands}"
    prestarted = {pid for pid, command in seen["before"] if command.startswith("ray::IDLE")}
    assert len(prestarted) == 2, seen["before"]
    trials = seen["trials"]
    assert {t["pid"] for t in trials} <= prestarted, f"trials ran on fresh workers: {trials}, prestarted {prestarted}"
    assert all(t["torch"] and t["trainable"] for t in trials), f"a worker had not preloaded: {trials}"
    workers_after = [pid for pid, command in seen["after"] if command.startswith("ray::") and "Agent" not in command]
    assert len(workers_after) == 2, f"extra worker processes: {seen['after']}"
