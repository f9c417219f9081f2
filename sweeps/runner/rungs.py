"""Give a resumed sweep's ASHA the rungs its trials reached before the driver died.

Ray does not checkpoint a scheduler's state, so a restored ASHA starts with empty rungs
and would promote every trial that reaches a rung until the rungs fill up again. The
result journal holds every result the old driver received, so the rungs are replayed
from it: each trial's value at each milestone it passed, recorded exactly as ASHA's
bracket records it (the first result at or past a milestone, one rung per result).
"""

from __future__ import annotations

from typing import Any

from sweeps.plan.iterations import BUDGET_RESULT_KEY


def seed_asha_rungs(
    scheduler: Any, journal: dict[str, list[dict[str, Any]]], metric: str, mode: str, budget_unit: str,
) -> int:
    """Record the journal's results in ``scheduler``'s rungs; returns how many were recorded."""
    brackets = getattr(scheduler, "_brackets", None)
    if not brackets:
        return 0  # FIFO (no early stopping): nothing to rebuild
    time_key = BUDGET_RESULT_KEY[budget_unit]
    sign = 1.0 if mode == "max" else -1.0
    recorded = 0
    bracket = brackets[0]  # one bracket: plain ASHA (Li et al., MLSys 2020)
    for trial_id, results in journal.items():
        for result in results:
            value, spent = result.get(metric), result.get(time_key)
            if not isinstance(value, (int, float)) or not isinstance(spent, (int, float)) or result.get("diverged"):
                continue
            for milestone, rung in bracket._rungs:  # highest milestone first, as in Ray
                if spent < milestone or trial_id in rung:
                    continue
                rung[trial_id] = sign * float(value)
                recorded += 1
                break
    return recorded
