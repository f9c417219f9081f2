"""The searcher's logic (sweeps/search/truthful_study.py) against a real Optuna study in tmp SQLite.

Pruned vs complete vs fail, intermediate values keyed by the budget unit, a step reported
twice kept once, and a resumed study re-attached to its trials. No Ray.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from sweeps.search.truthful_study import TruthfulStudy, open_truthful_study
from sweeps.spec.loading import validate_spec
from sweeps.spec.models import SweepSpec
from sweeps.store.state import sweep_paths
from sweeps.store.study_records import (
    BACKEND_TRIAL_ID_ATTR,
    LEGACY_TRIAL_ID_ATTR,
    RECORD_ATTR,
    backend_trial_id,
)
from tests.conftest import REPO, small_spec

TOTAL = 30  # the trial's own total_iterations in the points below


def make_spec(tmp_path: Path, **changes: Any) -> SweepSpec:
    raw = small_spec(storage=str(tmp_path), **changes)
    raw["search_space"]["epochs"] = 2  # a fixed value: the trial's config carries it, the study does not
    return validate_spec(raw, tmp_path / "spec.yaml").spec


def opened(tmp_path: Path, **changes: Any) -> TruthfulStudy:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = make_spec(tmp_path, **changes)
    paths = sweep_paths(tmp_path, spec.name)
    paths.directory.mkdir(parents=True, exist_ok=True)
    return open_truthful_study(spec, paths)


def point(iteration: int, value: float, batch_size: int = 64, **extra: Any) -> dict[str, Any]:
    return {
        "iteration": iteration,
        "samples_seen": iteration * batch_size,
        "epoch": iteration / 15,
        "total_iterations": TOTAL,
        "val_accuracy": value,
        **extra,
    }


def snapshot(trial: optuna.trial.FrozenTrial) -> str:
    """Every field of a trial as text (NaN equals NaN), the order of a dict's keys aside."""
    return repr(
        [
            (key, sorted(value.items()) if isinstance(value, dict) else value)
            for key, value in sorted(vars(trial).items())
        ]
    )


def reread(tmp_path: Path, number: int = 0) -> optuna.trial.FrozenTrial:
    """The trial as a fresh reader of the SQLite file sees it (nothing cached)."""
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'tiny' / 'optuna.db'}")
    return study.trials[number]


def test_ask_gives_a_config_of_the_space_with_the_fixed_values_and_binds_the_trial_id(tmp_path: Path) -> None:
    study = opened(tmp_path)
    config = study.ask("t1")
    assert (
        config["epochs"] == 2
        and config["batch_size"] in (64, 128)
        and 1e-3 <= config["learning_rate"] <= 1e-1
    )
    assert study.ask("t1") == config  # asked again (a retried trial): the same config, no new trial
    assert len(study.study.trials) == 1 and study.optuna_numbers == {"t1": 0}
    assert reread(tmp_path).user_attrs[BACKEND_TRIAL_ID_ATTR] == "t1"
    assert set(reread(tmp_path).params) == {"batch_size", "learning_rate"}


@pytest.mark.parametrize(
    ("budget", "steps"),
    [
        ("iterations", [10, 20]),
        ("samples", [640, 1280]),
        ("epochs", [10, 20]),  # epochs: Optuna steps are integers
    ],
)
def test_intermediate_values_are_keyed_by_the_budget_unit(
    tmp_path: Path, budget: str, steps: list[int]
) -> None:
    study = opened(tmp_path, scheduler__budget=budget)
    study.ask("t1")
    study.report("t1", [point(10, 0.5), point(20, 0.6)])
    assert reread(tmp_path).intermediate_values == {steps[0]: 0.5, steps[1]: 0.6}


def test_a_step_reported_twice_is_kept_once_with_its_first_value(tmp_path: Path) -> None:
    study = opened(tmp_path)
    study.ask("t1")
    study.report("t1", [point(10, 0.5)])
    study.report("t1", [point(10, 0.9), point(20, 0.6)])  # a trial restarted from its checkpoint at 10
    study.report("t1", [point(20, 0.7), point(20, 0.8)])
    assert reread(tmp_path).intermediate_values == {10: 0.5, 20: 0.6}


def test_diverged_points_and_points_without_the_metric_are_no_intermediate_value(tmp_path: Path) -> None:
    study = opened(tmp_path)
    study.ask("t1")
    without_metric = point(20, 0.0)
    del without_metric["val_accuracy"]
    study.report("t1", [point(10, 0.5), without_metric, point(30, float("nan"), diverged=True)])
    assert reread(tmp_path).intermediate_values == {10: 0.5}


@pytest.mark.parametrize(
    ("last", "error", "state", "value", "outcome"),
    [
        (point(TOTAL, 0.8), False, TrialState.COMPLETE, 0.8, "completed"),  # ran all its iterations
        # Stopped before its total (ASHA): Optuna keeps the last intermediate value as its value.
        (point(10, 0.4), False, TrialState.PRUNED, 0.4, "pruned"),
        (point(10, 0.4), True, TrialState.FAIL, None, "failed"),  # raised
        (
            point(12, float("nan"), diverged=True),
            False,
            TrialState.FAIL,
            None,
            "diverged",
        ),  # not a made-up worst value
    ],
)
def test_each_ending_is_told_to_optuna_truthfully(
    tmp_path: Path, last: dict[str, Any], error: bool, state: TrialState, value: float | None, outcome: str
) -> None:
    study = opened(tmp_path)
    study.ask("t1")
    study.report("t1", [point(5, 0.3)])
    study.finish("t1", [last], error=error)
    frozen = reread(tmp_path)
    assert frozen.state == state and frozen.value == value
    record = frozen.user_attrs[RECORD_ATTR]
    assert record["outcome"] == outcome and record["iteration"] == last["iteration"]
    assert record["total_iterations"] == TOTAL


def test_a_pruned_trial_keeps_the_value_it_was_pruned_on(tmp_path: Path) -> None:
    """The result on which ASHA stops a trial is not reported to the searcher first: finish records it."""
    study = opened(tmp_path)
    study.ask("t1")
    study.report("t1", [point(5, 0.3)])
    study.finish("t1", [point(10, 0.45)], error=False)
    frozen = reread(tmp_path)
    assert frozen.state == TrialState.PRUNED and frozen.intermediate_values == {5: 0.3, 10: 0.45}
    assert frozen.user_attrs[RECORD_ATTR]["value"] == 0.45


def test_an_ending_without_its_last_delivery_uses_the_last_report(tmp_path: Path) -> None:
    study = opened(tmp_path)
    study.ask("t1")
    study.report("t1", [point(TOTAL, 0.7)])
    study.finish("t1", None, error=False)
    assert (reread(tmp_path).state, reread(tmp_path).value) == (TrialState.COMPLETE, 0.7)
    study.ask("t2")  # never reported: nothing for the sampler to learn from
    study.finish("t2", None, error=False)
    assert reread(tmp_path, 1).state == TrialState.FAIL and reread(tmp_path, 1).user_attrs[RECORD_ATTR] == {
        "outcome": "failed"
    }


def test_after_its_end_a_trial_hears_nothing_more(tmp_path: Path) -> None:
    study = opened(tmp_path)
    study.ask("t1")
    study.finish("t1", [point(TOTAL, 0.8)], error=False)
    study.report("t1", [point(40, 0.1)])
    study.finish("t1", [point(10, 0.1)], error=True)
    study.report("unknown", [point(1, 0.1)])  # a trial the study never asked for
    study.finish("unknown", None, error=True)
    frozen = reread(tmp_path)
    assert (frozen.state, frozen.value, frozen.intermediate_values) == (
        TrialState.COMPLETE,
        0.8,
        {TOTAL: 0.8},
    )
    assert len(study.study.trials) == 1


@pytest.mark.parametrize(("mode", "direction"), [("max", "MAXIMIZE"), ("min", "MINIMIZE")])
def test_the_study_goes_the_specs_way(tmp_path: Path, mode: str, direction: str) -> None:
    assert opened(tmp_path, mode=mode).study.direction.name == direction


def test_a_resumed_study_is_reattached_to_its_trials(tmp_path: Path) -> None:
    first = opened(tmp_path)
    done, running = first.ask("done"), first.ask("running")
    first.finish("done", [point(TOTAL, 0.8)], error=False)
    first.report("running", [point(10, 0.5)])
    first.study.ask()  # a trial with no trial id yet (the driver died inside `ask`): not attached

    again = opened(tmp_path)  # a new driver on the same SQLite file
    assert again.optuna_numbers == {"done": 0, "running": 1}
    assert again.ask("done") == done and again.ask("running") == running  # no new trials
    assert len(again.study.trials) == 3
    # The running trial restarts from its checkpoint at 10 and reports 10 again: kept once.
    again.report("running", [point(10, 0.9), point(20, 0.6)])
    again.finish("done", [point(1, 0.0)], error=True)  # finished before: left as it was
    again.finish("running", [point(TOTAL, 0.7)], error=False)
    assert reread(tmp_path, 0).state == TrialState.COMPLETE and reread(tmp_path, 0).value == 0.8
    resumed = reread(tmp_path, 1)
    assert resumed.intermediate_values == {10: 0.5, 20: 0.6, TOTAL: 0.7}
    assert (resumed.state, resumed.value) == (TrialState.COMPLETE, 0.7)
    assert reread(tmp_path, 2).state == TrialState.RUNNING


_KILLED_DRIVER = """
import json, os, signal, sys
from pathlib import Path
from tests.search.test_truthful_study import TOTAL, opened, point, snapshot
study = opened(Path(sys.argv[1]))
study.ask("done")
study.report("done", [point(10, 0.5)])
study.finish("done", [point(TOTAL, 0.8)], error=False)
study.ask("pruned")
study.finish("pruned", [point(10, 0.4)], error=False)
study.ask("running")
study.report("running", [point(10, 0.3), point(20, 0.35)])
print(json.dumps([snapshot(t) for t in study.study.trials]), flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no close: what `kill -9` of the driver leaves
"""


def test_what_a_killed_driver_wrote_is_all_in_the_file(tmp_path: Path) -> None:
    """The study serves reads from memory (store/study_cache.py), but commits each write as it
    is made: a driver killed with SIGKILL leaves the file with every trial as the driver saw it."""
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_DRIVER, str(tmp_path)],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    seen_by_driver = json.loads(killed.stdout.strip().splitlines()[-1])
    on_file = [snapshot(reread(tmp_path, number)) for number in range(3)]
    assert on_file == seen_by_driver
    assert [reread(tmp_path, n).state for n in range(3)] == [
        TrialState.COMPLETE,
        TrialState.PRUNED,
        TrialState.RUNNING,
    ]
    assert reread(tmp_path, 2).intermediate_values == {10: 0.3, 20: 0.35}

    again = opened(tmp_path)  # the resumed driver: re-attached to every trial, nothing asked anew
    assert again.optuna_numbers == {"done": 0, "pruned": 1, "running": 2}
    again.report("running", [point(20, 0.9), point(TOTAL, 0.6)])
    again.finish("running", None, error=False)
    assert (reread(tmp_path, 2).state, reread(tmp_path, 2).intermediate_values) == (
        TrialState.COMPLETE,
        {10: 0.3, 20: 0.35, TOTAL: 0.6},
    )


def as_written_before_the_rename(study_file: Path) -> None:
    """Turn a study into one written before the trial id's attribute was neutral (``ray_trial_id``)."""
    import sqlite3

    with sqlite3.connect(study_file) as db:
        renamed = db.execute(
            "UPDATE trial_user_attributes SET key = ? WHERE key = ?",
            (LEGACY_TRIAL_ID_ATTR, BACKEND_TRIAL_ID_ATTR),
        ).rowcount
    assert renamed > 0


def test_a_study_written_with_the_old_attribute_name_is_resumed(tmp_path: Path) -> None:
    first = opened(tmp_path)
    done, running = first.ask("done"), first.ask("running")
    first.finish("done", [point(TOTAL, 0.8)], error=False)
    first.report("running", [point(10, 0.5)])
    as_written_before_the_rename(tmp_path / "tiny" / "optuna.db")
    assert LEGACY_TRIAL_ID_ATTR in reread(tmp_path, 1).user_attrs

    again = opened(tmp_path)  # read as the new name: every trial is re-attached, none asked anew
    assert again.optuna_numbers == {"done": 0, "running": 1}
    assert again.ask("done") == done and again.ask("running") == running and len(again.study.trials) == 2
    again.report("running", [point(10, 0.9), point(20, 0.6)])
    again.finish("running", [point(TOTAL, 0.7)], error=False)
    resumed = reread(tmp_path, 1)
    assert resumed.intermediate_values == {10: 0.5, 20: 0.6, TOTAL: 0.7}
    assert (resumed.state, resumed.value) == (TrialState.COMPLETE, 0.7)
    assert [backend_trial_id(t) for t in again.study.get_trials()] == ["done", "running"]
