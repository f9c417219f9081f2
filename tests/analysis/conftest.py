"""One small real sweep, tracked in MLflow, shared by every analysis test (Ray started once)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import small_spec

SWEEP_NAME = "analysed"


@dataclass(frozen=True)
class FinishedSweep:
    storage: Path
    name: str
    summary: Any  # sweeps.runner.runner.SweepSummary, as `sweep run` saw it


@pytest.fixture(scope="session")
def finished_sweep(ray_session: Any, tmp_path_factory: pytest.TempPathFactory) -> FinishedSweep:
    """A digits sweep of 8 trials (batch size 64/128, 1-3 epochs) with ASHA at 10, 20, 40 iterations."""
    from sweeps.ray_backend import RayBackend
    from sweeps.runner.runner import RunOptions, run_sweep
    from sweeps.spec.loading import load_spec

    folder = tmp_path_factory.mktemp("analysis")
    storage = folder / "results"
    spec = small_spec(name=SWEEP_NAME, num_samples=8, storage=str(storage))
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    summary = run_sweep(load_spec(path), RunOptions(RayBackend(), live=False))
    assert sum(summary.trials.values()) == 8, summary.trials
    return FinishedSweep(storage, SWEEP_NAME, summary)


@pytest.fixture(scope="session")
def sweep_data(finished_sweep: FinishedSweep) -> Any:
    from sweeps.analysis import load

    return load(finished_sweep.name, storage=finished_sweep.storage)
