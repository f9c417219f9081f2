"""Distributed trials on a real multi-node Ray cluster (loopback): one worker on each of two nodes.

The cluster: a head that holds no CPU (it runs the driver's side of Ray, and a Tune trial,
which asks for none) and three worker nodes of 1 CPU each, every one a separate `ray
start` with token authentication. A trial of `workers: 2, cpu: 1` cannot fit on one node,
so its two Ray Train workers run on two nodes and all-reduce over gloo between them, as on
two hosts. The third node is where the trial goes on when one of its nodes is killed.

The tests run `sweep run --address ...` as a user would and read what the DDP probe
(`tests/ray_backend/ddp_probe.py`) wrote down on each rank.
"""

from __future__ import annotations

import json
import math
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.local_cluster import VENV_BIN, LocalRayCluster, RayNode
from tests.conftest import REPO
from tests.ray_backend.test_distributed import BATCH, assert_trains_as_one_process, probe_spec, rank_records
from trainables.digits_mlp import TRAINING_SIZE

pytestmark = pytest.mark.slow

SWEEP_TIMEOUT = 300
#: By file: the cluster's processes have the installed packages, not the repository's `tests`.
PROBE = f"{REPO / 'tests' / 'ray_backend' / 'ddp_probe.py'}:train"


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict[str, Any]]:
    cluster = LocalRayCluster()
    try:
        head = cluster.start_head(cpus=0)
        workers = [cluster.add_worker(f"w{i}", cpus=1) for i in (1, 2, 3)]
        yield {"cluster": cluster, "head": head, "workers": workers}
    finally:
        cluster.shutdown()


def run_on(cluster: LocalRayCluster, spec: Path, tmp_path: Path) -> tuple[subprocess.Popen[str], Path, Path]:
    out, err = tmp_path / "sweep.out", tmp_path / "sweep.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        sweep = subprocess.Popen(
            [str(VENV_BIN / "sweep"), "run", str(spec), "--address", cluster.address, "--json"],
            env=cluster.env,
            cwd=REPO,
            stdout=stdout,
            stderr=stderr,
            text=True,
        )
    return sweep, out, err


def finish(sweep: subprocess.Popen[str], out: Path, err: Path) -> dict[str, Any]:
    try:
        sweep.wait(timeout=SWEEP_TIMEOUT)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 0, err.read_text()[-5000:]
    summary: dict[str, Any] = json.loads(out.read_text())  # `--json`: stdout is the one JSON line
    return summary


def test_a_two_worker_trial_across_two_nodes_trains_as_one_process(
    cluster: dict[str, Any], tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    worker_nodes = {node.node_id for node in cluster["workers"]}
    spec = probe_spec(tmp_path, "ddp-nodes", trainable=PROBE)
    summary = finish(*run_on(cluster["cluster"], spec, tmp_path))
    assert summary["trials"]["completed"] == 1, summary["trials"]
    # The single-worker arithmetic of the global batch: ceil(1438 / 64) = 23 iterations.
    assert summary["iterations_used"] == math.ceil(TRAINING_SIZE / BATCH) == 23

    ((seed, ranks),) = rank_records(tmp_path / "probe").items()
    assert [(r["rank"], r["world_size"], r["backend"]) for r in ranks] == [(0, 2, "gloo"), (1, 2, "gloo")]
    nodes = [r["node"] for r in ranks]
    assert len(set(nodes)) == 2 and set(nodes) <= worker_nodes, nodes  # one rank on each of two nodes
    assert [len(b) for b in ranks[0]["batches"]] == [len(b) for b in ranks[1]["batches"]] == [32] * 22 + [15]
    assert sorted(i for r in ranks for batch in r["batches"] for i in batch) == list(range(TRAINING_SIZE))
    assert_trains_as_one_process(tmp_path, seed, ranks[0]["config"])

    client = MlflowClient(f"sqlite:///{tmp_path / 'results' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("ddp-nodes").experiment_id])
    (trial_run,) = [r for r in runs if r.data.tags.get("sweep.role") == "trial"]
    assert trial_run.data.tags["sweep.node"] == ",".join(nodes)  # both nodes, rank 0's first
    assert trial_run.data.params["per_worker_batch_size"] == "32"


def test_killing_the_node_of_one_rank_retries_the_trial_from_its_checkpoint(
    cluster: dict[str, Any], tmp_path: Path
) -> None:
    nodes: dict[str, RayNode] = {node.node_id: node for node in cluster["workers"]}
    probe_dir = tmp_path / "probe"
    # Two epochs of 23 iterations, a checkpoint after each; rank 1 stops at its 30th batch,
    # in epoch 2, and the test kills its node there (every process of it: raylet, workers).
    spec = probe_spec(
        tmp_path,
        "ddp-node-loss",
        trainable=PROBE,
        search_space={"batch_size": BATCH, "epochs": 2, "learning_rate": 0.1},
        trainable_args={"probe_dir": str(probe_dir), "rank1_holds_at": 30},
        failure={"max_retries": 2},
        checkpoint={"every_epochs": 1},
        tracking={"enabled": False},
    )
    sweep, out, err = run_on(cluster["cluster"], spec, tmp_path)
    held = probe_dir / "held"
    started = time.monotonic()
    while not held.exists():
        assert sweep.poll() is None, err.read_text()[-5000:]
        assert time.monotonic() - started < SWEEP_TIMEOUT, "rank 1 never reached its 30th batch"
        time.sleep(0.1)
    victim = nodes[json.loads(held.read_text())["node"]]  # written whole, by rename
    first_attempt = rank_records(probe_dir)
    assert cluster["cluster"].kill(victim) > 0
    summary = finish(sweep, out, err)

    assert summary["trials"]["completed"] == 1 and summary["trials"]["failed"] == 0, summary["trials"]
    assert summary["iterations_used"] == 46
    (ranks,) = rank_records(probe_dir).values()
    (before,) = first_attempt.values()
    assert victim.node_id in {r["node"] for r in before}
    # The retry ran both ranks on the surviving nodes, on fresh processes...
    assert {r["node"] for r in ranks} <= set(nodes) - {victim.node_id}, [r["node"] for r in ranks]
    assert {r["pid"] for r in ranks}.isdisjoint(r["pid"] for r in before)
    # ...from the checkpoint at the end of epoch 1: only epoch 2 was trained again, and the
    # ranks together took each sample once in it.
    assert [len(r["batches"]) for r in ranks] == [23, 23]
    assert sorted(i for r in ranks for batch in r["batches"] for i in batch) == list(range(TRAINING_SIZE))
