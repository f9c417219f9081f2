"""Fixtures for the tracking tests: a real ``mlflow server`` and a recorder of every result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ray.tune import Callback

from sweeps.cli.ui import UI_ENVIRONMENT  # no job runner: see its comment
from tests.ports import free_port  # the suite's one helper: no port handed out twice

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


class MlflowServer:
    """A real ``mlflow server`` on 127.0.0.1 with a SQLite backend, stoppable and restartable
    on the same port and store (to play a tracking-server outage)."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        self.uri = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = folder / "server.log"

    def start(self, timeout: float = 180.0) -> None:
        command = [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{self.folder / 'server.db'}",
            "--artifacts-destination",
            str(self.folder / "artifacts"),
        ]
        with open(self.log, "ab") as log:
            # Its own session, so stop() ends the server and its uvicorn worker, nothing else.
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **UI_ENVIRONMENT},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {self.log.read_text()[-2000:]}")
            if self.answers():
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"mlflow server did not answer within {timeout} s: {self.log.read_text()[-2000:]}")

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        # The port must be free again before a restart can bind it.
        deadline = time.monotonic() + 20
        while self.answers() and time.monotonic() < deadline:
            time.sleep(0.2)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"), free_port())
    server.start()
    yield server
    server.stop()


class ResultRecorder(Callback):
    """Ground truth: every result Ray delivered to the driver, per trial."""

    def __init__(self) -> None:
        self.results: dict[str, list[dict[str, Any]]] = {}

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        self.results.setdefault(trial.trial_id, []).append(dict(result))

    def iterations(self, trial_id: str) -> list[int]:
        return [int(r["iteration"]) for r in self.results.get(trial_id, [])]
