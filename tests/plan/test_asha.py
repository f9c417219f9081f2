"""ASHA rung arithmetic agrees with Ray's own scheduler, and the expectation is sensible."""

from __future__ import annotations

import math

import pytest
from ray.tune.schedulers.async_hyperband import _Bracket

from sweeps.iterations import TrialShape
from sweeps.plan.asha import (
    AUTO_GRACE_RUNGS,
    auto_grace_period,
    bracket_probabilities,
    bracket_problem,
    expected_iterations,
    most_brackets,
    rung_milestones,
)


@pytest.mark.parametrize(
    "grace,max_t,eta",
    [(20, 900, 3), (1, 10, 2), (10, 270, 3), (5, 5, 3), (1000, 100_000, 4), (0.5, 10, 3)],
)
def test_milestones_match_rays_bracket(grace: float, max_t: float, eta: float) -> None:
    bracket = _Bracket(min_t=grace, max_t=max_t, reduction_factor=eta, s=0)
    ray_milestones = sorted(milestone for milestone, _ in bracket._rungs)
    assert rung_milestones(grace, max_t, eta) == pytest.approx(ray_milestones)


def test_digits_example_rungs() -> None:
    assert rung_milestones(20, 900, 3) == [20, 60, 180, 540]


def test_expected_iterations_without_rungs_is_the_whole_trial() -> None:
    shape = TrialShape(1000, 100, 5)
    assert expected_iterations(shape, [], 10_000, "iterations", 3) == 50


def test_expected_iterations_halve_past_each_rung() -> None:
    shape = TrialShape(1000, 10, 1)  # 100 iterations
    # Runs 10, then continues with probability 1/2 to 20, then 1/4 to the end.
    expected = expected_iterations(shape, [10, 20], 100, "iterations", 2)
    assert expected == pytest.approx(10 + 0.5 * 10 + 0.25 * 80)


def test_max_t_cuts_the_expectation() -> None:
    shape = TrialShape(1000, 10, 1)
    assert expected_iterations(shape, [], 40, "iterations", 2) == 40


@pytest.mark.parametrize(
    "max_t,eta,grace",
    [
        (900, 3, 34),  # the digits example: 900 / 27 = 33.3, rounded up
        (270, 3, 10),  # an exact quotient stays exact
        (100_000, 3, 3704),
        (100, 3, 4),
        (900, 2, 113),  # 900 / 8 = 112.5
        (5, 3, 1),  # tiny: at least one budget unit
        (1, 3, 1),
        (0.5, 3, 0.5),  # never beyond max_t
    ],
)
def test_auto_grace_period_is_max_t_over_eta_to_the_k(max_t: float, eta: float, grace: float) -> None:
    assert AUTO_GRACE_RUNGS == 3
    assert auto_grace_period(max_t, eta) == grace


@pytest.mark.parametrize("max_t", [50, 100, 333, 900, 5_000, 100_000])
@pytest.mark.parametrize("eta", [2, 3, 4])
def test_auto_grace_period_leaves_k_rungs_below_max_t_whatever_the_trial_length(
    max_t: float, eta: float
) -> None:
    grace = auto_grace_period(max_t, eta)
    below = [m for m in rung_milestones(grace, max_t, eta) if m < max_t]
    # Rounding up to a whole unit may cost the top rung of a short trial, never add one.
    expected = AUTO_GRACE_RUNGS if max_t >= 2 * eta**AUTO_GRACE_RUNGS else len(below)
    assert len(below) == expected and 1 <= len(below) <= AUTO_GRACE_RUNGS


@pytest.mark.parametrize(
    "grace,max_t,eta,brackets", [(1, 81, 3, 5), (34, 900, 3, 3), (10, 1000, 2, 4), (4, 100, 4, 3)]
)
def test_every_bracket_s_milestones_match_rays(grace: float, max_t: float, eta: float, brackets: int) -> None:
    for s in range(brackets):
        bracket = _Bracket(min_t=grace, max_t=max_t, reduction_factor=eta, s=s)
        assert rung_milestones(grace, max_t, eta, s) == pytest.approx(sorted(m for m, _ in bracket._rungs))
        assert rung_milestones(grace, max_t, eta, s)  # none of these leaves a bracket empty


def test_bracket_probabilities_are_rays_softmax_over_rung_counts() -> None:
    probabilities = bracket_probabilities([4, 3, 2])
    assert sum(probabilities) == pytest.approx(1)
    assert probabilities[0] / probabilities[1] == pytest.approx(math.e)
    assert probabilities[1] / probabilities[2] == pytest.approx(math.e)
    assert bracket_probabilities([3]) == [1.0]


def test_a_bracket_without_a_rung_is_a_problem_naming_the_field_and_the_most_allowed() -> None:
    assert most_brackets(34, 900, 3) == 3  # 34, 102, 306; a fourth bracket would start at 918
    assert bracket_problem(34, 900, 3, 3, "iterations") is None
    problem = bracket_problem(34, 900, 3, 4, "iterations")
    assert problem is not None
    assert "`scheduler.brackets` is 4" in problem and "at most `brackets: 3`" in problem and "918" in problem
