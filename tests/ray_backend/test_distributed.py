"""Distributed trials on the embedded Ray (2 CPUs): real Ray Train workers, real gloo, real DDP.

On 2 CPUs, one 2-worker trial of 1 CPU per worker fits at a time, so these sweeps are also
the case of ray-project/ray#54305: each trial after the first can start only once the
previous one's workers have been freed.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from typing_extensions import Self

from sweeps.backend import SweepListener, TrialInfo
from sweeps.cli import main
from sweeps.iterations import TrialShape
from sweeps.ray_backend import RayBackend
from sweeps.ray_backend.worker import trial_seed
from sweeps.runner.runner import RunOptions, run_sweep
from sweeps.spec.loading import load_spec
from sweeps.training.context import LocalContext
from tests.conftest import small_spec
from tests.ray_backend import ddp_probe
from trainables.digits_mlp import TRAINING_SIZE

BATCH = 64


def probe_spec(tmp_path: Path, name: str, **changes: Any) -> Path:
    probe_dir = tmp_path / "probe"
    probe_dir.mkdir(exist_ok=True)
    spec = small_spec(
        name=name,
        trainable="tests.ray_backend.ddp_probe:train",
        num_samples=1,
        trainable_args={"probe_dir": str(probe_dir)},
        storage=str(tmp_path / "results"),
        search_space={"batch_size": BATCH, "epochs": 1, "learning_rate": 0.1},
        scheduler={"type": "none"},
        resources={"cpu": 1, "gpu": 0, "workers": 2},
    )
    spec.update(changes)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def rank_records(probe_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Trial seed → its ranks' records, rank 0 first."""
    trials: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(probe_dir.glob("*-rank*.json")):
        trials.setdefault(path.name.split("-rank")[0], []).append(json.loads(path.read_text()))
    return {seed: sorted(records, key=lambda r: r["rank"]) for seed, records in trials.items()}


@pytest.mark.slow
def test_a_two_worker_trial_splits_every_global_batch_and_trains_as_one_process(
    ray_session: Any, tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    summary = run_sweep(
        load_spec(probe_spec(tmp_path, "ddp"), []), RunOptions(RayBackend(), live=False, overwrite=True)
    )
    # The iteration arithmetic is that of the global batch: ceil(1438 / 64) = 23 per epoch.
    iterations_per_epoch = math.ceil(TRAINING_SIZE / BATCH)
    assert summary.trials["completed"] == 1, summary.trials
    assert summary.iterations_used == iterations_per_epoch == 23

    ((seed, ranks),) = rank_records(tmp_path / "probe").items()
    assert [(r["rank"], r["world_size"]) for r in ranks] == [(0, 2), (1, 2)]
    assert ranks[0]["pid"] != ranks[1]["pid"]  # two worker processes
    # Each rank took its half of each of the 23 global batches (15 + 15 of the last 30)...
    assert [len(b) for b in ranks[0]["batches"]] == [32] * 22 + [15]
    assert [len(b) for b in ranks[1]["batches"]] == [32] * 22 + [15]
    # ...and together they saw every sample exactly once in the epoch.
    seen = [i for r in ranks for batch in r["batches"] for i in batch]
    assert sorted(seen) == list(range(TRAINING_SIZE))

    assert_trains_as_one_process(tmp_path, seed, ranks[0]["config"])

    # MLflow: one child run, with the workers and the per-worker batch as params.
    client = MlflowClient(f"sqlite:///{tmp_path / 'results' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("ddp").experiment_id])
    trial_runs = [r for r in runs if r.data.tags.get("sweep.role") == "trial"]
    assert len(trial_runs) == 1
    params = trial_runs[0].data.params
    assert (
        params["workers"] == "2" and params["per_worker_batch_size"] == "32" and params["batch_size"] == "64"
    )
    assert params["iterations_per_epoch"] == "23"
    # sweep.node lists the trial's nodes, rank 0's first: here both ranks share the one node.
    assert trial_runs[0].data.tags["sweep.node"] == ranks[0]["node"] == ranks[1]["node"]
    # What each worker printed, in the trial's folder and in its run; the model, from rank 0.
    run_id, trial_id = trial_runs[0].info.run_id, trial_runs[0].data.tags["sweep.trial_id"]
    folder = tmp_path / "results" / "ddp" / "trials" / trial_id
    assert "ddp probe: rank 0 of 2" in (folder / "stdout.txt").read_text()
    assert "ddp probe: rank 1 of 2" in (folder / "stdout.rank1.txt").read_text()
    assert {"output/stdout.txt", "output/stdout.rank1.txt"} <= {
        a.path for a in client.list_artifacts(run_id, "output")
    }
    assert "model/MLmodel" in {a.path for a in client.list_artifacts(run_id, "model")}


def assert_trains_as_one_process(tmp_path: Path, seed: str, config: dict[str, Any]) -> None:
    """DDP averages the ranks' gradients: after one epoch of SGD the weights in
    ``tmp_path/probe`` are those of one process training on the same global batches
    (summed gradients would double the steps, duplicated ones would not split them)."""
    alone = tmp_path / "alone"
    alone.mkdir()
    ctx = LocalContext(
        TrialShape(TRAINING_SIZE, BATCH, 1),
        metric="val_accuracy",
        seed=int(seed),
        args={"probe_dir": str(alone)},
    )
    ddp_probe.train(config, ctx)
    assert ctx.results[-1]["iteration"] == 23
    distributed = torch.load(tmp_path / "probe" / f"{seed}-weights.pt")
    single = torch.load(alone / f"{seed}-weights.pt")
    initial = ddp_probe.make_mlp(64, 10, [32], 0.0)
    for key, weight in single.items():
        assert torch.allclose(distributed[key], weight, atol=1e-5), key
    assert not torch.allclose(single["0.weight"], initial.state_dict()["0.weight"])  # it did train


@pytest.mark.slow
def test_asha_stopping_a_distributed_trial_ends_all_its_workers(ray_session: Any, tmp_path: Path) -> None:
    # Trials report 1 / (their start number): the second is stopped at the rung at iteration
    # 5. One fits at a time, so it can start only once the first has freed its workers.
    spec = probe_spec(
        tmp_path,
        "ddp-asha",
        num_samples=2,
        search_space={
            "batch_size": BATCH,
            "epochs": 2,
            "learning_rate": {"type": "float", "low": 0.01, "high": 0.1},
        },
        scheduler={"type": "asha", "grace_period": 5, "reduction_factor": 2},
        trainable_args={"probe_dir": str(tmp_path / "probe"), "later_is_worse": True},
        tracking={"enabled": False},
    )
    watcher = WorkerWatcher(tmp_path / "probe")
    ended = EndTimes()
    with watcher:
        summary = run_sweep(
            load_spec(spec, []), RunOptions(RayBackend(), live=False, overwrite=True, listeners=[ended])
        )
        deadline = time.monotonic() + 15
        while len(watcher.gone) < len(watcher.pids) and time.monotonic() < deadline:
            time.sleep(0.2)
    assert summary.trials == {**summary.trials, "completed": 1, "pruned": 1}, summary.trials
    records = rank_records(tmp_path / "probe")
    assert len(records) == 2 and all(len(r) == 2 for r in records.values())
    assert len(watcher.pids) == 4, watcher.pids  # each trial had its own two worker processes
    assert set(watcher.gone) == set(watcher.pids), "worker processes still alive 15 s after the sweep"
    (pruned_seed,) = [seed for seed, when in ended.at.items() if ended.outcome[seed] == "pruned"]
    pruned_pids = [r["pid"] for r in records[pruned_seed]]
    # Both workers of the stopped trial were gone within seconds of ASHA's decision.
    lags = [watcher.gone[pid] - ended.at[pruned_seed] for pid in pruned_pids]
    assert all(lag < 10 for lag in lags), lags


@pytest.mark.slow
def test_a_worker_that_dies_retries_the_trial_from_its_checkpoint_with_all_its_workers(
    ray_session: Any, tmp_path: Path
) -> None:
    # Rank 1 dies at iteration 30 of 46, after the epoch-1 checkpoint (iteration 23). The
    # retry needs both CPUs again: the failed attempt's workers must have been freed.
    probe_dir = tmp_path / "probe"
    spec = probe_spec(
        tmp_path,
        "ddp-retry",
        search_space={"batch_size": BATCH, "epochs": 2, "learning_rate": 0.1},
        trainable_args={"probe_dir": str(probe_dir), "rank1_dies_at": 30},
        failure={"max_retries": 1},
        tracking={"enabled": False},
    )
    summary = run_sweep(load_spec(spec, []), RunOptions(RayBackend(), live=False, overwrite=True))
    assert (probe_dir / "died").exists()
    assert summary.trials["completed"] == 1 and summary.trials["failed"] == 0, summary.trials
    assert summary.iterations_used == 46
    ((_, ranks),) = rank_records(probe_dir).items()
    died = int((probe_dir / "died").read_text())
    assert ranks[1]["pid"] != died  # the retry ran on fresh workers
    # Restarted from the checkpoint at the end of epoch 1: the retry's ranks shuffled epoch 2
    # again (fit skips nothing within it) and together took each sample once in it.
    assert [len(r["batches"]) for r in ranks] == [23, 23]
    assert sorted(i for r in ranks for batch in r["batches"] for i in batch) == list(range(TRAINING_SIZE))


class EndTimes(SweepListener):
    """When each trial ended (by its seed, as the probe names its files), and how."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.outcome: dict[str, str] = {}

    def trial_completed(self, trial: TrialInfo) -> None:
        seed = str(trial_seed(0, trial.config))
        self.at[seed] = time.monotonic()
        last = trial.last_result or {}
        self.outcome[seed] = (
            "completed" if last.get("iteration") == last.get("total_iterations") else "pruned"
        )


class WorkerWatcher(threading.Thread):
    """Polls the probe's worker pids; ``gone`` maps each to when it was first seen ended."""

    def __init__(self, probe_dir: Path) -> None:
        super().__init__(daemon=True)
        self.probe_dir = probe_dir
        self.pids: set[int] = set()
        self.gone: dict[int, float] = {}
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(0.1):
            for ranks in rank_records(self.probe_dir).values():
                self.pids.update(r["pid"] for r in ranks)
            for pid in self.pids - set(self.gone):
                if not _alive(pid):
                    self.gone[pid] = time.monotonic()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop_event.set()
        self.join()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has ended; only its parent has not reaped it yet.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.slow
def test_more_workers_than_the_cluster_can_hold_is_exit_2(
    ray_session: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = probe_spec(tmp_path, "ddp-greedy", resources={"cpu": 1, "gpu": 0, "workers": 4})
    code = main(["run", str(spec)])
    err = capsys.readouterr().err
    assert code == 2
    assert "field `resources`" in err and "workers=4" in err and "CPU=2" in err and "Traceback" not in err
    assert not (tmp_path / "results" / "ddp-greedy").exists()
