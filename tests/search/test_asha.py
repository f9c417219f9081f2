"""ASHA's rungs and decisions (fast: no Ray runs), checked by hand and against Ray's own scheduler.

Parametrised over the budget units and both modes, as Optuna's tests of its
successive-halving pruner are.
"""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from sweeps.iterations import BUDGET_RESULT_KEY
from sweeps.plan.asha import rung_milestones
from sweeps.search.asha import CONTINUE, STOP, AshaRungs

UNITS = ["iterations", "samples", "epochs"]
#: A budget step per unit: epochs are fractional, samples come in batches.
STEP = {"iterations": 1.0, "samples": 32.0, "epochs": 0.25}


def rungs_for(unit: str, mode: str, grace: float = 4, max_t: float = 100, eta: float = 2) -> AshaRungs:
    scale = STEP[unit]
    return AshaRungs(rung_milestones(grace * scale, max_t * scale, eta), eta, max_t * scale, mode)


@pytest.mark.parametrize("mode", ["max", "min"])
@pytest.mark.parametrize("unit", UNITS)
def test_the_first_trial_at_a_rung_continues_and_a_worse_one_stops(unit: str, mode: str) -> None:
    rungs = rungs_for(unit, mode)
    at = 4 * STEP[unit]
    good, bad = (0.9, 0.1) if mode == "max" else (0.1, 0.9)
    assert rungs.decide("a", at, good) == CONTINUE  # an empty rung has no cutoff
    assert rungs.decide("b", at, bad) == STOP
    assert rungs.decide("c", at, good) == CONTINUE  # as good as the best: at or above the cutoff


@pytest.mark.parametrize("unit", UNITS)
def test_a_result_between_milestones_is_recorded_once_in_the_rung_it_passed(unit: str) -> None:
    rungs = rungs_for(unit, "max")
    rungs.decide("a", 5 * STEP[unit], 0.5)  # past the first milestone (4), below the second (8)
    rungs.decide("a", 6 * STEP[unit], 0.9)  # the same rung again: not recorded twice
    first = rungs.rungs[-1]
    assert first.milestone == 4 * STEP[unit] and first.recorded == {"a": 0.5}
    assert all(not r.recorded for r in rungs.rungs[:-1])


def test_a_result_past_two_milestones_counts_in_the_highest_only() -> None:
    rungs = rungs_for("iterations", "max")
    rungs.decide("a", 9, 0.5)  # past 4 and 8
    by_milestone = {r.milestone: r.recorded for r in rungs.rungs}
    assert by_milestone[8] == {"a": 0.5} and by_milestone[4] == {}


def test_max_t_stops_a_trial_whatever_its_value() -> None:
    rungs = rungs_for("iterations", "max", max_t=100)
    assert rungs.decide("a", 100, 1.0) == STOP


def test_the_cutoff_is_the_top_1_over_eta_quantile_and_ignores_nan() -> None:
    rungs = rungs_for("iterations", "max", eta=3)
    for trial, value in zip("abc", [0.1, 0.2, 0.3]):
        rungs.decide(trial, 4, value)
    rungs.decide("d", 4, float("nan"))
    assert rungs.cutoff(rungs.rungs[-1]) == pytest.approx(0.2 + (0.3 - 0.2) * 1 / 3)


@pytest.mark.parametrize("mode", ["max", "min"])
@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("seed", range(5))
def test_every_decision_matches_ray_s_asha(unit: str, mode: str, seed: int) -> None:
    """Random trials reporting at random budgets: the same decisions as Ray's ASHAScheduler."""
    generator = random.Random(seed)
    scale, eta = STEP[unit], generator.choice([2, 3, 4])
    grace, max_t = 2 * scale, 60 * scale
    ours = AshaRungs(rung_milestones(grace, max_t, eta), eta, max_t, mode)
    time_attr = BUDGET_RESULT_KEY[unit]
    ray = ASHAScheduler(time_attr=time_attr, metric="m", mode=mode, grace_period=grace,  # type: ignore[arg-type]
                        max_t=max_t, reduction_factor=eta)  # type: ignore[arg-type]
    trials = {f"t{i}": 0.0 for i in range(12)}
    running = set(trials)
    for trial_id in trials:
        ray.on_trial_add(None, SimpleNamespace(trial_id=trial_id))  # type: ignore[arg-type]
    while running:
        trial_id = generator.choice(sorted(running))
        trials[trial_id] += generator.choice([1, 2, 3, 5]) * scale
        value = generator.random()
        expected = ray.on_trial_result(None, SimpleNamespace(trial_id=trial_id), {time_attr: trials[trial_id], "m": value})  # type: ignore[arg-type]
        got = ours.decide(trial_id, trials[trial_id], value)
        assert got == (STOP if expected == TrialScheduler.STOP else CONTINUE), (trial_id, trials[trial_id], value)
        if got == STOP:
            running.discard(trial_id)


@pytest.mark.parametrize("unit", UNITS)
def test_replaying_a_journal_rebuilds_the_rungs_the_live_sweep_had(unit: str) -> None:
    live = rungs_for(unit, "max")
    key = BUDGET_RESULT_KEY[unit]
    journal: dict[str, list[dict[str, float]]] = {}
    generator = random.Random(7)
    for trial_id in ("a", "b", "c", "d"):
        spent = 0.0
        for _ in range(8):
            spent += generator.choice([1, 3]) * STEP[unit]
            value = generator.random()
            journal.setdefault(trial_id, []).append({key: spent, "val": value})
            if live.decide(trial_id, spent, value) == STOP:
                break
    replayed = rungs_for(unit, "max")
    replayed.replay(journal, "val", unit)
    assert [r.recorded for r in replayed.rungs] == [r.recorded for r in live.rungs]
