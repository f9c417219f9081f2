"""ASHA rung arithmetic agrees with Ray's own scheduler, and the expectation is sensible."""

from __future__ import annotations

import pytest
from ray.tune.schedulers.async_hyperband import _Bracket

from sweeps.plan.asha import expected_iterations, rung_milestones
from sweeps.iterations import TrialShape


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
