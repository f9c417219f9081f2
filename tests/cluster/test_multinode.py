"""A sweep on a real three-node Ray cluster (loopback) that loses a worker node mid-sweep.

The cluster: a head and two workers with 1 CPU each, every one a separate `ray start`
process with token authentication, and a real `mlflow server`. The sweep runs as
`sweep run ... --address ... --tracking-uri ...`, like a user's. When a trial on a worker
node has stored a checkpoint and reported past it, the test kills that worker node's
processes (only those). The sweep must still end with exactly `num_samples` trials, each
interrupted trial retried from its checkpoint on a surviving node, and every trial in
MLflow once, with one value per step and none RUNNING.

Figures (trials per node, time lost to the failure) go to test-artifacts/multinode.json.
"""

from __future__ import annotations

import collections
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.local_cluster import VENV_BIN, LocalRayCluster, MlflowServer, RayNode
from tests.conftest import REPO

pytestmark = pytest.mark.slow

PROBE = REPO / "tests" / "cluster" / "probe_trainable.py"
NUM_SAMPLES = 9
EPOCHS = 4
N_SAMPLES = 12_000  # batch size 16-20: a few seconds per epoch with 3 trials sharing 2 cores
SWEEP_TIMEOUT = 300


@pytest.fixture(scope="module")
def loopback(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Head + two workers (1 CPU each) and an MLflow server; all torn down, nothing else."""
    root = tmp_path_factory.mktemp("multinode")
    mlflow = MlflowServer(root / "mlflow")
    cluster = LocalRayCluster()
    try:
        mlflow.launch()  # starts up while the Ray nodes do
        head = cluster.start_head(cpus=1)
        workers = [cluster.add_worker(f"w{i}", cpus=1) for i in (1, 2)]
        mlflow.wait_ready()
        yield {"root": root, "cluster": cluster, "head": head, "workers": workers, "mlflow": mlflow}
    finally:
        cluster.shutdown()
        mlflow.stop()


def write_spec(root: Path, name: str, **changes: Any) -> tuple[Path, Path]:
    journal = root / f"{name}-journal"
    journal.mkdir()
    spec: dict[str, Any] = {
        "name": name,
        "trainable": f"{PROBE}:train",
        "trainable_args": {"n_samples": N_SAMPLES, "n_features": 20, "journal": str(journal)},
        "metric": "val_accuracy",
        "mode": "max",
        "num_samples": NUM_SAMPLES,
        "seed": 0,
        "search_space": {
            "batch_size": {"type": "categorical", "values": [16, 20]},
            "epochs": EPOCHS,
            "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
        },
        # No early stopping: every trial runs all its epochs, so each passes through the
        # window in which the kill must land.
        "scheduler": {"type": "none"},
        "resources": {"cpu": 1, "gpu": 0},
        "storage": str(root / "results"),  # one filesystem for all nodes: the NFS of a real cluster
        "failure": {"max_retries": 1, "max_failed_fraction": 0.0},
        # Checkpoints at epochs 2 and 4, reports at every epoch: a trial killed after its
        # epoch-3 report repeats epoch 3 after the retry, which MLflow must not log twice.
        "checkpoint": {"every_epochs": 2},
        **changes,
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path, journal


def sweep_command(cluster: LocalRayCluster, spec: Path, mlflow: MlflowServer, *extra: str) -> list[str]:
    return [
        str(VENV_BIN / "sweep"),
        "run",
        str(spec),
        "--address",
        cluster.address,
        "--tracking-uri",
        mlflow.uri,
        "--json",
        *extra,
    ]


def read_journals(journal: Path) -> dict[str, list[dict[str, Any]]]:
    journals = {}
    for path in journal.glob("*.jsonl"):
        lines = path.read_text().splitlines()
        journals[path.stem] = [json.loads(line) for line in lines if line.endswith("}")]
    return journals


def last_attempt(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    starts = [i for i, e in enumerate(events) if e["event"] == "start"]
    return events[starts[-1] :] if starts else []


def killable_node(journals: dict[str, list[dict[str, Any]]], workers: dict[str, RayNode]) -> RayNode | None:
    """A worker node running a trial that checkpointed and then reported past the checkpoint."""
    for events in journals.values():
        attempt = last_attempt(events)
        if not attempt or attempt[0]["node"] not in workers or any(e["event"] == "end" for e in attempt):
            continue
        checkpoints = [e["iteration"] for e in attempt if e["event"] == "report" and e["checkpointed"]]
        if checkpoints and any(e["event"] == "report" and e["iteration"] > checkpoints[-1] for e in attempt):
            return workers[attempt[0]["node"]]
    return None


def test_joining_without_the_cluster_token_is_refused(loopback: dict[str, Any], tmp_path: Path) -> None:
    cluster = loopback["cluster"]
    wrong = tmp_path / "wrong_token"
    wrong.write_text("0" * 64)
    env = {**cluster.env, "RAY_AUTH_TOKEN_PATH": str(wrong)}
    refused = subprocess.run(
        [str(VENV_BIN / "ray"), "status", "--address", cluster.address],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0
    # `ray status` reads the autoscaler's view, refreshed every few seconds: a worker that
    # has just joined may not be listed yet, so the right token gets a minute to see all 3.
    deadline = time.monotonic() + 60
    while True:
        accepted = subprocess.run(
            [str(VENV_BIN / "ray"), "status", "--address", cluster.address],
            env=cluster.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert accepted.returncode == 0, accepted.stderr[-3000:]
        if accepted.stdout.count("node_") == 3 or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert accepted.stdout.count("node_") == 3, accepted.stdout


@pytest.mark.parametrize("cpu", [3, 2])
def test_a_trial_larger_than_every_node_is_refused_before_any_trial_starts(
    loopback: dict[str, Any], cpu: int
) -> None:
    """Three 1-CPU nodes: 3 CPUs in total, yet no node can hold a 2- or 3-CPU trial."""
    root, cluster = loopback["root"], loopback["cluster"]
    spec, journal = write_spec(root, f"greedy{cpu}")
    result = subprocess.run(
        sweep_command(cluster, spec, loopback["mlflow"], "--set", f"resources.cpu={cpu}"),
        env=cluster.env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "field `resources`" in result.stderr and f"cpu={cpu}" in result.stderr
    assert "single node" in result.stderr and "CPU=1 " in result.stderr and "CPU=3" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(journal.iterdir()), "no trial may have started"


def test_a_sweep_survives_the_loss_of_a_worker_node(loopback: dict[str, Any]) -> None:
    root, cluster, mlflow = loopback["root"], loopback["cluster"], loopback["mlflow"]
    head: RayNode = loopback["head"]
    workers = {node.node_id: node for node in loopback["workers"]}
    names = {head.node_id: head.name, **{node_id: node.name for node_id, node in workers.items()}}
    spec, journal = write_spec(root, "survivor")
    out, err = root / "survivor.out", root / "survivor.err"
    started = time.time()
    with out.open("w") as stdout, err.open("w") as stderr:
        sweep = subprocess.Popen(
            sweep_command(cluster, spec, mlflow), env=cluster.env, cwd=REPO, stdout=stdout, stderr=stderr
        )
    try:
        # 1. Wait for a trial on a worker node to be past its checkpoint, then kill that node.
        victim = None
        while victim is None and sweep.poll() is None and time.time() - started < SWEEP_TIMEOUT:
            victim = killable_node(read_journals(journal), workers)
            time.sleep(0.05)
        assert victim is not None, f"no trial was ever killable on a worker node:\n{err.read_text()[-3000:]}"
        before = read_journals(journal)
        killed_at = time.time()
        killed_processes = cluster.kill(victim)
        interrupted = {
            trial: events
            for trial, events in before.items()
            if last_attempt(events)[0]["node"] == victim.node_id
            and not any(e["event"] == "end" for e in last_attempt(events))
        }
        # 2. The sweep must finish on the surviving nodes.
        sweep.wait(timeout=SWEEP_TIMEOUT - (time.time() - started))
    finally:
        if sweep.poll() is None:
            sweep.kill()
    wall = time.time() - started
    assert sweep.returncode == 0, err.read_text()[-5000:]
    summary = json.loads(out.read_text())  # stdout holds the one JSON line, though a node died
    journals = read_journals(journal)

    # Exactly num_samples trials, none failed, all ran to the end.
    assert sum(summary["trials"].values()) == NUM_SAMPLES and summary["trials"]["failed"] == 0, summary
    assert len(journals) == NUM_SAMPLES
    assert all(last_attempt(events)[-1]["event"] == "end" for events in journals.values())

    # Every interrupted trial was retried, on a surviving node, from its last checkpoint.
    assert interrupted, "the kill must interrupt at least one running trial"
    recoveries = []
    for trial, events_before in interrupted.items():
        attempt_before = last_attempt(events_before)
        checkpoints = [e["iteration"] for e in attempt_before if e["event"] == "report" and e["checkpointed"]]
        retry = last_attempt(journals[trial])
        assert retry[0]["time"] > killed_at and retry[0]["node"] != victim.node_id, trial
        assert retry[0]["resumed_from"] == (checkpoints[-1] if checkpoints else None), (trial, retry[0])
        reported_before = max((e["iteration"] for e in attempt_before if e["event"] == "report"), default=0)
        recoveries.append(
            {
                "trial_id": trial,
                "retried_on": names[retry[0]["node"]],
                "resumed_from_iteration": retry[0]["resumed_from"],
                "last_reported_before_kill": reported_before,
                "seconds_from_kill_to_restart": round(retry[0]["time"] - killed_at, 2),
                "seconds_from_kill_to_first_new_report": round(
                    next(
                        e["time"]
                        for e in retry
                        if e["event"] == "report" and e["iteration"] > reported_before
                    )
                    - killed_at,
                    2,
                ),
            }
        )

    # MLflow: every trial exactly once, none RUNNING, one value per step, node tags on ≥ 2 nodes.
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow.uri)
    experiment = client.get_experiment_by_name("survivor")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    children = [r for r in runs if r.data.tags.get("sweep.role") == "trial"]
    parents = [r for r in runs if r.data.tags.get("sweep.role") == "parent"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert sorted(r.data.tags["sweep.trial_id"] for r in children) == sorted(journals)
    assert all(r.info.status == "FINISHED" for r in children), [
        (r.info.run_name, r.info.status) for r in children
    ]
    assert all(r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id for r in children)
    for run in children:
        per_epoch = int(run.data.params["iterations_per_epoch"])
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_accuracy")]
        assert sorted(steps) == [per_epoch * e for e in range(1, EPOCHS + 1)], (
            run.data.tags["sweep.trial_id"],
            steps,
        )
        final_node = last_attempt(journals[run.data.tags["sweep.trial_id"]])[0]["node"]
        assert run.data.tags["sweep.node"] == final_node
    nodes_in_mlflow = {r.data.tags["sweep.node"] for r in children}
    assert len(nodes_in_mlflow) >= 2, nodes_in_mlflow

    # Figures for the note.
    final_nodes = collections.Counter(names[last_attempt(e)[0]["node"]] for e in journals.values())
    attempts = collections.Counter(
        names[e["node"]] for events in journals.values() for e in events if e["event"] == "start"
    )
    figures = {
        "num_samples": NUM_SAMPLES,
        "trials_finished_per_node": dict(final_nodes),
        "trial_starts_per_node": dict(attempts),
        "killed_node": victim.name,
        "killed_processes": killed_processes,
        "killed_after_seconds": round(killed_at - started, 2),
        "sweep_wall_seconds": round(wall, 2),
        "sweep_summary_wall_seconds": summary["wall_seconds"],
        "recoveries": recoveries,
    }
    artifacts = REPO / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "multinode.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
    assert len(final_nodes) >= 2
