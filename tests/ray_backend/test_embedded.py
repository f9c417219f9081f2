"""The embedded Ray starts only what a sweep needs and preloads its workers, checked on a real
Ray in a fresh driver; Tune's trial actors carry no runtime_env that would keep them off the
prestarted workers (sweeps/ray_backend/embedded.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO


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


@pytest.mark.slow
def test_only_what_a_sweep_needs_starts_and_its_workers_preload_the_trainable(tmp_path: object) -> None:
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
    assert all(t["torch"] and t["trainable"] for t in trials), f"a worker had not preloaded: {trials}"
    # Which worker a trial lands on is Ray's choice (on a loaded machine it has started a
    # fresh one while the prestarted ones were busy preloading): what sweeps controls, the
    # actor class Tune registers, is checked exactly below.


class Trainable:
    """Stands for Tune's trainable class in the actor class cache."""


@pytest.fixture
def embedded_environment(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    from sweeps.ray_backend import embedded

    inherited = dict(os.environ, PL_DISABLE_FORK="1")
    monkeypatch.setattr(embedded, "_inherited_environment", inherited)
    return inherited


def test_trial_actors_carry_no_runtime_env_when_the_embedded_ray_inherited_it(embedded_environment: dict[str, str]) -> None:
    from ray.tune.execution.class_cache import _ActorClassCache

    from sweeps.ray_backend.embedded import trial_actors_on_prestarted_workers

    with trial_actors_on_prestarted_workers():
        actor_class = _ActorClassCache().get(Trainable)  # type: ignore[no-untyped-call]
    # No runtime_env: a worker Ray prestarted (with none) can take the actor.
    assert actor_class._default_options.get("runtime_env") is None
    # Outside the patch Tune's own, which no prestarted worker serves.
    assert _ActorClassCache().get(Trainable)._default_options["runtime_env"] == {"env_vars": {"PL_DISABLE_FORK": "1"}}  # type: ignore[no-untyped-call]


def test_trial_actors_keep_tunes_runtime_env_when_it_adds_a_variable(
        embedded_environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from ray.tune.execution.class_cache import _ActorClassCache

    from sweeps.ray_backend.embedded import trial_actors_on_prestarted_workers

    # Set after the embedded Ray started: its processes never saw it, so Tune must pass it.
    monkeypatch.setenv("RAY_CHDIR_TO_TRIAL_DIR", "0")
    with trial_actors_on_prestarted_workers():
        actor_class = _ActorClassCache().get(Trainable)  # type: ignore[no-untyped-call]
    assert actor_class._default_options["runtime_env"]["env_vars"]["RAY_CHDIR_TO_TRIAL_DIR"] == "0"


def test_without_an_embedded_ray_tunes_runtime_env_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    from ray.tune.execution.class_cache import _ActorClassCache

    from sweeps.ray_backend import embedded

    monkeypatch.setattr(embedded, "_inherited_environment", None)  # a cluster: nothing was inherited
    with embedded.trial_actors_on_prestarted_workers():
        actor_class = _ActorClassCache().get(Trainable)  # type: ignore[no-untyped-call]
    assert actor_class._default_options["runtime_env"]["env_vars"]["PL_DISABLE_FORK"] == "1"
