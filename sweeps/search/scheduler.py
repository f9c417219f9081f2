"""The trial scheduler: ASHA counting its budget in iterations, samples or epochs."""

from __future__ import annotations

from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler

from sweeps.plan.iterations import BUDGET_RESULT_KEY
from sweeps.plan.planner import SweepPlan
from sweeps.spec.models import AshaSpec, SweepSpec


def make_scheduler(spec: SweepSpec, plan: SweepPlan) -> TrialScheduler:
    """ASHA whose time attribute is the budget unit, not Ray's ``training_iteration``.

    ``training_iteration`` counts ``report()`` calls, which depends on how often a
    trainable reports; ASHA must compare trials by the work they did.
    """
    if not isinstance(spec.scheduler, AshaSpec):
        return FIFOScheduler()  # type: ignore[no-untyped-call]  # unannotated in Ray
    # Set for ASHA plans.
    assert plan.max_t is not None and plan.grace_period is not None and plan.reduction_factor is not None
    return ASHAScheduler(
        time_attr=BUDGET_RESULT_KEY[spec.budget_unit],
        # Ray annotates these as int, but its rungs are plain arithmetic and comparisons on
        # the time attribute, and a budget in epochs or samples need not be whole.
        grace_period=plan.grace_period,  # type: ignore[arg-type]
        reduction_factor=plan.reduction_factor,
        # With `max_t: auto` below the grace period (every config is shorter than the first
        # rung; the plan warns), Ray would refuse the scheduler; ASHA then stops nothing.
        max_t=max(plan.max_t, plan.grace_period),  # type: ignore[arg-type]
    )
