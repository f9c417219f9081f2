"""Sweeps logging to a real ``mlflow server`` (127.0.0.1, SQLite backend), and surviving its outage."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from ray.tune import Callback

from sweeps.plan.planner import plan_spec
from sweeps.ray_backend import RayBackend
from sweeps.runner.runner import RunOptions, run_sweep
from sweeps.spec.loading import load_spec
from sweeps.store.state import sweep_paths
from tests.conftest import small_spec
from tests.tracking.conftest import MlflowServer, ResultRecorder
from tests.tracking.contract import check_contract, check_runs_file, read_sweep
from tests.tracking.outcome_trainable import DATASET_SIZE

OUTCOME_TRAINABLE = f"{Path(__file__).with_name('outcome_trainable.py')}:train"


def _spec(name: str, folder: Path, server: MlflowServer, **changes: Any) -> Path:
    spec = small_spec(
        name=name,
        storage=str(folder / "results"),
        trainable=OUTCOME_TRAINABLE,
        search_space={
            "batch_size": {"type": "categorical", "values": [10, 20]},
            "epochs": 3,
            "learning_rate": {"type": "float", "low": 0.001, "high": 0.05, "log": True},
        },
        tracking={"uri": server.uri, "experiment": "served"},
        **changes,
    )
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.mark.slow
def test_sweep_logs_to_a_tracking_server(
    ray_session: Any, mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    import torch

    loaded = load_spec(_spec("served", tmp_path, mlflow_server, num_samples=4), [])
    recorder = ResultRecorder()
    summary = run_sweep(loaded, RunOptions(RayBackend(callbacks=[recorder]), live=False))
    record = read_sweep(mlflow_server.uri, "served", experiment="served")
    check_contract(
        record, summary, recorder.results, "val_accuracy", plan_spec(loaded)[1].milestones(), DATASET_SIZE
    )
    check_runs_file(sweep_paths(loaded.spec.storage, "served").directory, record, mlflow_server.uri)
    # The best trial's weights went through the server's artifact proxy.
    best = record.child(summary.best["trial_id"])
    local = record.client.download_artifacts(best.info.run_id, "model/state.pt", str(tmp_path))
    assert torch.load(local, weights_only=False)["iteration"] == int(best.data.params["total_iterations"])


class _Outage(Callback):
    """Stops the real server after the ``after``-th result and restarts it (same port, same
    store) ``seconds`` later, while the sweep goes on."""

    def __init__(self, server: MlflowServer, after: int, seconds: float) -> None:
        self.server, self.after, self.seconds = server, after, seconds
        self.results_while_down = 0
        self.down = threading.Event()
        self.thread: threading.Thread | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {}  # Tune pickles its callbacks for Tuner.restore; threads and servers stay here

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        self.after -= 1
        if self.down.is_set():
            self.results_while_down += 1
        if self.after == 0:
            # Stopped here, on the driver's thread, so the outage surely begins while the
            # sweep still has results to deliver (a thread could start it too late).
            self.server.stop()
            self.down.set()
            self.thread = threading.Thread(target=self._restart_later, daemon=True)
            self.thread.start()

    def _restart_later(self) -> None:
        time.sleep(self.seconds)
        self.down.clear()
        self.server.start()


@pytest.mark.slow
def test_nothing_is_lost_when_the_server_goes_away_mid_sweep(
    ray_session: Any,
    mlflow_server: MlflowServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    loaded = load_spec(
        _spec("outage", tmp_path, mlflow_server, num_samples=6, trainable_args={"iteration_seconds": 0.01}),
        [],
    )
    recorder = ResultRecorder()
    outage = _Outage(mlflow_server, after=2, seconds=4.0)
    with caplog.at_level(logging.WARNING, logger="sweeps.tracking"):
        summary = run_sweep(loaded, RunOptions(RayBackend(callbacks=[recorder, outage]), live=False))
    assert outage.thread is not None
    outage.thread.join(timeout=300)
    assert mlflow_server.answers()
    assert outage.results_while_down > 0, "the outage must overlap the sweep"
    # The user was told, both ways, and the trials kept running meanwhile.
    assert "does not answer" in caplog.text and "Trials keep running" in caplog.text
    assert "answers again" in caplog.text
    assert "could not be written" not in caplog.text
    assert sum(summary.trials.values()) == 6
    record = read_sweep(mlflow_server.uri, "outage", experiment="served")
    check_contract(
        record, summary, recorder.results, "val_accuracy", plan_spec(loaded)[1].milestones(), DATASET_SIZE
    )
    check_runs_file(sweep_paths(loaded.spec.storage, "outage").directory, record, mlflow_server.uri)
