"""The plan: what a sweep will cost (iterations per batch size, ASHA's rungs, the budget),
computed without starting Ray.

The iteration arithmetic itself is :mod:`sweeps.iterations`, shared with the trials.
"""

from sweeps.iterations import BUDGET_RESULT_KEY, TrialShape, iterations_per_epoch
from sweeps.plan.asha import expected_iterations, rung_milestones
from sweeps.plan.planner import SweepPlan, make_plan, plan_spec

__all__ = [
    "BUDGET_RESULT_KEY",
    "SweepPlan",
    "TrialShape",
    "expected_iterations",
    "iterations_per_epoch",
    "make_plan",
    "plan_spec",
    "rung_milestones",
]
