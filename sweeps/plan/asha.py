"""ASHA rung arithmetic, mirroring Ray Tune's ``AsyncHyperBandScheduler`` exactly.

ASHA (Li et al., "A System for Massively Parallel Hyperparameter Tuning", MLSys 2020)
places rungs at r·η^k for k = 0, 1, ... while below R (r = grace_period, η =
reduction_factor, R = max_t). A trial reaching rung k continues only if it is in the top
1/η of the values recorded there, so about n/η^k trials reach rung k.
"""

from __future__ import annotations

import numpy as np

from sweeps.iterations import TrialShape


def rung_milestones(grace_period: float, max_t: float, reduction_factor: float) -> list[float]:
    """Milestones in ascending order, computed with the same expression as Ray's ``_Bracket``."""
    # Same float expression as ray.tune.schedulers.async_hyperband._Bracket (s = 0), so that
    # e.g. max_t / grace_period == 27 with η = 3 gives the same number of rungs as Ray.
    max_rungs = int(np.log(max_t / grace_period) / np.log(reduction_factor) + 1)
    return [grace_period * reduction_factor**k for k in range(max_rungs)]


def expected_iterations(
    shape: TrialShape, milestones_in_unit: list[float], max_t: float, unit: str, reduction_factor: float
) -> float:
    """Expected optimizer steps of one trial of ``shape`` under ASHA.

    The trial always runs to the first rung it can reach; past each rung it continues
    with probability 1/η. It ends at its own total or where ``max_t`` cuts it.
    """
    end = shape.first_iteration_reaching(max_t, unit) or shape.total_iterations
    end = min(end, shape.total_iterations)
    expected, survival, previous = 0.0, 1.0, 0
    for milestone in milestones_in_unit:
        at = shape.first_iteration_reaching(milestone, unit)
        if at is None or at >= end:
            break
        expected += survival * (at - previous)
        survival /= reduction_factor
        previous = at
    return expected + survival * (end - previous)


def reaches(shape: TrialShape, budget: float, unit: str) -> bool:
    return shape.total_budget(unit) >= budget
