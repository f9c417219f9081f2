"""ASHA's rungs and decisions, in any budget unit, without Ray.

Asynchronous successive halving (Li et al., "A System for Massively Parallel
Hyperparameter Tuning", MLSys 2020) keeps one rung per milestone (:mod:`sweeps.plan.asha`
places them). The first result of a trial at or past a milestone is recorded in that
rung, and the trial continues only if its value is not below the rung's cutoff: the
(1 - 1/η) quantile of the values recorded there before it (NaNs ignored). A trial is
recorded in at most one rung per result, the highest it newly reached. This is Ray Tune's
``AsyncHyperBandScheduler`` with one bracket, decision for decision
(``tests/search/test_asha.py`` checks it against Ray's own).

The rungs are a function of the results the driver received, so the result journal
persists them: :meth:`AshaRungs.replay` rebuilds a resumed sweep's rungs from it, and no
scheduler state of Ray's needs saving or writing. The scheduler Tune runs is
:class:`sweeps.ray_backend.scheduler.AshaScheduler`; the tests drive this class directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sweeps.iterations import BUDGET_RESULT_KEY
from sweeps.plan.planner import SweepPlan
from sweeps.spec.models import AshaSpec, SweepSpec

CONTINUE = "continue"
STOP = "stop"


@dataclass
class Rung:
    milestone: float
    #: trial id → its value at this rung, signed so that higher is better.
    recorded: dict[str, float] = field(default_factory=dict)


class AshaRungs:
    """The rungs of one sweep; :meth:`decide` records a result and says continue or stop."""

    def __init__(self, milestones: list[float], reduction_factor: float, max_t: float, mode: str) -> None:
        self.reduction_factor = reduction_factor
        self.max_t = max_t
        self._sign = 1.0 if mode == "max" else -1.0
        #: Highest milestone first: a result is recorded in the highest rung it newly reached.
        self.rungs = [Rung(m) for m in sorted(milestones, reverse=True)]

    def cutoff(self, rung: Rung) -> float | None:
        """The value a trial must reach to continue past ``rung`` (None while it is empty)."""
        if not rung.recorded:
            return None
        return float(np.nanpercentile(list(rung.recorded.values()), (1 - 1 / self.reduction_factor) * 100))

    def decide(self, trial_id: str, budget: float, value: float) -> str:
        """Record the trial's result at ``budget`` (in the sweep's unit); CONTINUE or STOP."""
        if budget >= self.max_t:
            return STOP  # its budget is spent (`max_t` below its own total cuts it here)
        signed = self._sign * value
        for rung in self.rungs:
            if budget < rung.milestone or trial_id in rung.recorded:
                continue
            cutoff = self.cutoff(rung)
            rung.recorded[trial_id] = signed
            return STOP if cutoff is not None and signed < cutoff else CONTINUE
        return CONTINUE

    def replay(self, journal: dict[str, list[dict[str, Any]]], metric: str, budget_unit: str) -> int:
        """Record what a resumed sweep's trials reached before (the journal, in order); returns how many."""
        key = BUDGET_RESULT_KEY[budget_unit]
        recorded = 0
        for trial_id, results in journal.items():
            for result in results:
                value, spent = result.get(metric), result.get(key)
                if not _finite(value) or not isinstance(spent, (int, float)) or result.get("diverged"):
                    continue
                for rung in self.rungs:
                    if spent < rung.milestone or trial_id in rung.recorded:
                        continue
                    rung.recorded[trial_id] = self._sign * float(value)  # type: ignore[arg-type]  # checked above
                    recorded += 1
                    break
        return recorded


def asha_rungs_for(spec: SweepSpec, plan: SweepPlan) -> AshaRungs | None:
    """The rungs of the spec's ASHA on the plan's milestones; None for `scheduler: none`."""
    if not isinstance(spec.scheduler, AshaSpec):
        return None
    assert plan.max_t is not None and plan.reduction_factor is not None  # set for ASHA plans
    # With `max_t: auto` below the grace period (every config is shorter than the first
    # rung; the plan warns), ASHA stops nothing.
    return AshaRungs(plan.milestones(), plan.reduction_factor, max(plan.max_t, plan.grace_period or 0), spec.mode)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
