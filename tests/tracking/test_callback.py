"""The MLflow record of real sweeps, read back with MlflowClient (embedded SQLite store)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml
from ray.tune import Callback

from sweeps.plan.planner import plan_spec
from sweeps.ray_backend import RayBackend
from sweeps.ray_backend.formats import without_ray_keys
from sweeps.runner.runner import RunOptions, run_sweep
from sweeps.spec.loading import load_spec
from sweeps.store.state import sweep_paths
from sweeps.tracking.callback import trial_metrics
from tests.conftest import small_spec
from tests.tracking.conftest import ResultRecorder
from tests.tracking.contract import RAY_BOOKKEEPING, check_contract, check_runs_file, read_sweep
from tests.tracking.outcome_trainable import DATASET_SIZE
from trainables.digits_mlp import TRAINING_SIZE

OUTCOME_TRAINABLE = f"{Path(__file__).with_name('outcome_trainable.py')}:train"


def _run(folder: Path, spec: dict[str, Any], *callbacks: Any) -> tuple[Any, Any]:
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    loaded = load_spec(path, [])
    return loaded, run_sweep(
        loaded, RunOptions(RayBackend(callbacks=list(callbacks)), live=False, overwrite=True)
    )


@pytest.fixture(scope="module")
def digits_sweep(ray_session: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("digits")
    recorder = ResultRecorder()
    # multivariate changes nothing in 6 trials (TPE samples its first 10 at random): it is
    # there to be found among the parent run's params.
    spec = small_spec(storage=str(folder / "results"), sampler={"type": "tpe", "multivariate": True})
    loaded, summary = _run(folder, spec, recorder)
    paths = sweep_paths(loaded.spec.storage, loaded.spec.name)
    return {
        "loaded": loaded,
        "summary": summary,
        "recorder": recorder,
        "paths": paths,
        "uri": paths.embedded_tracking_uri,
        "plan": plan_spec(loaded)[1],
    }


@pytest.mark.slow
def test_digits_sweep_keeps_the_tracking_contract(digits_sweep: dict[str, Any]) -> None:
    summary = digits_sweep["summary"]
    assert summary.trials["pruned"] > 0 and summary.trials["completed"] > 0, summary.trials
    record = read_sweep(digits_sweep["uri"], "tiny")
    check_contract(
        record,
        summary,
        digits_sweep["recorder"].results,
        "val_accuracy",
        digits_sweep["plan"].milestones(),
        TRAINING_SIZE,
    )
    check_runs_file(digits_sweep["paths"].directory, record, digits_sweep["uri"])
    params = record.parent.data.params
    assert (params["sampler"], params["sampler.multivariate"], params["sampler.constant_liar"]) == (
        "tpe",
        "True",
        "True",
    )


@pytest.mark.slow
def test_tags_filter_trials_in_mlflow_search(digits_sweep: dict[str, Any]) -> None:
    record = read_sweep(digits_sweep["uri"], "tiny")
    pruned = record.client.search_runs([record.parent.info.experiment_id], "tags.\"sweep.state\" = 'pruned'")
    expected = {r["trial_id"] for r in digits_sweep["summary"].trial_records if r["outcome"] == "pruned"}
    assert {r.data.tags["sweep.trial_id"] for r in pruned} == expected


@pytest.mark.slow
def test_artifacts_land_next_to_the_embedded_store(digits_sweep: dict[str, Any]) -> None:
    record = read_sweep(digits_sweep["uri"], "tiny")
    storage = digits_sweep["paths"].storage
    assert record.parent.info.artifact_uri.startswith((storage / "mlartifacts").as_uri())
    spec_file = Path(
        record.client.download_artifacts(record.parent.info.run_id, "spec/spec.yaml", str(storage))
    )
    assert yaml.safe_load(spec_file.read_text())["name"] == "tiny"


@pytest.mark.slow
def test_best_trial_model_weights_are_stored(digits_sweep: dict[str, Any]) -> None:
    import mlflow.pytorch
    import torch

    record = read_sweep(digits_sweep["uri"], "tiny")
    best = record.child(digits_sweep["summary"].best["trial_id"])
    stored = {a.path for a in record.client.list_artifacts(best.info.run_id, "model")}
    # A real MLflow PyTorch model (`fit` handed its module to ctx), and the checkpoint beside it.
    assert {"model/MLmodel", "model/data", "model/state.pt"} <= stored, stored
    local = record.client.download_artifacts(
        best.info.run_id, "model/state.pt", str(digits_sweep["paths"].directory)
    )
    state = torch.load(local, weights_only=False)
    # The final weights: the checkpoint of the trial's last iteration.
    assert state["iteration"] == int(best.data.params["total_iterations"])
    assert any(key.endswith("weight") for key in state["model"])
    # Loaded with plain MLflow, as docs/tracking.md shows: the checkpoint's trained weights.
    mlflow.set_tracking_uri(digits_sweep["uri"])
    try:
        model = mlflow.pytorch.load_model(f"runs:/{best.info.run_id}/model")
    finally:
        mlflow.set_tracking_uri("")
    assert all(torch.equal(value, state["model"][key]) for key, value in model.state_dict().items())
    assert model(torch.zeros(3, 64)).shape == (3, 10)  # digits: 8x8 pixels in, 10 classes out
    others = [r for r in record.children if r.info.run_id != best.info.run_id]
    assert all(not record.client.list_artifacts(r.info.run_id, "model") for r in others)


@pytest.mark.slow
def test_a_resumed_sweep_stores_the_model_of_a_best_trial_that_ended_before(
    ray_session: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sweeps.cli import main

    # A first session that stores no model, as a driver killed before its sweep's end. No
    # early stopping, and fewer trials than TPE's random start-up: every value, and so the
    # best trial, is the same whatever order the results arrive in.
    spec = small_spec(
        storage=str(tmp_path / "results"),
        num_samples=6,
        tracking={"log_model": False},
        scheduler={"type": "none"},
    )
    loaded, first = _run(tmp_path, spec)
    uri = sweep_paths(loaded.spec.storage, loaded.spec.name).embedded_tracking_uri
    best_id = first.best["trial_id"]
    before = read_sweep(uri, "tiny").child(best_id)
    assert not before.data.tags.get("sweep.best_run_name") and not read_sweep(
        uri, "tiny"
    ).client.list_artifacts(before.info.run_id, "model")
    assert (
        main(
            [
                "resume",
                "tiny",
                "--storage",
                str(tmp_path / "results"),
                "--set",
                "num_samples=7",
                "--set",
                "tracking.log_model=true",
                "--json",
            ]
        )
        == 0
    )
    record = read_sweep(uri, "tiny")
    assert len(record.children) == 7
    # The added trial did not beat it, so the best is still one that ended before the resume.
    assert record.parent.data.tags["sweep.best_trial_id"] == best_id
    assert record.parent.data.tags["sweep.best_run_name"] == before.info.run_name
    # Its checkpoint, trained without `log_model`, holds no module: the weights, and the note why.
    assert [a.path for a in record.client.list_artifacts(before.info.run_id, "model")] == ["model/state.pt"]
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert any("trained while `tracking.log_model` was false" in w for w in summary["warnings"])


@pytest.mark.slow
def test_parent_counts_grow_one_step_per_ended_trial(digits_sweep: dict[str, Any]) -> None:
    record = read_sweep(digits_sweep["uri"], "tiny")
    history = record.client.get_metric_history(record.parent.info.run_id, "trials_completed")
    values = [m.value for m in sorted(history, key=lambda m: (m.step, m.timestamp))]
    assert values == sorted(values) and values[-1] == digits_sweep["summary"].trials["completed"]
    assert max(m.step for m in history) == len(record.children)


@pytest.mark.slow
def test_failed_and_diverged_trials_end_failed_with_their_error(ray_session: Any, tmp_path: Path) -> None:
    spec = small_spec(
        name="outcomes",
        storage=str(tmp_path / "results"),
        trainable=OUTCOME_TRAINABLE,
        num_samples=6,
        search_space={
            "batch_size": {"type": "categorical", "values": [50, 100]},
            "epochs": {"type": "categorical", "values": [1, 2]},
            "learning_rate": {"type": "categorical", "values": [0.01, 0.5, 5.0]},
        },
        sampler={"type": "random"},
        failure={"max_retries": 0, "max_failed_fraction": 1.0},
        checkpoint={"every_epochs": 0},
    )
    recorder = ResultRecorder()
    loaded, summary = _run(tmp_path, spec, recorder)
    assert summary.trials["failed"] and summary.trials["diverged"], summary.trials
    uri = sweep_paths(loaded.spec.storage, "outcomes").embedded_tracking_uri
    record = read_sweep(uri, "outcomes")
    check_contract(
        record, summary, recorder.results, "val_accuracy", plan_spec(loaded)[1].milestones(), DATASET_SIZE
    )
    for run in record.children:
        state = run.data.tags["sweep.state"]
        if state not in ("failed", "diverged"):
            continue
        error = Path(
            record.client.download_artifacts(run.info.run_id, "error.txt", str(tmp_path))
        ).read_text()
        assert ("blew up the test trainable" if state == "failed" else "val_accuracy") in error
        if state == "diverged":
            assert "became non-finite at iteration 10" in error


class _StopAfter(Callback):
    """After ``count`` results, either plays Ctrl-C (a real SIGINT to this process, which Ray
    Tune turns into a graceful stop) or crashes the driver with an exception."""

    def __init__(self, count: int, how: str) -> None:
        self.count, self.how = count, how

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        self.count -= 1
        if self.count == 0 and self.how == "sigint":
            os.kill(os.getpid(), signal.SIGINT)
        elif self.count == 0:
            raise RuntimeError("the driver crashed")


def _quick_spec(name: str, folder: Path) -> dict[str, Any]:
    return small_spec(
        name=name,
        storage=str(folder / "results"),
        trainable=OUTCOME_TRAINABLE,
        num_samples=4,
        trainable_args={"iteration_seconds": 0.005},
        scheduler={"type": "none"},
        checkpoint={"every_epochs": 0},
        search_space={
            "batch_size": 10,
            "epochs": 3,
            "learning_rate": {"type": "categorical", "values": [0.01, 0.02]},
        },
    )


@pytest.mark.slow
def test_interrupted_sweep_ends_its_runs_killed(ray_session: Any, tmp_path: Path) -> None:
    _run(tmp_path, _quick_spec("interrupted", tmp_path), _StopAfter(2, "sigint"))
    record = read_sweep(sweep_paths(tmp_path / "results", "interrupted").embedded_tracking_uri, "interrupted")
    assert "RUNNING" not in [r.info.status for r in [record.parent, *record.children]]
    assert (record.parent.info.status, record.parent.data.tags["sweep.state"]) == ("KILLED", "interrupted")
    killed = [r for r in record.children if r.info.status == "KILLED"]
    assert killed and all(r.data.tags["sweep.state"] == "interrupted" for r in killed)


@pytest.mark.slow
def test_crashed_driver_leaves_no_run_running(ray_session: Any, tmp_path: Path) -> None:
    with pytest.raises(Exception, match="the driver crashed"):  # Ray wraps it in TuneError
        _run(tmp_path, _quick_spec("crashed", tmp_path), _StopAfter(2, "raise"))
    record = read_sweep(sweep_paths(tmp_path / "results", "crashed").embedded_tracking_uri, "crashed")
    assert "RUNNING" not in [r.info.status for r in [record.parent, *record.children]]
    assert record.parent.info.status == "FAILED"
    assert any(r.info.status == "KILLED" for r in record.children)


def test_trial_metrics_keep_only_the_trainables_metrics_epoch_and_samples_seen() -> None:
    result = {
        "val_accuracy": 0.9,
        "train_loss": 0.3,
        "epoch": 1.5,
        "samples_seen": 96,
        "iteration": 3,
        "iterations_per_epoch": 2,
        "total_iterations": 4,
        "dataset_size": 64,
        "diverged": False,
        "node_id": "abc",
        "training_iteration": 2,
        "time_this_iter_s": 0.1,
        "time_total_s": 1.0,
        "timestamp": 17,
        "done": False,
        "pid": 4,
        "trial_id": "x",
        "date": "d",
        "hostname": "h",
        "node_ip": "1",
        "config": {"learning_rate": 0.1},
        "config/learning_rate": 0.1,
        "time_since_restore": 1.0,
        "iterations_since_restore": 2,
        "checkpoint_dir_name": None,
    }
    # The seam strips Ray's bookkeeping before any listener sees a result (sweeps.ray_backend.bridge).
    shown = without_ray_keys(result)
    assert trial_metrics(shown) == {
        "val_accuracy": 0.9,
        "train_loss": 0.3,
        "epoch": 1.5,
        "samples_seen": 96.0,
    }
    assert not set(trial_metrics(shown)) & RAY_BOOKKEEPING


def test_trial_metrics_take_numpy_numbers_and_leave_out_bools_and_strings() -> None:
    import numpy as np

    result = {"iteration": 1, "a": np.float32(0.5), "b": np.int64(3), "c": True, "d": "x", "e": None, "f": 2}
    assert trial_metrics(result) == {"a": 0.5, "b": 3.0, "f": 2.0}


def _point(iteration: int, node: str = "n1", **metrics: float) -> dict[str, Any]:
    return {
        "iteration": iteration,
        "node_id": node,
        "val_accuracy": iteration / 10,
        **metrics,
        "iterations_per_epoch": 10,
        "total_iterations": 10,
        "dataset_size": 100,
        "done": False,
    }


def test_a_delivery_is_one_record_and_each_step_is_logged_once(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from sweeps.backend import TrialInfo
    from sweeps.tracking.callback import PARENT, MlflowTracker
    from sweeps.tracking.writer import TrackingWriter

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("coalesce", artifact_location=(tmp_path / "art").as_uri())
    parent = client.create_run(experiment).info.run_id
    writer = TrackingWriter(uri, known_runs={PARENT: parent}, flush_interval=0)  # started below
    tracker = MlflowTracker(
        writer,
        experiment,
        sweep_name="s",
        metric="val_accuracy",
        mode="max",
        dataset_size=100,
        drop_last=False,
        milestones=[],
        budget_unit="iterations",
        log_model=False,
    )
    trial = TrialInfo("t1", {"batch_size": 10, "epochs": 1, "learning_rate": 0.1})
    tracker.trial_started(trial)
    assert writer.pending == 2  # the run, its params
    tracker.trial_reported(trial, [_point(1), _point(2), {"no": "iteration"}, _point(3)])
    assert writer.pending == 3, "a delivery of many reports is one record"
    # A retried trial repeats steps 2 and 3 from another node, then goes on: 2 and 3 are not logged again.
    tracker.trial_reported(trial, [_point(2, "n2"), _point(3, "n2"), _point(4, "n2")])
    tracker.trial_reported(trial, [_point(4, "n3")])  # only the node moves: a record of tags alone
    assert writer.pending == 5
    tracker.trial_reported(trial, [])
    assert writer.pending == 5, "an empty delivery adds nothing"
    tracker.trial_completed(trial)
    writer.start()
    assert tracker.close() == 0

    run = client.get_run(str(writer.run_id("t1")))
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "val_accuracy")] == [
        (1, 0.1),
        (2, 0.2),
        (3, 0.3),
        (4, 0.4),
    ]
    assert run.data.tags["sweep.node"] == "n3" and run.data.tags["sweep.stopped_at_iteration"] == "4"
    assert run.info.status == "FINISHED" and run.data.params["learning_rate"] == "0.1"
