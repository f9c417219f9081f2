"""ASHA's rungs rebuilt from the result journal, as Ray's bracket would have recorded them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sweeps.plan.planner import plan_spec
from sweeps.runner.rungs import seed_asha_rungs
from sweeps.search.scheduler import make_scheduler
from sweeps.spec.loading import load_spec
from tests.conftest import small_spec


def scheduler_for(tmp_path: Path, mode: str) -> tuple[object, list[float]]:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(small_spec(mode=mode, scheduler={"type": "asha", "grace_period": 10,
                                                                    "reduction_factor": 2}), sort_keys=False))
    loaded = load_spec(path, [])
    _, plan = plan_spec(loaded)
    return make_scheduler(loaded.spec, plan), plan.milestones()


@pytest.mark.parametrize("mode, sign", [("max", 1.0), ("min", -1.0)])
def test_each_trial_is_recorded_at_each_milestone_it_passed(tmp_path: Path, mode: str, sign: float) -> None:
    scheduler, milestones = scheduler_for(tmp_path, mode)
    journal = {
        "a": [{"iteration": 10, "val_accuracy": 0.5}, {"iteration": 12, "val_accuracy": 0.6},
              {"iteration": 20, "val_accuracy": 0.7}, {"iteration": 24, "val_accuracy": 0.8}],
        "b": [{"iteration": 10, "val_accuracy": 0.4}],
        "c": [{"iteration": 10, "val_accuracy": float("nan"), "diverged": True}],
    }
    assert seed_asha_rungs(scheduler, journal, "val_accuracy", mode, "iterations") == 3
    rungs = {milestone: recorded for milestone, recorded in scheduler._brackets[0]._rungs}
    assert rungs[10] == {"a": sign * 0.5, "b": sign * 0.4}  # the first result at or past 10
    assert rungs[20] == {"a": sign * 0.7}
    assert 10 in milestones and 20 in milestones


def test_no_scheduler_means_nothing_to_rebuild(tmp_path: Path) -> None:
    from ray.tune.schedulers import FIFOScheduler

    assert seed_asha_rungs(FIFOScheduler(), {"a": [{"iteration": 10, "val_accuracy": 1.0}]},
                           "val_accuracy", "max", "iterations") == 0
