"""``sweep run`` ends without ``ray.shutdown()``: no Ray process outlives it, nothing recorded is lost.

The CLI prints the summary, then ends the process at once (sweeps/cli/launch.py,
``end_process``): the embedded Ray's processes are killed rather than shut down. These
tests run the real command on a real embedded Ray, watch every process of its tree while
it runs, and check afterwards that all of them are gone and that the journal, the study
and MLflow hold every trial, finished.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import psutil
import pytest
import yaml

from tests.conftest import REPO, small_spec

pytestmark = pytest.mark.slow


def _run_watching_the_tree(
    spec_path: Path, cwd: Path
) -> tuple[subprocess.CompletedProcess[str], set[psutil.Process]]:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "sweeps", "run", str(spec_path), "--json"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: dict[int, psutil.Process] = {}
    while process.poll() is None:
        try:
            for child in psutil.Process(process.pid).children(recursive=True):
                seen.setdefault(child.pid, child)
        except psutil.Error:
            pass
        time.sleep(0.05)
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr), set(seen.values())


def test_no_ray_process_outlives_sweep_run_and_the_record_is_complete(tmp_path: Path) -> None:
    storage = tmp_path / "results"
    spec = small_spec(
        name="exit",
        num_samples=3,
        storage=str(storage),
        search_space={
            "batch_size": 128,
            "epochs": 1,
            "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
        },
        scheduler={"type": "none"},
    )
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    done, tree = _run_watching_the_tree(path, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["trials"]["completed"] == 3

    assert tree, "no child process was seen: the sweep did not start an embedded Ray"
    _, alive = psutil.wait_procs(list(tree), timeout=2)
    assert alive == [], f"outlived `sweep run`: {[(p.pid, p.name()) for p in alive]}"

    folder = storage / "exit"
    state = json.loads((folder / "sweep.json").read_text())
    assert state["state"] == "finished"
    study = optuna.load_study(study_name="exit", storage=f"sqlite:///{folder / 'optuna.db'}")
    assert sorted(t.state.name for t in study.trials) == ["COMPLETE"] * 3

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{storage / 'mlflow.db'}")
    [experiment] = [e for e in client.search_experiments() if e.name == "exit"]
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.status for r in runs) == ["FINISHED"] * 4  # the parent and 3 trials
    children = [r for r in runs if r.data.tags.get("sweep.role") != "parent"]
    assert all("val_accuracy" in r.data.metrics for r in children)
