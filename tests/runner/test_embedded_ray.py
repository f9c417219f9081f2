"""The embedded Ray (no --address) passes the user's folder to its workers by inheritance.

``sweep run`` in a folder holding ``mytrain.py`` with ``trainable: mytrain:train``: the
workers must import it, although the embedded Ray gets PYTHONPATH through the driver's
environment rather than a runtime_env (which would keep Ray's prestarted workers unused).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, small_spec

TRAINABLE = """
from sweeps import trainable

@trainable(dataset_size=10)
def train(config, ctx):
    for iteration in range(1, ctx.shape.total_iterations + 1):
        if ctx.should_report(iteration):
            ctx.report(iteration=iteration, val_accuracy=0.5)
"""


@pytest.mark.slow
def test_sweep_run_on_embedded_ray_imports_a_trainable_from_the_working_folder(tmp_path: Path) -> None:
    (tmp_path / "mytrain.py").write_text(TRAINABLE)
    spec = small_spec(
        trainable="mytrain:train",
        num_samples=2,
        storage=str(tmp_path / "results"),
        search_space={
            "batch_size": 10,
            "epochs": 2,
            "learning_rate": {"type": "float", "low": 0.01, "high": 0.1},
        },
        scheduler={"type": "none"},
        tracking={"enabled": False},
    )
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "sweeps", "run", "spec.yaml", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["trials"]["completed"] == 2
    assert summary["start_seconds"] > 0 and "ray_stop_seconds" not in summary


DRIVER = """
import json, sys
import ray
from sweeps.runner.runner import RunOptions, run_sweep
from sweeps.ray_backend import RayBackend
from sweeps.spec.loading import load_spec

seen = []
loaded = load_spec(sys.argv[1], [])
summary = run_sweep(loaded, RunOptions(RayBackend(trainable=loaded.spec.trainable), live=False,
                                       on_summary=lambda s: seen.append(ray.is_initialized())))
print(json.dumps({"ray_up_at_summary": seen, "ray_up_after": ray.is_initialized()}))
"""


@pytest.mark.slow
def test_the_summary_comes_before_the_embedded_ray_shuts_down(tmp_path: Path) -> None:
    (tmp_path / "mytrain.py").write_text(TRAINABLE)
    spec = small_spec(
        trainable="mytrain:train",
        num_samples=1,
        storage=str(tmp_path / "results"),
        search_space={"batch_size": 10, "epochs": 1, "learning_rate": 0.01},
        scheduler={"type": "none"},
        tracking={"enabled": False},
    )
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, "spec.yaml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # Called once, while Ray was still up; Ray is down once run_sweep returns.
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "ray_up_at_summary": [True],
        "ray_up_after": False,
    }
