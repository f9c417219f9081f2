"""A warm local Ray: `ray start --head` kept running, and `sweep run SPEC --address ...` with the
embedded defaults (local storage, MLflow in SQLite) pays no Ray start-up and leaves it running."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.cluster.local_cluster import LocalRayCluster
from tests.conftest import REPO, small_spec

pytestmark = pytest.mark.slow


@pytest.fixture
def warm_head() -> Iterator[LocalRayCluster]:
    cluster = LocalRayCluster()
    try:
        cluster.start_head(cpus=2)
        yield cluster
    finally:
        cluster.shutdown()


def test_two_sweeps_on_a_warm_local_ray_finish_and_leave_it_running(
    warm_head: LocalRayCluster, tmp_path: Path
) -> None:
    head = warm_head.nodes[0]
    # The node's daemons, not its workers (which come and go with each driver's job).
    before = {p.pid for p in head.processes() if not p.name().startswith("ray::") or "Agent" in p.name()}
    assert len(before) >= 3, [p.name() for p in head.processes()]
    for name in ("warm-1", "warm-2"):
        spec = small_spec(
            name=name,
            num_samples=2,
            storage=str(tmp_path / "results"),
            search_space={"batch_size": 128, "epochs": 1, "learning_rate": 0.01},
            scheduler={"type": "none"},
        )
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(spec))
        done = subprocess.run(
            [sys.executable, "-m", "sweeps", "run", str(path), "--json", "--address", warm_head.address],
            cwd=tmp_path,
            env={**warm_head.env, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        assert summary["trials"]["completed"] == 2
        # The embedded defaults: the sweep's own SQLite store and folder, on this machine.
        assert (tmp_path / "results" / "mlflow.db").is_file()
        assert (tmp_path / "results" / name / "sweep.json").is_file()
    # The CLI ends without ray.shutdown() and kills what it started: never the cluster's processes.
    alive = {p.pid for p in head.processes()}
    assert before <= alive, f"the warm Ray lost processes: {sorted(before - alive)}"
