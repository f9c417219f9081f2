"""Where a sweep logs, and the clear error (exit 2, no trial) when nobody answers there."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sweeps.cli import main
from sweeps.errors import TrackingError
from sweeps.spec.loading import load_spec
from sweeps.store.state import sweep_paths
from sweeps.tracking.preflight import preflight, tracking_uri, wait_for_store
from tests.tracking.conftest import free_port


def test_no_uri_means_the_embedded_sqlite_store_under_storage(write_spec: Callable[..., Path]) -> None:
    loaded = load_spec(write_spec(), [])
    paths = sweep_paths(loaded.spec.storage, loaded.spec.name)
    assert tracking_uri(loaded.spec, paths) == f"sqlite:///{paths.storage / 'mlflow.db'}"
    assert preflight(loaded.spec, paths, loaded.source) == tracking_uri(loaded.spec, paths)
    wait_for_store(tracking_uri(loaded.spec, paths))  # preflight opened it on a thread
    assert (paths.storage / "mlflow.db").is_file()


def test_tracking_uri_override_points_elsewhere(write_spec: Callable[..., Path]) -> None:
    loaded = load_spec(write_spec(), ["tracking.uri=http://127.0.0.1:5999"])
    assert (
        tracking_uri(loaded.spec, sweep_paths(loaded.spec.storage, loaded.spec.name))
        == "http://127.0.0.1:5999"
    )


def test_unreachable_server_fails_before_any_trial_with_exit_2(
    write_spec: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = write_spec()
    uri = f"http://127.0.0.1:{free_port()}"
    assert main(["run", str(spec), "--tracking-uri", uri, "--json"]) == 2
    err = capsys.readouterr().err
    assert "tracking.uri" in err and uri in err and "No trial was started" in err
    assert "Traceback" not in err
    # Nothing was claimed or started: no sweep folder, no Ray results.
    assert not (spec.parent / "results" / "tiny").exists()


@pytest.fixture
def not_mlflow() -> Iterator[str]:
    """A real HTTP server that is not MLflow: every path answers 404."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_server_that_is_not_mlflow_is_refused(write_spec: Callable[..., Path], not_mlflow: str) -> None:
    loaded = load_spec(write_spec(), [f"tracking.uri={not_mlflow}"])
    with pytest.raises(TrackingError, match=r"HTTP 501 from .*/health"):
        preflight(loaded.spec, sweep_paths(loaded.spec.storage, loaded.spec.name), loaded.source)


@pytest.mark.slow
def test_disabled_tracking_needs_no_server(write_spec: Callable[..., Path], ray_session: Any) -> None:
    from sweeps.ray_backend import RayBackend
    from sweeps.runner.runner import RunOptions, run_sweep

    uri = f"http://127.0.0.1:{free_port()}"
    loaded = load_spec(write_spec(num_samples=2), [f"tracking.uri={uri}", "tracking.enabled=false"])
    summary = run_sweep(loaded, RunOptions(RayBackend(), live=False))
    assert sum(summary.trials.values()) == 2
    paths = sweep_paths(loaded.spec.storage, loaded.spec.name)
    assert not (paths.directory / "mlflow_runs.json").exists()
    assert not (paths.storage / "mlflow.db").exists()
