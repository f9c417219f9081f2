"""`sweeps.analysis.load`: a real sweep read back from MLflow (SQLite and a tracking server)."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from sweeps.analysis import load
from sweeps.cli.ui import UI_ENVIRONMENT  # no job runner: see its comment
from sweeps.errors import StateError, SweepError, TrackingError
from sweeps.iterations import TrialShape
from sweeps.outcomes import OUTCOMES
from tests.analysis.conftest import FinishedSweep
from tests.ports import free_port

pytestmark = pytest.mark.slow

DIGITS_N = 1438


def test_one_row_per_trial_agreeing_with_the_sweep_summary(
    finished_sweep: FinishedSweep, sweep_data: Any
) -> None:
    trials, summary = sweep_data.trials, finished_sweep.summary
    assert len(trials) == 8 and trials["trial_id"].is_unique
    assert {r["trial_id"] for r in summary.trial_records} == set(trials["trial_id"])
    counts = trials["state"].value_counts().to_dict()
    assert {s: counts.get(s, 0) for s in OUTCOMES} == summary.trials
    by_id = {r["trial_id"]: r for r in summary.trial_records}
    for row in trials.itertuples():
        assert row.state == by_id[row.trial_id]["outcome"]
        assert row.iterations == by_id[row.trial_id]["iterations"]
    budget = sweep_data.budget()
    assert budget["iterations_used"] == summary.iterations_used
    assert budget["iterations_worst_case"] == summary.iterations_worst_case
    assert sweep_data.best()["trial_id"] == summary.best["trial_id"]
    assert sweep_data.best()["value"] == pytest.approx(summary.best["value"])
    assert sweep_data.best_config() == summary.best["config"]


def test_trials_carry_typed_params_and_derived_iteration_figures(sweep_data: Any) -> None:
    trials = sweep_data.trials
    assert sweep_data.hyperparameters == ["batch_size", "epochs", "learning_rate"]
    assert set(trials["batch_size"]) <= {64, 128} and pd.api.types.is_integer_dtype(trials["batch_size"])
    assert pd.api.types.is_float_dtype(trials["learning_rate"])
    assert (trials["dataset_size"] == DIGITS_N).all()
    for row in trials.itertuples():
        assert row.iterations_per_epoch == math.ceil(DIGITS_N / row.batch_size)
        assert row.total_iterations == row.epochs * row.iterations_per_epoch
        assert row.budget_fraction == pytest.approx(row.iterations / row.total_iterations)
        assert (row.iterations == row.total_iterations) == (row.state == "completed")
        assert row.node  # the Ray node the trial ran on


def test_history_has_one_row_per_trial_and_iteration_with_epoch_and_samples_seen(sweep_data: Any) -> None:
    history, trials = sweep_data.history, sweep_data.trials.set_index("trial_id")
    assert not history.duplicated(["trial_id", "iteration"]).any()
    assert {"val_accuracy", "val_loss", "epoch", "samples_seen"} <= set(history.columns)
    for trial_id, curve in history.groupby("trial_id"):
        trial = trials.loc[trial_id]
        shape = TrialShape(DIGITS_N, int(trial["batch_size"]), int(trial["epochs"]))
        assert curve["iteration"].is_monotonic_increasing
        assert curve["iteration"].max() == trial["iterations"]
        for point in curve.itertuples():
            assert point.samples_seen == shape.samples_at(point.iteration)
            assert point.epoch == pytest.approx(shape.epoch_at(point.iteration))
        assert curve["val_accuracy"].iloc[-1] == pytest.approx(trial["value"])
        # ASHA's first rung (10 iterations) is always reported: every trial gets that far.
        assert 10 in set(curve["iteration"])


def test_rung_reached_matches_the_plan_milestones(sweep_data: Any) -> None:
    milestones = sweep_data.plan.milestones()
    assert milestones[:2] == [10, 20]
    for row in sweep_data.trials.itertuples():
        assert row.rung == sum(1 for m in milestones if row.iterations >= m) - 1


def test_a_sweep_folder_path_loads_the_same_sweep(finished_sweep: FinishedSweep, sweep_data: Any) -> None:
    again = load(str(finished_sweep.storage / finished_sweep.name))
    pd.testing.assert_frame_equal(again.trials, sweep_data.trials)
    pd.testing.assert_frame_equal(again.history, sweep_data.history)


def test_progress_is_reported_per_trial(finished_sweep: FinishedSweep) -> None:
    calls: list[tuple[int, int]] = []
    load(
        finished_sweep.name,
        storage=finished_sweep.storage,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls[0] == (0, 8) and calls[-1] == (8, 8) and len(calls) == 9


# -- a tracking server ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tracking_server(finished_sweep: FinishedSweep, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `mlflow server` serving the sweep's store, in its own process group."""
    port = free_port()
    log = tmp_path_factory.mktemp("mlflow-server") / "server.log"
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        f"sqlite:///{finished_sweep.storage / 'mlflow.db'}",
        "--workers",
        "1",
    ]
    with log.open("wb") as stream:
        process = subprocess.Popen(
            command,
            stdout=stream,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **UI_ENVIRONMENT},
        )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mlflow server did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.3)
        yield uri
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # our own process group only
        process.wait(timeout=10)


def test_a_tracking_server_alone_gives_the_same_frames(
    tracking_server: str, sweep_data: Any, tmp_path: Path
) -> None:
    # No local sweep folder: the sweep is found by name on the server, its spec from the parent
    # run's artifact.
    remote = load("analysed", storage=tmp_path, tracking_uri=tracking_server)
    assert remote.tracking_uri == tracking_server and remote.parent_run_id == sweep_data.parent_run_id
    assert (remote.metric, remote.mode) == ("val_accuracy", "max")
    columns = ["trial_id", "batch_size", "epochs", "learning_rate", "state", "iterations", "rung", "value"]
    pd.testing.assert_frame_equal(remote.trials[columns], sweep_data.trials[columns])
    pd.testing.assert_frame_equal(remote.history, sweep_data.history)
    assert remote.plan is not None and remote.plan.milestones() == sweep_data.plan.milestones()


def test_a_parent_run_uri_loads_from_the_server(tracking_server: str, sweep_data: Any) -> None:
    remote = load(f"runs:/{sweep_data.parent_run_id}", tracking_uri=tracking_server)
    assert remote.name == "analysed" and len(remote.trials) == len(sweep_data.trials)
    assert remote.best()["trial_id"] == sweep_data.best()["trial_id"]


# -- bad input: each its own error, naming what to fix --------------------------------------------------


def test_a_moved_storage_folder_loads_from_its_own_store(
    finished_sweep: FinishedSweep, sweep_data: Any, tmp_path: Path
) -> None:
    """`mlflow_runs.json` records the embedded store under the folder's path at the time; a
    folder copied elsewhere (off a cluster's head node, say) must read its own copy."""
    moved = tmp_path / "copied" / "results"
    shutil.copytree(finished_sweep.storage, moved)
    recorded = json.loads((moved / finished_sweep.name / "mlflow_runs.json").read_text())["tracking_uri"]
    assert recorded == f"sqlite:///{finished_sweep.storage / 'mlflow.db'}"
    copy = load(finished_sweep.name, storage=moved)
    assert copy.tracking_uri == f"sqlite:///{moved / 'mlflow.db'}"  # the store it read
    assert len(copy.trials) == len(sweep_data.trials) and copy.parent_run_id == sweep_data.parent_run_id


def test_an_unknown_sweep_name_is_a_state_error(finished_sweep: FinishedSweep) -> None:
    with pytest.raises(StateError, match="no sweep named `nosuch`"):
        load("nosuch", storage=finished_sweep.storage)


def test_a_missing_mlflow_store_is_a_tracking_error(finished_sweep: FinishedSweep, tmp_path: Path) -> None:
    with pytest.raises(TrackingError, match="no MLflow store at") as error:
        load(
            finished_sweep.name, storage=finished_sweep.storage, tracking_uri=f"sqlite:///{tmp_path}/none.db"
        )
    assert not (tmp_path / "none.db").exists()  # refused, not created
    assert "tracking.enabled: false" in str(error.value)


def test_an_unreachable_server_fails_fast(finished_sweep: FinishedSweep) -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(TrackingError, match="cannot reach the MLflow tracking server"):
        load(finished_sweep.name, storage=finished_sweep.storage, tracking_uri=f"http://127.0.0.1:{port}")
    assert time.monotonic() - started < 15


def test_an_unknown_experiment_is_a_tracking_error(finished_sweep: FinishedSweep, tmp_path: Path) -> None:
    with pytest.raises(TrackingError, match="no MLflow experiment named `elsewhere`"):
        load(
            finished_sweep.name,
            storage=tmp_path,
            experiment="elsewhere",
            tracking_uri=f"sqlite:///{finished_sweep.storage / 'mlflow.db'}",
        )


def test_a_sweep_name_without_a_parent_run_is_a_tracking_error(
    finished_sweep: FinishedSweep, tmp_path: Path
) -> None:
    with pytest.raises(TrackingError, match="holds no parent run of sweep `other`"):
        load(
            "other",
            storage=tmp_path,
            experiment=finished_sweep.name,
            tracking_uri=f"sqlite:///{finished_sweep.storage / 'mlflow.db'}",
        )


def test_a_parent_run_uri_needs_a_tracking_uri() -> None:
    with pytest.raises(SweepError, match="tracking_uri"):
        load("runs:/0123456789abcdef")


def test_an_unknown_parent_run_id_is_a_tracking_error(finished_sweep: FinishedSweep) -> None:
    with pytest.raises(TrackingError, match="no MLflow run with id 0123456789abcdef"):
        load("runs:/0123456789abcdef", tracking_uri=f"sqlite:///{finished_sweep.storage / 'mlflow.db'}")
