"""B5's parts, without Ray: the test function, the simulator's budget and truthfulness, and the summary."""

from __future__ import annotations

import math

import pytest

from benchmarks import b5_quality
from benchmarks.b5_functions import BRANIN_MINIMUM, branin, branin_trainable
from benchmarks.b5_simulation import BraninProblem, Contender, auto_grace, bracket_rungs, search
from sweeps.iterations import TrialShape
from sweeps.plan.asha import AUTO_GRACE_RUNGS, auto_grace_period
from sweeps.training.context import LocalContext


@pytest.mark.parametrize("x", [(-math.pi, 12.275), (math.pi, 2.275), (9.42478, 2.475)])
def test_branin_reaches_its_published_minimum_at_full_fidelity(x: tuple[float, float]) -> None:
    assert branin(*x) == pytest.approx(BRANIN_MINIMUM, abs=1e-5)
    assert branin(*x, z=0.1) != pytest.approx(BRANIN_MINIMUM, abs=1e-3)  # a lower fidelity is biased


def test_the_branin_trainable_reports_fidelity_i_over_max_t_at_the_contexts_iterations() -> None:
    ctx = LocalContext(
        TrialShape(50, 1, 1), metric="value", args={"max_t": 50}, report_iterations=frozenset({10})
    )
    branin_trainable({"x1": math.pi, "x2": 2.275}, ctx)
    assert [r["iteration"] for r in ctx.results] == [10, 50]
    assert ctx.results[0]["value"] == branin(math.pi, 2.275, 0.2)
    assert ctx.results[-1]["value"] == pytest.approx(BRANIN_MINIMUM, abs=1e-5)


@pytest.mark.parametrize("max_t", [50, 100, 270, 100_000])
def test_the_simulators_auto_grace_is_the_plans_at_the_default_k(max_t: int) -> None:
    assert auto_grace(max_t, AUTO_GRACE_RUNGS) == auto_grace_period(max_t, 3)


def test_brackets_start_one_rung_higher_each_and_the_first_is_likeliest() -> None:
    rungs, chances = bracket_rungs(Contender("b", brackets=3), 100, "min")
    assert [[r.milestone for r in b.rungs] for b in rungs] == [[36, 12, 4], [36, 12], [36]]
    assert chances[0] > chances[1] > chances[2] and sum(chances) == pytest.approx(1)


@pytest.mark.parametrize(
    "contender",
    [
        Contender("default"),
        Contender("mf", sampler="multi_fidelity"),
        Contender("sh", stopper="optuna_sh", grace="3"),
        Contender("random", sampler="random", stopper="none"),
    ],
    ids=lambda c: c.name,
)
def test_a_search_spends_its_budget_and_only_full_trials_count(contender: Contender) -> None:
    result = search(BraninProblem(27), contender, seed=0, budget=10 * 27)
    assert 10 * 27 <= result["spent"] < 11 * 27  # stops once spent; the last trial may finish
    spent = [s for s, _ in result["events"]]
    assert spent == sorted(spent) and spent[-1] <= result["spent"]
    if contender.stopper == "none":
        assert result["trials"] == len(result["events"]) == 10
    else:
        assert result["trials"] > len(result["events"])  # some were stopped early: no final value


def test_early_stopping_finds_more_for_the_same_budget_than_random_search() -> None:
    """Not a benchmark: a check that the simulator's parts are wired (rungs decide, TPE learns)."""
    problem = BraninProblem(100)
    default = [min(v for _, v in search(problem, Contender("default"), seed)["events"]) for seed in range(3)]
    random = [
        min(v for _, v in search(problem, Contender("r", sampler="random", stopper="none"), seed)["events"])
        for seed in range(3)
    ]
    assert sorted(default)[1] < sorted(random)[1]


def run(events: list[list[float]], trials: int = 5) -> dict[str, object]:
    return {"events": events, "trials": trials}


def test_the_summary_checks_each_target_from_every_seeds_curves() -> None:
    budget = 1000
    fast = run([[100, 5.0], [250, 0.5], [900, 0.45]])  # reaches random's final 1.0 at a quarter
    slow = run([[400, 3.0], [1000, 1.0], [1800, 0.6]])  # random: its final value is the target
    peer = run([[300, 2.0], [1000, 0.48]])
    grace20 = run([[600, 2.0], [1000, 0.9]])
    contenders = {name: [fast] * 3 for name in b5_quality.CONTENDERS}
    contenders.update(
        {
            b5_quality.RANDOM: [slow] * 3,
            b5_quality.OPTUNA_SH: [peer] * 3,
            b5_quality.OPTUNA_HB: [peer] * 3,
            b5_quality.GRACE_20: [grace20] * 3,
        }
    )
    workloads = {
        "branin": {
            "name": "Branin, max_t 100",
            "mode": "min",
            "budget": budget,
            "max_t": 100,
            "contenders": contenders,
        }
    }
    scenario = b5_quality.summarise(workloads, [{**run([[500, 0.7]], 9), "wall_s": 50.0}])
    label = "Branin, max_t 100"
    to_target = scenario.row(f"{label}: iterations to reach 1.0000 (random's median at 100 %)")
    assert to_target.median(b5_quality.DEFAULT) == 250 and to_target.median(b5_quality.RANDOM) == 1000
    assert to_target.met is True and to_target.ratio == "default: 0.25× random's"
    at_half = scenario.row(f"{label}: best at 50% of the budget (lower is better)")
    assert at_half.median(b5_quality.DEFAULT) == 0.5 and at_half.met is True  # the Optuna peers: 2.0
    full = scenario.row(f"{label}: best at 100% of the budget (lower is better)")
    assert (
        full.median(b5_quality.DEFAULT) == 0.45 and full.median(b5_quality.RANDOM) == 1.0
    )  # past budget: cut
    assert full.met is True and full.ratio == "default − Optuna TPE + SH: -0.0300"
    against_20 = scenario.row(f"{label}: default (auto grace) against grace 20, at 100 %")
    assert against_20.met is True and against_20.ratio == "auto − grace 20: -0.4500"
    contenders[b5_quality.OPTUNA_HB] = [
        run([[600, 0.3], [1000, 0.2]])
    ] * 3  # better than the default at 100 %
    worse = b5_quality.summarise(workloads).row(f"{label}: best at 100% of the budget (lower is better)")
    assert worse.met is False and worse.ratio == "default − Optuna TPE + Hyperband: +0.2500"
    assert (
        "[Q1–Q3]" in scenario.notes[0]
        and "`sweep run`" in scenario.notes[1]
        and "0.7000" in scenario.notes[1]
    )


def test_strict_asha_with_optuna_s_first_rung_is_optuna_s_successive_halving_search() -> None:
    """The strict rule is Optuna's SuccessiveHalvingPruner's: with the same first rung, sampler and
    seed, the simulator's two searches stop the same trials and find the same values."""
    problem = BraninProblem(27)
    ours = search(problem, Contender("strict", grace="1", promotion="strict"), seed=1, budget=12 * 27)
    optunas = search(problem, Contender("sh", stopper="optuna_sh", grace="1"), seed=1, budget=12 * 27)
    assert ours["trials"] > len(ours["events"])  # some were stopped: the rule was exercised
    assert (ours["events"], ours["trials"]) == (optunas["events"], optunas["trials"])
    ray_rule = search(problem, Contender("ray", grace="1", promotion="ray"), seed=1, budget=12 * 27)
    assert ray_rule["trials"] != ours["trials"] or ray_rule["events"] != ours["events"]
