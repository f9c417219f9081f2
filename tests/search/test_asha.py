"""ASHA's rungs and decisions (fast: no Ray runs), checked by hand and against Ray's own scheduler
(``promotion: ray``), a brute-force reference and Optuna's own pruner (``promotion: strict``).

Parametrised over the budget units and both modes, as Optuna's tests of its
successive-halving pruner are.
"""

from __future__ import annotations

import math
import random
from types import SimpleNamespace

import numpy as np
import optuna
import pytest
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from sweeps.iterations import BUDGET_RESULT_KEY
from sweeps.plan.asha import rung_milestones
from sweeps.search.asha import (
    AT_MAX_T,
    BELOW_CUTOFF,
    CONTINUE,
    RAY_RULE,
    STOP,
    STRICT_RULE,
    AshaBrackets,
    AshaRungs,
    asha_rungs_for,
)

UNITS = ["iterations", "samples", "epochs"]
#: A budget step per unit: epochs are fractional, samples come in batches.
STEP = {"iterations": 1.0, "samples": 32.0, "epochs": 0.25}


def rungs_for(unit: str, mode: str, grace: float = 4, max_t: float = 100, eta: float = 2) -> AshaRungs:
    scale = STEP[unit]
    return AshaRungs(
        rung_milestones(grace * scale, max_t * scale, eta), eta, max_t * scale, mode, promotion=RAY_RULE
    )


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
    for trial, value in zip("abc", [0.1, 0.2, 0.3], strict=False):
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
    ours = AshaRungs(rung_milestones(grace, max_t, eta), eta, max_t, mode, promotion=RAY_RULE)
    time_attr = BUDGET_RESULT_KEY[unit]
    ray = ASHAScheduler(
        time_attr=time_attr,
        metric="m",
        mode=mode,
        grace_period=grace,  # type: ignore[arg-type]
        max_t=max_t,
        reduction_factor=eta,
    )  # type: ignore[arg-type]
    trials = {f"t{i}": 0.0 for i in range(12)}
    running = set(trials)
    for trial_id in trials:
        ray.on_trial_add(None, SimpleNamespace(trial_id=trial_id))  # type: ignore[arg-type]
    while running:
        trial_id = generator.choice(sorted(running))
        trials[trial_id] += generator.choice([1, 2, 3, 5]) * scale
        value = generator.random()
        expected = ray.on_trial_result(
            None, SimpleNamespace(trial_id=trial_id), {time_attr: trials[trial_id], "m": value}
        )  # type: ignore[arg-type]
        got = ours.decide(trial_id, trials[trial_id], value)
        assert got == (STOP if expected == TrialScheduler.STOP else CONTINUE), (
            trial_id,
            trials[trial_id],
            value,
        )
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


def brackets_for(
    grace: float, max_t: float, eta: float, count: int, mode: str, seed: int = 0
) -> AshaBrackets:
    return AshaBrackets(
        [rung_milestones(grace, max_t, eta, s) for s in range(count)],
        eta,
        max_t,
        mode,
        seed,
        promotion=RAY_RULE,
    )


@pytest.mark.parametrize("mode", ["max", "min"])
@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("seed", range(4))
def test_every_decision_and_cutoff_matches_ray_s_asha_with_brackets(unit: str, mode: str, seed: int) -> None:
    """Ray's ASHAScheduler(brackets=K): each trial in the bracket Ray drew for it, the same decisions."""
    generator = random.Random(seed)
    scale, eta = STEP[unit], generator.choice([2, 3])
    grace, max_t, count = 2 * scale, 60 * scale, generator.choice([2, 3])
    ours = brackets_for(grace, max_t, eta, count, mode)
    time_attr = BUDGET_RESULT_KEY[unit]
    ray = ASHAScheduler(
        time_attr=time_attr,
        metric="m",
        mode=mode,
        grace_period=grace,  # type: ignore[arg-type]
        max_t=max_t,
        reduction_factor=eta,
        brackets=count,
    )  # type: ignore[arg-type]
    trials = {f"t{i}": 0.0 for i in range(16)}
    running = set(trials)
    np.random.seed(seed)  # Ray draws its brackets from numpy's global generator
    for trial_id in trials:
        ray.on_trial_add(None, SimpleNamespace(trial_id=trial_id))  # type: ignore[arg-type]
        ours.assign(trial_id, ray._brackets.index(ray._trial_info[trial_id]))
    assert len(set(ours.assignments.values())) > 1, "every trial in one bracket checks nothing of brackets"
    sign = 1.0 if mode == "max" else -1.0
    while running:
        trial_id = generator.choice(sorted(running))
        trials[trial_id] += generator.choice([1, 2, 3, 5]) * scale
        value = generator.random()
        ray_bracket = ray._trial_info[trial_id]
        # The cut-off Ray compares with: the rung this result lands in, before it is recorded.
        landing = next(
            (
                recorded
                for milestone, recorded in ray_bracket._rungs
                if trials[trial_id] >= milestone and trial_id not in recorded
            ),
            None,
        )
        ray_cutoff = ray_bracket.cutoff(landing) if landing is not None and trials[trial_id] < max_t else None
        expected = ray.on_trial_result(
            None, SimpleNamespace(trial_id=trial_id), {time_attr: trials[trial_id], "m": value}
        )  # type: ignore[arg-type]
        got = ours.judge(trial_id, trials[trial_id], value)
        assert got.action == (STOP if expected == TrialScheduler.STOP else CONTINUE), (
            trial_id,
            trials[trial_id],
            value,
        )
        assert got.bracket == ray._brackets.index(ray_bracket)
        if ray_cutoff is None:
            assert got.cutoff is None
        else:
            assert got.cutoff == pytest.approx(sign * float(ray_cutoff))
        if got.action == STOP:
            running.discard(trial_id)


@pytest.mark.parametrize("mode", ["max", "min"])
def test_a_pruned_trial_s_explanation_names_its_rung_value_and_the_cutoff_it_missed(mode: str) -> None:
    brackets = brackets_for(4, 100, 2, 1, mode)
    good, better, bad = (0.5, 0.9, 0.1) if mode == "max" else (0.5, 0.1, 0.9)
    assert brackets.judge("a", 4, good).explanation() == {}  # continued: nothing to explain
    brackets.judge("b", 4, better)
    stopped = brackets.judge("c", 5, bad)
    cutoff = stopped.cutoff
    assert stopped.action == STOP and cutoff is not None
    assert stopped.bracket == 0
    assert stopped.explanation() == {"stopped_at_rung": 4, "rung_value": bad, "rung_cutoff": cutoff}
    # The value it had to reach lies between the two recorded, nearer the better (top 1/η).
    assert min(good, better) < cutoff < max(good, better)
    assert (bad < cutoff) if mode == "max" else (bad > cutoff)
    spent = brackets.judge("a", 100, good)
    assert spent.action == STOP and spent.reason == AT_MAX_T and spent.explanation() == {}


def test_brackets_are_drawn_with_ray_s_probabilities_and_the_same_seed_draws_the_same() -> None:
    brackets = brackets_for(1, 81, 3, 3, "max", seed=11)
    for i in range(3000):
        brackets.assign(f"t{i}")
    counts = [list(brackets.assignments.values()).count(s) for s in range(3)]
    for count, probability in zip(counts, brackets.probabilities, strict=False):
        assert count / 3000 == pytest.approx(probability, abs=0.03)
    again = brackets_for(1, 81, 3, 3, "max", seed=11)
    assert [again.assign(f"t{i}") for i in range(3000)] == list(brackets.assignments.values())
    other = brackets_for(1, 81, 3, 3, "max", seed=12)
    assert [other.assign(f"t{i}") for i in range(3000)] != list(brackets.assignments.values())


def test_a_trial_keeps_its_bracket_when_assigned_again() -> None:
    brackets = brackets_for(1, 81, 3, 3, "max")
    first = brackets.assign("a")
    assert brackets.assign("a") == first and brackets.assign("a", (first + 1) % 3) == first


def test_replaying_a_journal_with_brackets_rebuilds_each_bracket_s_rungs() -> None:
    live = brackets_for(2, 80, 2, 3, "max", seed=5)
    journal: dict[str, list[dict[str, float]]] = {}
    generator = random.Random(3)
    for trial_id in [f"t{i}" for i in range(12)]:
        spent = 0.0
        for _ in range(10):
            spent += generator.choice([1, 3, 5])
            value = generator.random()
            journal.setdefault(trial_id, []).append({"iteration": spent, "val": value})
            if live.decide(trial_id, spent, value) == STOP:
                break
    # A resumed sweep's scheduler draws from the start again: the recorded brackets win.
    replayed = brackets_for(2, 80, 2, 3, "max", seed=99)
    replayed.replay(journal, "val", "iterations", dict(live.assignments))
    assert replayed.assignments == live.assignments
    assert [[r.recorded for r in b.rungs] for b in replayed.brackets] == [
        [r.recorded for r in b.rungs] for b in live.brackets
    ]
    assert replayed.assign("new") in range(3)  # the next trial is drawn afresh


# The strict rule (`promotion: strict`): the top 1/η of the values at a rung, the trial's own
# included; only the best while the rung holds fewer than η.


def strict_rungs(mode: str, grace: float = 2, max_t: float = 60, eta: float = 3) -> AshaRungs:
    return AshaRungs(rung_milestones(grace, max_t, eta), eta, max_t, mode, promotion=STRICT_RULE)


@pytest.mark.parametrize("mode", ["max", "min"])
def test_strict_a_young_rung_promotes_only_its_best_so_far(mode: str) -> None:
    rungs = strict_rungs(mode)
    good, better, worse = (0.5, 0.9, 0.1) if mode == "max" else (0.5, 0.1, 0.9)
    assert rungs.judge("a", 2, good).action == CONTINUE  # the first value is the best so far
    assert (
        rungs.judge("b", 2, worse).action == STOP
    )  # Ray's rule lets it go on (the quantile of one value is it)
    stopped = rungs.judge("c", 2, (good + worse) / 2)  # 3 values, η = 3: the top 1 only
    assert stopped.action == STOP and stopped.cutoff == good and stopped.reason == BELOW_CUTOFF
    assert stopped.explanation() == {
        "stopped_at_rung": 2,
        "rung_value": (good + worse) / 2,
        "rung_cutoff": good,
    }
    best = rungs.judge("d", 2, better)
    assert best.action == CONTINUE and best.cutoff == better


def test_strict_with_six_values_keeps_the_top_two() -> None:
    rungs = strict_rungs("max")
    for trial, value in zip("abcde", [0.1, 0.5, 0.2, 0.4, 0.3], strict=False):
        rungs.judge(trial, 2, value)
    # Six values with this one: ⌊6/3⌋ = 2, so it needs the second best, 0.4, and has it.
    kept = rungs.judge("f", 2, 0.45)
    assert kept.action == CONTINUE and kept.cutoff == 0.45  # the top two are 0.5 and itself
    assert rungs.judge("f", 3, 0.0).milestone is None  # recorded once: a later result is not judged there
    assert rungs.judge("g", 2, 0.35).cutoff == 0.45  # seven values: still the top 2
    assert rungs.judge("h", 2, 0.45).action == CONTINUE  # a tie with the cut-off continues
    assert rungs.judge("i", 2, 0.44).action == STOP  # nine values: the top 3 are 0.5, 0.45, 0.45


def test_strict_nan_does_not_rank_and_is_left_to_the_divergence_guard() -> None:
    rungs = strict_rungs("max")
    rungs.judge("a", 2, 0.5)
    assert rungs.judge("b", 2, float("nan")).action == CONTINUE
    assert rungs.judge("c", 2, 0.4).cutoff == 0.5  # two ranked values: the best only


def reference_strict(recorded: dict[str, float], trial_id: str, value: float, eta: float, mode: str) -> bool:
    """The rule stated independently: continue unless at least max(1, ⌊n/η⌋) of the n values
    at the rung (its own included, NaNs not counted) are strictly better than the trial's."""
    ranked = [v for v in {**recorded, trial_id: value}.values() if not math.isnan(v)]
    top = max(1, math.floor(len(ranked) / eta))
    better = sum(1 for v in ranked if (v > value if mode == "max" else v < value))
    return math.isnan(value) or better < top


@pytest.mark.parametrize("mode", ["max", "min"])
@pytest.mark.parametrize("seed", range(8))
def test_every_strict_decision_matches_a_brute_force_reference(mode: str, seed: int) -> None:
    """Random trials reporting at random budgets (ties and NaNs included): the same decision and
    cut-off as the rule computed from scratch at every result."""
    generator = random.Random(seed)
    eta, grace, max_t = generator.choice([2, 2.5, 3, 4]), generator.choice([1, 2, 3]), 60.0
    milestones = rung_milestones(grace, max_t, eta)
    ours = AshaRungs(milestones, eta, max_t, mode, promotion=STRICT_RULE)
    reference: dict[float, dict[str, float]] = {m: {} for m in milestones}  # milestone → trial → value
    spent = {f"t{i}": 0.0 for i in range(20)}
    running, stops = set(spent), 0
    while running:
        trial_id = generator.choice(sorted(running))
        spent[trial_id] += generator.choice([1, 2, 3, 5])
        value = (
            generator.choice([float("nan"), 0.5, 0.25]) if generator.random() < 0.1 else generator.random()
        )
        got = ours.judge(trial_id, spent[trial_id], value)
        if spent[trial_id] >= max_t:
            assert got.action == STOP and got.reason == AT_MAX_T
            running.discard(trial_id)
            continue
        landing = max(
            (m for m in milestones if m <= spent[trial_id] and trial_id not in reference[m]), default=None
        )
        if landing is None:
            assert got.action == CONTINUE and got.milestone is None
            continue
        continues = reference_strict(reference[landing], trial_id, value, eta, mode)
        reference[landing][trial_id] = value
        assert (got.action, got.milestone) == (CONTINUE if continues else STOP, landing), (
            trial_id,
            spent[trial_id],
            value,
        )
        ranked = sorted(
            (v for v in reference[landing].values() if not math.isnan(v)), reverse=(mode == "max")
        )
        if ranked:
            assert got.cutoff == ranked[max(1, math.floor(len(ranked) / eta)) - 1]
        if not continues:
            stops += 1
            running.discard(trial_id)
    assert stops > 0, "a sequence that stops nothing checks nothing"


@pytest.mark.parametrize("mode", ["max", "min"])
@pytest.mark.parametrize("seed", range(4))
def test_every_strict_decision_matches_optuna_s_successive_halving_pruner(mode: str, seed: int) -> None:
    """Trials reporting at every iteration, interleaved at random: the same decisions as Optuna's
    SuccessiveHalvingPruner with min_resource = grace_period (the rule is Optuna's)."""
    generator = random.Random(seed)
    eta, grace, max_t = generator.choice([2, 3, 4]), generator.choice([1, 2, 3]), 60
    ours = AshaRungs(rung_milestones(grace, max_t, eta), eta, max_t, mode, promotion=STRICT_RULE)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize" if mode == "max" else "minimize",
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=grace, reduction_factor=eta),
    )
    trials = {f"t{i}": study.ask() for i in range(16)}
    spent = dict.fromkeys(trials, 0)
    running, stops = set(trials), 0
    while running:
        trial_id = generator.choice(sorted(running))
        spent[trial_id] += 1
        value = round(generator.random(), 2)  # ties happen
        trials[trial_id].report(value, spent[trial_id])
        pruned = trials[trial_id].should_prune()
        got = ours.decide(trial_id, spent[trial_id], value)
        if spent[trial_id] == max_t:  # the trial's end: Optuna has no max_t
            running.discard(trial_id)
            continue
        assert got == (STOP if pruned else CONTINUE), (trial_id, spent[trial_id], value)
        if pruned:
            stops += 1
            running.discard(trial_id)
    assert stops > 0


@pytest.mark.parametrize("mode", ["max", "min"])
def test_strict_brackets_judge_each_trial_by_the_rule_among_its_bracket_only(mode: str) -> None:
    ladders = [rung_milestones(1, 81, 3, s) for s in range(3)]
    brackets = AshaBrackets(ladders, 3, 81, mode, seed=2, promotion=STRICT_RULE)
    alone = [AshaRungs(ladder, 3, 81, mode, s, STRICT_RULE) for s, ladder in enumerate(ladders)]
    generator = random.Random(1)
    spent = {f"t{i}": 0.0 for i in range(30)}
    running = set(spent)
    while running:
        trial_id = generator.choice(sorted(running))
        spent[trial_id] += generator.choice([1, 2, 4, 9])
        value = generator.random()
        got = brackets.judge(trial_id, spent[trial_id], value)
        assert got == alone[brackets.assignments[trial_id]].judge(trial_id, spent[trial_id], value)
        if got.action == STOP:
            running.discard(trial_id)
    assert len(set(brackets.assignments.values())) > 1


def test_replaying_a_journal_rebuilds_strict_rungs_and_the_next_decisions() -> None:
    live = AshaBrackets([rung_milestones(2, 80, 3)], 3, 80, "min", promotion=STRICT_RULE)
    journal: dict[str, list[dict[str, float]]] = {}
    generator = random.Random(5)
    for trial_id in [f"t{i}" for i in range(15)]:
        spent = 0.0
        for _ in range(10):
            spent += generator.choice([1, 3, 5])
            value = generator.random()
            journal.setdefault(trial_id, []).append({"iteration": spent, "val": value})
            if live.decide(trial_id, spent, value) == STOP:
                break
    replayed = AshaBrackets([rung_milestones(2, 80, 3)], 3, 80, "min", promotion=STRICT_RULE)
    replayed.replay(journal, "val", "iterations")
    assert [r.recorded for r in replayed.rungs] == [r.recorded for r in live.rungs]
    for value in (0.05, 0.5, 0.95):  # a new trial is judged as the live sweep would have judged it
        assert replayed.judge(f"new{value}", 2, value) == live.judge(f"new{value}", 2, value)


def test_the_spec_s_promotion_reaches_the_rungs() -> None:
    from sweeps.plan.planner import make_plan
    from sweeps.spec.models import SweepSpec
    from tests.conftest import small_spec

    for rule in ("strict", "ray"):
        raw = small_spec()
        raw["scheduler"] = {"type": "asha", "grace_period": 2, "promotion": rule, "brackets": 2}
        spec = SweepSpec.model_validate(raw)
        built = asha_rungs_for(spec, make_plan(spec, dataset_size=1000, drop_last=False))
        assert built is not None and {b.promotion for b in built.brackets} == {rule}
