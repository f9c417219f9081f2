"""What each Ray trial's worker is told of the sweep, and the contract its context then holds
the trainable to: every objective and every constrained metric in each report (no Ray started)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sweeps.backend import SweepJob
from sweeps.errors import MetricNotReportedError
from sweeps.plan.planner import plan_spec
from sweeps.ray_backend.tuner import trial_settings
from sweeps.ray_backend.worker import RayTrialContext, TrialSettings, worker_context
from sweeps.spec.loading import load_spec
from sweeps.store.state import sweep_paths
from tests.conftest import small_spec

CONFIG = {"batch_size": 64, "epochs": 1, "learning_rate": 0.01}


def settings_for(tmp_path: Path, **changes: object) -> TrialSettings:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(small_spec(storage=str(tmp_path / "results"), **changes), sort_keys=False))
    loaded = load_spec(path, [])
    resolved, plan = plan_spec(loaded)
    paths = sweep_paths(loaded.spec.storage, loaded.spec.name)
    return trial_settings(SweepJob(loaded.spec, plan, resolved, paths, concurrency=1, trials_to_create=1))


def context(settings: TrialSettings) -> RayTrialContext:
    return worker_context(RayTrialContext, settings, CONFIG, "t1", device="cpu", node_id="", restored=None)


def test_a_single_metric_sweep_demands_only_its_metric(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    assert settings.objectives == () and settings.constraint_metrics == ()
    with pytest.raises(MetricNotReportedError, match="never the sweep's metric `val_accuracy`"):
        context(settings).report(iteration=1, val_loss=0.5)


def test_a_trial_of_a_multi_objective_sweep_must_report_every_objective(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, metric=["val_accuracy", "latency_ms"], mode=["max", "min"])
    assert settings.objectives == ("val_accuracy", "latency_ms")
    with pytest.raises(MetricNotReportedError, match=r"objective\(s\) `latency_ms`.*`metric` and `mode`"):
        context(settings).report(iteration=1, val_accuracy=0.5)


def test_a_trial_of_a_constrained_sweep_must_report_every_constrained_metric(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path,
        metric=["val_accuracy", "latency_ms"],
        mode=["max", "min"],
        constraints=["memory_mb <= 100", "latency_ms <= 5", "memory_mb >= 1"],
    )
    assert settings.constraint_metrics == ("memory_mb", "latency_ms")
    with pytest.raises(
        MetricNotReportedError, match=r"never `memory_mb`, which the spec's `constraints` limit"
    ):
        context(settings).report(iteration=1, val_accuracy=0.5, latency_ms=3.0)
