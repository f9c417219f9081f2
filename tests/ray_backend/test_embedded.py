"""The embedded Ray starts only what a sweep needs and preloads its workers, checked on a real
Ray in a fresh driver; Tune's trial actors carry no runtime_env that would keep them off the
prestarted workers (sweeps/ray_backend/embedded.py)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

DRIVER = r"""
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
    grid = tune.Tuner(trial,
                      tune_config=tune.TuneConfig(num_samples=2, max_concurrent_trials=2, reuse_actors=True),
                      run_config=tune.RunConfig(storage_path=sys.argv[1], verbose=0)).fit()
print(json.dumps({"before": before, "trials": [r.metrics for r in grid], "after": processes()}))
starter.stop()
"""


@pytest.mark.slow
def test_only_what_a_sweep_needs_starts_and_its_workers_preload_the_trainable(tmp_path: object) -> None:
    home = Path(str(tmp_path)) / "home"  # a home of its own: the token file the embedded Ray uses
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env.update(PYTHONPATH=str(REPO), RAY_USAGE_STATS_ENABLED="0", HOME=str(home))
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # Ray 2.60 wrote ~/.ray/auth_token 0644; the trials ran, so Ray took the 0600 one written first.
    assert stat.S_IMODE((home / ".ray" / "auth_token").stat().st_mode) == 0o600
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


def test_trial_actors_carry_no_runtime_env_when_the_embedded_ray_inherited_it(
    embedded_environment: dict[str, str],
) -> None:
    from ray.tune.execution.class_cache import _ActorClassCache

    from sweeps.ray_backend.embedded import trial_actors_on_prestarted_workers

    with trial_actors_on_prestarted_workers():
        actor_class = _ActorClassCache().get(Trainable)  # type: ignore[no-untyped-call]
    # No runtime_env: a worker Ray prestarted (with none) can take the actor.
    assert actor_class._default_options.get("runtime_env") is None
    # Outside the patch Tune's own, which no prestarted worker serves.
    assert _ActorClassCache().get(Trainable)._default_options["runtime_env"] == {
        "env_vars": {"PL_DISABLE_FORK": "1"}
    }  # type: ignore[no-untyped-call]


def test_trial_actors_keep_tunes_runtime_env_when_it_adds_a_variable(
    embedded_environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
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


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_the_token_the_embedded_ray_will_use_is_written_for_its_owner_alone(home: Path) -> None:
    from sweeps.ray_backend.embedded import private_auth_token

    path = private_auth_token()
    assert path == home / ".ray" / "auth_token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # Ray wrote it 0644
    assert len(path.read_text()) == 64 and int(path.read_text(), 16) >= 0  # Ray's own format


def test_a_token_readable_by_others_is_restricted_and_kept(home: Path) -> None:
    from sweeps.ray_backend.embedded import private_auth_token

    (home / ".ray").mkdir()
    token = home / ".ray" / "auth_token"
    token.write_text("abc")
    token.chmod(0o644)
    assert private_auth_token() == token
    assert stat.S_IMODE(token.stat().st_mode) == 0o600 and token.read_text() == "abc"


@pytest.mark.parametrize(
    "variable, value",
    [("RAY_AUTH_MODE", "disabled"), ("RAY_AUTH_TOKEN", "xyz"), ("RAY_AUTH_TOKEN_PATH", "/elsewhere")],
)
def test_no_token_file_when_the_token_comes_from_elsewhere(
    home: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    from sweeps.ray_backend.embedded import private_auth_token

    monkeypatch.setenv(variable, value)
    assert private_auth_token() is None and not (home / ".ray").exists()


def test_a_distributed_sweep_preloads_nothing_and_the_cli_says_so(tmp_path: Path) -> None:
    from sweeps.cli.launch import ray_backend
    from sweeps.ray_backend.embedded import worker_preload_modules
    from sweeps.spec.loading import load_spec
    from tests.conftest import small_spec

    assert worker_preload_modules("digits_mlp") == [
        "torch",
        "ray.tune",
        "sweeps.ray_backend.trial",
        "trainables.digits_mlp",
    ]
    assert worker_preload_modules("digits_mlp", workers_per_trial=2) == []
    path = tmp_path / "spec.yaml"
    for workers in (1, 2):
        path.write_text(json.dumps(small_spec(resources={"cpu": 1, "gpu": 0, "workers": workers})))
        backend = ray_backend(load_spec(path, []), None)
        assert (backend.workers_per_trial, backend.trainable) == (workers, "digits_mlp")  # type: ignore[attr-defined]
