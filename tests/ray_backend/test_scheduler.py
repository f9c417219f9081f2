"""ASHA as Tune runs it: the plan's milestones, the budget unit, and rungs replayed from the journal."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from sweeps.backend import SweepJob
from sweeps.backend.resume import ResumeState
from sweeps.plan.planner import plan_spec
from sweeps.ray_backend.bridge import StopBridge
from sweeps.ray_backend.scheduler import AshaScheduler, make_scheduler
from sweeps.ray_backend.tuner import make_tuner
from sweeps.search.truthful_study import open_truthful_study
from sweeps.spec.loading import load_spec
from sweeps.store.state import sweep_paths
from sweeps.store.study_records import BACKEND_TRIAL_ID_ATTR, STOPPED_ATTR, recorded_brackets
from tests.conftest import small_spec


def scheduler_for(tmp_path: Path, mode: str, budget: str = "iterations") -> tuple[AshaScheduler, list[float]]:
    path = tmp_path / "spec.yaml"
    path.write_text(
        yaml.safe_dump(
            small_spec(
                mode=mode,
                scheduler={"type": "asha", "grace_period": 10, "reduction_factor": 2, "budget": budget},
            ),
            sort_keys=False,
        )
    )
    loaded = load_spec(path, [])
    _, plan = plan_spec(loaded)
    scheduler = make_scheduler(loaded.spec, plan)
    assert isinstance(scheduler, AshaScheduler)
    return scheduler, plan.milestones()


@pytest.mark.parametrize("mode, sign", [("max", 1.0), ("min", -1.0)])
def test_a_resumed_sweep_s_rungs_are_replayed_from_the_journal(
    tmp_path: Path, mode: str, sign: float
) -> None:
    scheduler, milestones = scheduler_for(tmp_path, mode)
    journal = {
        "a": [
            {"iteration": 10, "val_accuracy": 0.5},
            {"iteration": 12, "val_accuracy": 0.6},
            {"iteration": 20, "val_accuracy": 0.7},
            {"iteration": 24, "val_accuracy": 0.8},
        ],
        "b": [{"iteration": 10, "val_accuracy": 0.4}],
        "c": [{"iteration": 10, "val_accuracy": float("nan"), "diverged": True}],
    }
    assert scheduler.rungs.replay(journal, "val_accuracy", "iterations") == 3
    rungs = {rung.milestone: rung.recorded for rung in scheduler.rungs.rungs}
    assert rungs[10] == {"a": sign * 0.5, "b": sign * 0.4}  # the first result at or past 10
    assert rungs[20] == {"a": sign * 0.7}
    assert sorted(rungs) == sorted(milestones)


def test_the_scheduler_reads_the_budget_unit_and_ignores_results_without_it(tmp_path: Path) -> None:
    scheduler, _ = scheduler_for(tmp_path, "max", budget="samples")
    trial = SimpleNamespace(trial_id="a")
    assert (
        scheduler.on_trial_result(None, trial, {"iteration": 50, "val_accuracy": 0.1})
        == TrialScheduler.CONTINUE
    )
    assert scheduler.rungs.rungs[-1].recorded == {}  # no samples_seen: nothing recorded
    milestone = scheduler.rungs.rungs[-1].milestone
    assert (
        scheduler.on_trial_result(None, trial, {"samples_seen": milestone, "val_accuracy": 0.9})
        == TrialScheduler.CONTINUE
    )
    assert scheduler.rungs.rungs[-1].recorded == {"a": 0.9}
    worse = SimpleNamespace(trial_id="b")
    assert (
        scheduler.on_trial_result(None, worse, {"samples_seen": milestone, "val_accuracy": 0.1})
        == TrialScheduler.STOP
    )


def test_no_asha_means_fifo(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(small_spec(scheduler={"type": "none"}), sort_keys=False))
    loaded = load_spec(path, [])
    _, plan = plan_spec(loaded)
    assert type(make_scheduler(loaded.spec, plan)) is FIFOScheduler


def test_brackets_are_drawn_once_per_trial_recorded_in_the_study_and_shown_with_the_stop(
    tmp_path: Path,
) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(
        yaml.safe_dump(
            small_spec(
                storage=str(tmp_path / "results"),
                seed=3,
                scheduler={"type": "asha", "grace_period": 10, "reduction_factor": 2, "brackets": 2},
            ),
            sort_keys=False,
        )
    )
    loaded = load_spec(path, [])
    _, plan = plan_spec(loaded)
    scheduler = make_scheduler(loaded.spec, plan)
    assert isinstance(scheduler, AshaScheduler) and len(scheduler.rungs.brackets) == 2
    paths = sweep_paths(loaded.spec.storage, loaded.spec.name)
    paths.directory.mkdir(parents=True)
    study = open_truthful_study(loaded.spec, paths)
    scheduler.recorder = study
    trials = {f"t{i}": SimpleNamespace(trial_id=f"t{i}") for i in range(8)}
    for trial_id, trial in trials.items():
        study.ask(trial_id)  # Tune asks the searcher for the config before it adds the trial
        scheduler.on_trial_add(None, trial)
    drawn = dict(scheduler.rungs.assignments)
    assert set(drawn.values()) == {0, 1}
    scheduler.on_trial_add(None, trials["t0"])  # a retried trial is added again: it keeps its bracket
    assert scheduler.rungs.assignments == drawn
    assert recorded_brackets(study.study.get_trials()) == drawn
    assert all(scheduler.notes(t) == {"bracket": b} for t, b in drawn.items())

    in_first = [t for t, b in drawn.items() if b == 0]
    milestone = scheduler.rungs.brackets[0].rungs[-1].milestone  # the first bracket's first rung
    assert (
        scheduler.on_trial_result(None, trials[in_first[0]], {"iteration": milestone, "val_accuracy": 0.9})
        == "CONTINUE"
    )
    assert (
        scheduler.on_trial_result(
            None, trials[in_first[1]], {"iteration": milestone + 1, "val_accuracy": 0.2}
        )
        == "STOP"
    )
    why = {"stopped_at_rung": milestone, "rung_value": 0.2, "rung_cutoff": 0.9}
    assert scheduler.notes(in_first[1]) == {"bracket": 0, **why}
    frozen = {t.user_attrs[BACKEND_TRIAL_ID_ATTR]: t for t in study.study.get_trials()}
    assert frozen[in_first[1]].user_attrs[STOPPED_ATTR] == why
    # Its end, told to the scheduler as Tune does, changes nothing of the record.
    scheduler.on_trial_complete(None, trials[in_first[1]], {"iteration": milestone + 1, "val_accuracy": 0.2})
    assert scheduler.notes(in_first[1]) == {"bracket": 0, **why}


def test_a_resumed_job_judges_each_trial_in_the_bracket_recorded_for_it_not_a_new_draw(
    tmp_path: Path,
) -> None:
    """The tuner of a resumed sweep (Ray is not started to build it) replays the journal into
    the recorded brackets: the kill test cannot tell, as a trial's draw depends only on the
    seed and its position, which a resume usually repeats."""
    path = tmp_path / "spec.yaml"
    path.write_text(
        yaml.safe_dump(
            small_spec(
                storage=str(tmp_path / "results"),
                scheduler={"type": "asha", "grace_period": 10, "reduction_factor": 2, "brackets": 2},
            ),
            sort_keys=False,
        )
    )
    loaded = load_spec(path, [])
    resolved, plan = plan_spec(loaded)
    paths = sweep_paths(loaded.spec.storage, loaded.spec.name)
    paths.directory.mkdir(parents=True)
    scheduler = make_scheduler(loaded.spec, plan)
    assert isinstance(scheduler, AshaScheduler)
    recorded = {
        "ta": 1 - scheduler.rungs.draw(0),
        "tb": 1 - scheduler.rungs.draw(1),
    }  # what no fresh draw gives
    journal = {"ta": [{"iteration": 40, "val_accuracy": 0.5}], "tb": [{"iteration": 40, "val_accuracy": 0.4}]}
    job = SweepJob(
        loaded.spec,
        plan,
        resolved,
        paths,
        concurrency=1,
        trials_to_create=0,
        resume=ResumeState(restore=False, journal=journal, brackets=recorded),
    )
    make_tuner(job, [], StopBridge([]), [], scheduler)
    assert scheduler.rungs.assignments == recorded
    by_bracket = [{r.milestone: r.recorded for r in bracket.rungs} for bracket in scheduler.rungs.brackets]
    assert by_bracket[recorded["ta"]][40] == {"ta": 0.5} and by_bracket[recorded["tb"]][40] == {"tb": 0.4}
