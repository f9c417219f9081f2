"""B7's bookkeeping, without training: the hypervolume, the budget cut and the summary table."""

from __future__ import annotations

import itertools
import random

import pytest

from benchmarks.b7_pareto import (
    CONTENDERS,
    OURS,
    RANDOM,
    REFERENCE_PARAMETERS,
    hypervolume_2d,
    hypervolume_within,
    plane_point,
    summarise,
)


def brute_force_area(points: list[tuple[float, float]], reference: tuple[float, float]) -> float:
    """The union of the boxes [x, rx] × [y, ry], cell by cell on the grid of every coordinate."""
    xs = sorted({x for x, _ in points if x < reference[0]} | {reference[0]})
    ys = sorted({y for _, y in points if y < reference[1]} | {reference[1]})
    area = 0.0
    for (x0, x1), (y0, y1) in itertools.product(itertools.pairwise(xs), itertools.pairwise(ys)):
        if any(x <= x0 and y <= y0 for x, y in points):
            area += (x1 - x0) * (y1 - y0)
    return area


@pytest.mark.parametrize("seed", range(20))
def test_the_hypervolume_is_the_area_of_the_union_of_the_dominated_boxes(seed: int) -> None:
    rng = random.Random(seed)
    points = [(rng.uniform(0, 1.2), rng.uniform(0, 1.2)) for _ in range(rng.randint(1, 12))]
    assert hypervolume_2d(points, (1.0, 1.0)) == pytest.approx(brute_force_area(points, (1.0, 1.0)))


def test_a_dominated_point_or_one_beyond_the_reference_adds_nothing() -> None:
    assert hypervolume_2d([(0.5, 0.5)], (1.0, 1.0)) == 0.25
    assert hypervolume_2d([(0.5, 0.5), (0.6, 0.6), (1.5, 0.0), (0.0, 1.0)], (1.0, 1.0)) == 0.25
    assert hypervolume_2d([], (1.0, 1.0)) == 0.0


def test_only_trials_that_ended_within_the_budget_count() -> None:
    events = [
        (100, {"val_accuracy": 0.5, "parameters": 10.0}),
        (300, {"val_accuracy": 0.9, "parameters": 1000.0}),
    ]
    first = hypervolume_2d([plane_point(events[0][1])], (1.0, 1.0))
    assert hypervolume_within(events, 99) == 0.0
    assert hypervolume_within(events, 299) == first > 0
    assert hypervolume_within(events, 300) > first
    assert plane_point({"val_accuracy": 1.0, "parameters": REFERENCE_PARAMETERS}) == (0.0, 1.0)


def test_the_summary_has_a_row_per_budget_share_and_checks_ours_at_half_against_random_at_all() -> None:
    good = {"val_accuracy": 0.95, "parameters": 500.0}
    worse = {"val_accuracy": 0.8, "parameters": 5000.0}
    runs = {
        name: [{"events": [(900, worse)], "trials": 4, "budget": 1000, "wall_s": 2.0}] for name in CONTENDERS
    }
    runs[OURS] = [{"events": [(400, good)], "trials": 9, "budget": 1000, "wall_s": 2.0}]
    scenario = summarise(runs)
    half = scenario.row("hypervolume at 50% of the budget (higher is better)")
    assert half.median(RANDOM) == 0.0 and half.median(OURS) == hypervolume_2d([plane_point(good)], (1.0, 1.0))
    assert half.met is True and half.target == "ours at 50 % ≥ random at 100 %"
    assert scenario.row("trials run").median(OURS) == 9
    assert scenario.row("trials run to the end").median(RANDOM) == 1
