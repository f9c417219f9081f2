"""Shared fixtures: one real Ray session for the whole test session, and small specs."""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "sweeps" / "examples"


@pytest.fixture(scope="session")
def ray_session() -> Any:
    """A real local Ray, started once; `run_sweep` reuses an initialised Ray."""
    import ray

    from sweeps.ray_backend.embedded import only_what_a_sweep_needs

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # address="local": a Ray of its own, never a `ray start` (or a stale record of one) found
    # on this machine. Without the monitor, log monitor and dashboard that the embedded Ray
    # leaves out too: in a half-hour test session the log monitor alone spent about 30 CPU-s.
    with only_what_a_sweep_needs():
        ray.init(
            address="local",
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            logging_level="ERROR",
            runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}},
        )
    yield ray
    ray.shutdown()


def small_spec(**changes: Any) -> dict[str, Any]:
    """A digits sweep small enough to finish in a few seconds on 2 CPUs."""
    spec: dict[str, Any] = {
        "name": "tiny",
        "trainable": "digits_mlp",
        "metric": "val_accuracy",
        "mode": "max",
        "num_samples": 6,
        "seed": 0,
        "search_space": {
            "batch_size": {"type": "categorical", "values": [64, 128]},
            "epochs": {"type": "int", "low": 1, "high": 3},
            "learning_rate": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
        },
        "scheduler": {"type": "asha", "grace_period": 10, "reduction_factor": 2},
        "resources": {"cpu": 1, "gpu": 0},
    }
    for key, value in changes.items():
        node = spec
        parts = key.split("__")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return spec


@dataclass(frozen=True)
class TradeoffSweep:
    storage: Path
    name: str
    summary: dict[str, Any]  # what `sweep run --json` printed


@pytest.fixture(scope="session")
def tradeoff_sweep(ray_session: Any, tmp_path_factory: pytest.TempPathFactory) -> TradeoffSweep:
    """One real two-objective sweep (`sweep run --json`: local Ray, MOASHA, MLflow, a constraint),
    shared by its end-to-end test (tests/cli/test_run.py) and the Pareto front notebook's."""
    from sweeps.cli import main

    folder = tmp_path_factory.mktemp("tradeoff")
    spec = small_spec(
        name="tradeoff",
        storage=str(folder / "results"),
        num_samples=6,
        metric=["val_accuracy", "train_loss"],
        mode=["max", "min"],
        constraints=["val_loss <= 1000"],
        tracking={"log_model": False},
    )
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):  # the CLI holds sys.stdout for its one JSON line
        code = main(["run", str(path), "--json"])
    assert code == 0, out.getvalue()
    return TradeoffSweep(folder / "results", "tradeoff", json.loads(out.getvalue().strip().splitlines()[-1]))


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    """Write ``small_spec(**changes)`` (``a__b=v`` sets ``a.b``) under tmp_path; storage there too."""

    def write(filename: str = "spec.yaml", **changes: Any) -> Path:
        spec = small_spec(storage=str(tmp_path / "results"), **changes)
        path = tmp_path / filename
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        return path

    return write


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[Any]) -> None:
    """The longest test files first (tests/file_durations.py says why)."""
    from tests.file_durations import order_by_file_duration, read_table

    items[:] = order_by_file_duration(items, read_table())
