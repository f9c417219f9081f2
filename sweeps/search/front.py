"""The Pareto front of a study: its feasible COMPLETE trials that no other one dominates.

Several objectives have no single best trial; the sweep's result is the front (see
:mod:`sweeps.search.pareto`). The study holds what the front is computed from: a COMPLETE
trial's values (one per objective, in the spec's order) and, under ``constraints``, each
constraint's violation on its last result, set with ``Trial.set_constraint`` just before
``tell``. A trial with a violation above 0 is infeasible and never on the front.

Optuna 5.0 deprecated the samplers' ``constraints_func`` argument (to be removed in 7.0)
for ``Trial.set_constraint``: the same numbers in the same system attribute, which every
sampler (TPE, NSGA-II, GP) and ``Study.best_trials`` read, so TPE learns to avoid an
infeasible region and Optuna's own front agrees with ours. We use the new form, which
also needs no callable in the sampler.

The front is ordered best first by the first objective, so its first member is the
``best`` trial every single-valued view (``--json``'s ``best``, ``sweep best --format
yaml`` for one objective) shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sweeps.search.pareto import pareto_front

if TYPE_CHECKING:  # the driver's ledger reads this module, and `sweep plan` must not import Optuna
    from optuna.trial import FrozenTrial


def feasible(trial: FrozenTrial) -> bool:
    """No recorded constraint is violated (a trial of a sweep without constraints is feasible)."""
    return all(v <= 0 for v in trial.constraints.values())


def front_trials(trials: Sequence[FrozenTrial], modes: Sequence[str]) -> list[FrozenTrial]:
    """The feasible COMPLETE trials no other such trial dominates, best first by the first objective."""
    from optuna.trial import TrialState

    candidates = [
        t
        for t in trials
        if t.state == TrialState.COMPLETE
        and t.values is not None
        and len(t.values) == len(modes)
        and feasible(t)
    ]
    signs = [1.0 if mode == "max" else -1.0 for mode in modes]
    signed = [[sign * v for sign, v in zip(signs, t.values, strict=True)] for t in candidates]
    members = [candidates[i] for i in pareto_front(signed)]
    return sorted(members, key=lambda t: (-signs[0] * t.values[0], t.number))
