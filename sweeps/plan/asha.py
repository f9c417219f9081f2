"""ASHA rung arithmetic, mirroring Ray Tune's ``AsyncHyperBandScheduler`` exactly.

ASHA (Li et al., "A System for Massively Parallel Hyperparameter Tuning", MLSys 2020)
places rungs at r·η^k for k = 0, 1, ... while below R (r = grace_period, η =
reduction_factor, R = max_t). A trial reaching rung k continues only if it is in the top
1/η of the values recorded there, so about n/η^k trials reach rung k.

With Hyperband brackets (Li et al., "Hyperband", JMLR 2018; Ray's ``brackets``), bracket
s places its rungs at r·η^(k+s): the same ladder without its s lowest rungs, so a trial
in a higher bracket is judged later, on more budget. Each trial is drawn into one bracket,
bracket s with probability proportional to e^(rungs of s), as Ray draws it.
"""

from __future__ import annotations

import math

import numpy as np

from sweeps.iterations import TrialShape

#: K of `grace_period: auto`: the number of rungs below max_t, so r = R / η^K. With η = 3,
#: a trial is first judged at 1/27 of the longest trial's budget, whatever that budget is.
#: The one place this number lives; B5 (docs/performance.md) measures the choice.
AUTO_GRACE_RUNGS = 3


def auto_grace_period(max_t: float, reduction_factor: float) -> float:
    """``grace_period: auto``: R / η^K rounded up to a whole budget unit, at least 1 (at most R)."""
    exact = max_t / reduction_factor**AUTO_GRACE_RUNGS
    # Rounded up, not to the nearest: 900 / 27 = 33.3 rounded to 33 would leave a fourth rung
    # at 891, just below max_t, where it could only cut trials that are nearly done. The
    # tolerance keeps an exact quotient (270 / 27) from rounding up to the next unit.
    return float(min(max_t, max(1, math.ceil(exact * (1 - 1e-12)))))


def rung_milestones(
    grace_period: float, max_t: float, reduction_factor: float, bracket: int = 0
) -> list[float]:
    """Bracket ``bracket``'s milestones in ascending order, with the same expression as Ray's ``_Bracket``."""
    # Same float expression as ray.tune.schedulers.async_hyperband._Bracket, so that e.g.
    # max_t / grace_period == 27 with η = 3 gives the same number of rungs as Ray.
    max_rungs = int(np.log(max_t / grace_period) / np.log(reduction_factor) - bracket + 1)
    return [grace_period * reduction_factor ** (k + bracket) for k in range(max_rungs)]


def bracket_probabilities(rung_counts: list[int]) -> list[float]:
    """The chance that a new trial is drawn into each bracket: Ray's softmax over its rung counts."""
    sizes = np.array(rung_counts, dtype=float)
    weights = np.e ** (sizes - sizes.max())
    return [float(p) for p in weights / weights.sum()]


def most_brackets(grace_period: float, max_t: float, reduction_factor: float) -> int:
    """The most brackets that each keep a rung: one per rung of the first bracket."""
    return len(rung_milestones(grace_period, max_t, reduction_factor))


def bracket_problem(
    grace_period: float, max_t: float, reduction_factor: float, brackets: int, unit: str
) -> str | None:
    """Why ``brackets`` cannot be run (a bracket would have no rung at all), or None."""
    allowed = most_brackets(grace_period, max_t, reduction_factor)
    if brackets <= allowed:
        return None
    first = grace_period * reduction_factor**allowed
    return (
        f"field `scheduler.brackets` is {brackets}, but with grace_period {grace_period:g}, "
        f"reduction_factor {reduction_factor:g} and max_t {max_t:g} {unit} only {allowed} bracket(s) "
        f"have a rung: bracket s starts at grace_period × reduction_factor^s, and bracket "
        f"{allowed} would start at {first:g}, beyond max_t. Use at most `brackets: {allowed}`, "
        "or lower `grace_period` (or raise `max_t`)"
    )


def expected_iterations(
    shape: TrialShape, milestones_in_unit: list[float], max_t: float, unit: str, reduction_factor: float
) -> float:
    """Expected optimizer steps of one trial of ``shape`` under ASHA.

    The trial always runs to the first rung it can reach; past each rung it continues
    with probability 1/η. It ends at its own total or where ``max_t`` cuts it. The figure
    is approximate under either promotion rule and the same for both: ``strict`` lets at
    most 1/η continue (fewer while a rung holds fewer than η values, only its best),
    Ray's rule more while a rung is young.
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
