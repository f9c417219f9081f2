"""The background writer against a real MLflow SQLite store (and a port nobody answers on)."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from sweeps.tracking.writer import MAX_METRICS, MAX_PARAMS, MAX_TAGS, TrackingWriter
from tests.tracking.conftest import free_port


@pytest.fixture
def store(tmp_path: Path) -> tuple[str, str]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment = MlflowClient(uri).create_experiment("writer", artifact_location=(tmp_path / "art").as_uri())
    return uri, experiment


def test_records_beyond_log_batch_limits_are_split_and_all_written(store: tuple[str, str]) -> None:
    uri, experiment = store
    created: dict[str, str] = {}
    writer = TrackingWriter(uri, on_run_created=created.__setitem__, flush_interval=0).start()
    writer.create_run("a", experiment, "t001", {"sweep.role": "trial"})
    count = 2 * MAX_METRICS + 500
    for step in range(count):
        writer.log("a", metrics={"loss": 1.0 / (step + 1)}, step=step)
    writer.log(
        "a",
        params={f"p{i}": i for i in range(MAX_PARAMS + 50)},
        tags={f"t{i}": i for i in range(MAX_TAGS + 50)},
    )
    writer.end_run("a", "FINISHED")
    assert writer.close(timeout=60) == 0
    client = MlflowClient(uri)
    run = client.get_run(created["a"])
    assert run.info.status == "FINISHED" and run.info.run_name == "t001"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == list(range(count))
    assert len(run.data.params) == MAX_PARAMS + 50
    assert {f"t{i}" for i in range(MAX_TAGS + 50)} <= set(run.data.tags)


def test_child_runs_nest_under_their_parent_and_end_with_their_status(store: tuple[str, str]) -> None:
    uri, experiment = store
    writer = TrackingWriter(uri).start()
    writer.create_run("parent", experiment, "sweep", {})
    writer.create_run("child", experiment, "t001", {}, parent_key="parent")
    writer.log_text("child", "boom\n", "error.txt")
    writer.end_run("child", "FAILED")
    writer.end_run("parent", "KILLED")
    assert writer.close(timeout=60) == 0
    client = MlflowClient(uri)
    child = client.get_run(writer.run_id("child"))
    assert child.data.tags["mlflow.parentRunId"] == writer.run_id("parent")
    assert child.info.status == "FAILED"
    assert client.get_run(writer.run_id("parent")).info.status == "KILLED"
    assert [a.path for a in client.list_artifacts(child.info.run_id)] == ["error.txt"]


def test_a_known_run_is_reopened_not_duplicated(store: tuple[str, str]) -> None:
    uri, experiment = store
    client = MlflowClient(uri)
    existing = client.create_run(experiment, run_name="t001").info.run_id
    client.set_terminated(existing, "KILLED")
    writer = TrackingWriter(uri, known_runs={"a": existing}).start()
    writer.create_run("a", experiment, "t001", {})
    writer.log("a", metrics={"loss": 0.5}, step=3)
    writer.close(timeout=60)
    assert client.get_run(existing).info.status == "RUNNING"
    assert len(client.search_runs([experiment])) == 1


def test_a_refused_record_is_dropped_with_a_warning_and_the_rest_written(
    store: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    uri, experiment = store
    writer = TrackingWriter(uri, flush_interval=0).start()
    writer.create_run("a", experiment, "t001", {})
    writer.log("a", params={"batch_size": 32})
    writer.flush(timeout=60)
    with caplog.at_level(logging.WARNING, logger="sweeps.tracking"):
        writer.log("a", metrics={"loss": 1.0}, step=1)
        writer.log("a", params={"batch_size": 64})  # MLflow params are immutable: refused
        writer.log("a", metrics={"loss": 0.5}, step=2)
        writer.close(timeout=60)
    assert writer.dropped == 1
    assert "refused a record of run a" in caplog.text
    client = MlflowClient(uri)
    run_id = writer.run_id("a")
    assert [m.step for m in client.get_metric_history(run_id, "loss")] == [1, 2]
    assert client.get_run(run_id).data.params["batch_size"] == "32"


def test_bounded_buffer_makes_the_caller_wait_and_close_reports_what_was_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    uri = f"http://127.0.0.1:{free_port()}"  # nobody answers here
    writer = TrackingWriter(
        uri, known_runs={"a": "0" * 32}, capacity=3, flush_interval=0, max_retry_interval=0.2
    ).start()
    blocked = threading.Event()
    with caplog.at_level(logging.WARNING, logger="sweeps.tracking"):
        for step in range(3):
            writer.log("a", metrics={"loss": 1.0}, step=step)

        def fourth() -> None:
            writer.log("a", metrics={"loss": 1.0}, step=3)
            blocked.set()

        thread = threading.Thread(target=fourth, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while "does not answer" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        assert "does not answer" in caplog.text and "buffer is full" in caplog.text
        assert not blocked.is_set(), "the full buffer must hold the caller back"
        assert writer.pending == 3
        assert writer.close(timeout=1) == 3
        thread.join(timeout=5)
    assert blocked.is_set(), "closing releases a waiting caller"
    assert "3 MLflow records could not be written" in caplog.text
    assert "dropped a record for run a" in caplog.text  # the one that waited


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("capacity", 0, "capacity >= 1"),
        ("flush_interval", -1.0, "flush_interval"),
        ("max_retry_interval", 0.0, "max_retry_interval"),
    ],
)
def test_invalid_options_are_refused(option: str, value: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrackingWriter("sqlite:///unused.db", **{option: value})


def test_runs_carry_the_trials_own_start_and_end_times_not_the_writers(store: tuple[str, str]) -> None:
    uri, experiment = store
    writer = TrackingWriter(uri, flush_interval=2.0).start()
    started = int(time.time() * 1000)
    writer.create_run("a", experiment, "t001", {})
    time.sleep(0.5)
    ended = int(time.time() * 1000)
    writer.end_run("a", "FINISHED")
    writer.close(timeout=60)
    run = MlflowClient(uri).get_run(writer.run_id("a"))
    assert started <= run.info.start_time <= started + 100
    assert ended <= run.info.end_time <= ended + 100


class _CallCounter:
    """Counts the MLflow client calls the writer makes (the calls themselves are real)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, dict[str, object]]] = []
        for name in ("create_run", "log_batch", "set_terminated"):
            real = getattr(MlflowClient, name)

            def counted(
                client: MlflowClient, *args: object, _real: Any = real, _name: str = name, **kwargs: object
            ) -> object:
                self.calls.append((_name, kwargs))
                return _real(client, *args, **kwargs)

            monkeypatch.setattr(MlflowClient, name, counted)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def test_a_new_run_takes_the_tags_logged_after_its_start_at_creation(
    store: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    uri, experiment = store
    counter = _CallCounter(monkeypatch)
    writer = TrackingWriter(uri)  # everything buffered before the thread starts: one flush
    writer.create_run("a", experiment, "t001", {"sweep.state": "running", "role": "trial"})
    writer.log("a", params={"batch_size": 32})
    writer.log_steps("a", [(1, {"loss": 1.0}), (2, {"loss": 0.5})], tags={"sweep.node": "n1"})
    writer.log("a", tags={"sweep.state": "completed"})
    writer.end_run("a", "FINISHED")
    writer.start()
    assert writer.close(timeout=60) == 0
    assert counter.names() == ["create_run", "log_batch", "set_terminated"]
    assert not counter.calls[1][1]["tags"], "the tags went with the run's creation"
    client = MlflowClient(uri)
    run = client.get_run(str(writer.run_id("a")))
    assert {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")} == {
        "sweep.state": "completed",
        "role": "trial",
        "sweep.node": "n1",
    }
    assert run.data.params == {"batch_size": "32"} and run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [1, 2]


@pytest.mark.parametrize("bad", ["bad!", "../bad", "/bad", "b" * 251, "."])
def test_a_refused_tag_logged_after_the_start_still_lets_the_run_be_created(
    store: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
    bad: str,
) -> None:
    uri, experiment = store
    writer = TrackingWriter(uri)
    writer.create_run("a", experiment, "t001", {"role": "trial"})
    writer.log("a", tags={"good": "1"})
    writer.log("a", tags={bad: "1"})  # log_batch refuses the name (create_run would not check it)
    writer.log("a", metrics={"loss": 1.0}, step=1)
    writer.start()
    with caplog.at_level(logging.WARNING, logger="sweeps.tracking"):
        assert writer.close(timeout=60) == 0
    assert writer.dropped == 1 and "refused a record of run a" in caplog.text
    run = MlflowClient(uri).get_run(str(writer.run_id("a")))
    assert run.data.tags["good"] == "1" and run.data.tags["role"] == "trial" and bad not in run.data.tags
    assert run.data.metrics == {"loss": 1.0}


FULL_STORE = r"""
import logging, sys, time
from pathlib import Path
from mlflow.tracking import MlflowClient
from sweeps.tracking.writer import TrackingWriter
from tests.runner.filling_driver import fill

folder = Path(sys.argv[1])
uri = f"sqlite:///{folder / 'mlflow.db'}"
experiment = MlflowClient(uri).create_experiment("full", artifact_location=(folder / "art").as_uri())
seen = []
writer = TrackingWriter(uri, flush_interval=0, on_disk_error=seen.append).start()
writer.create_run("a", experiment, "t001", {})
assert writer.flush(timeout=60)
fill(folder)
for step in range(2000):
    writer.log("a", metrics={"loss": float(step), "x" * 200: 1.0}, step=step)
started = time.monotonic()
while not seen and time.monotonic() - started < 60:
    time.sleep(0.05)
closed = time.monotonic()
lost = writer.close(timeout=120)
print(len(seen), type(seen[0]).__name__ if seen else None, lost > 0, round(time.monotonic() - closed))
"""


def test_a_full_local_store_is_told_once_and_not_waited_on(tmp_path: Path) -> None:
    """Issue 24, 1: MLflow's SQLite on a full disk is the sweep's storage full, not an outage:
    the writer tells the sweep once, logs no "does not answer" and no MLflow traceback, and
    waits 10 s at close, not 120 s. A real 4 MiB tmpfs in a user+mount namespace."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    folder = tmp_path / "store"
    folder.mkdir()
    done = subprocess.run(
        [
            "unshare",
            "-rm",
            "sh",
            "-c",
            'mount -t tmpfs -o size=4m tmpfs "$1" && shift && exec "$@"',
            "sh",
            str(folder),
            sys.executable,
            "-c",
            FULL_STORE,
            str(folder),
        ],
        check=False,
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    told, kind, lost, waited = done.stdout.split()
    # MLflow 3.17 wraps SQLite's "database or disk is full" in an MlflowException (500).
    assert told == "1" and kind in ("MlflowException", "OperationalError") and lost == "True", done.stdout
    assert int(waited) <= 12
    assert "does not answer" not in done.stderr and "Traceback" not in done.stderr, done.stderr[-3000:]
