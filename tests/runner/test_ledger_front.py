"""The ledger's Pareto front (the summary's `pareto_front`, `best`) and the progress line that
shows it. No Ray."""

from __future__ import annotations

from sweeps.backend import TrialInfo
from sweeps.runner.ledger import TrialLedger
from sweeps.runner.progress import LiveView
from sweeps.spec.objectives import parse_constraint

OBJECTIVES = (("val_accuracy", "max"), ("parameters", "min"))


def ended(ledger: TrialLedger, trial_id: str, total: int = 10, iteration: int = 10, **metrics: float) -> None:
    result = {"iteration": iteration, "total_iterations": total, **metrics}
    info = TrialInfo(trial_id, {"batch_size": 64}, result)
    ledger.trial_started(info)
    ledger.trial_reported(info, [result])
    ledger.trial_completed(info)


def test_the_front_is_the_feasible_completed_non_dominated_trials_best_first_by_the_first_objective() -> None:
    ledger = TrialLedger(
        "val_accuracy", "max", objectives=OBJECTIVES, constraints=(parse_constraint("latency <= 5", 0),)
    )
    ended(ledger, "small", val_accuracy=0.8, parameters=100, latency=1)
    ended(ledger, "big", val_accuracy=0.9, parameters=900, latency=2)
    ended(ledger, "dominated", val_accuracy=0.7, parameters=200, latency=1)
    ended(ledger, "slow", val_accuracy=0.99, parameters=50, latency=9)  # dominates all, but infeasible
    ended(ledger, "pruned", iteration=3, val_accuracy=0.95, parameters=10, latency=1)  # not completed
    assert [r.trial_id for r in ledger.front()] == ["big", "small"]
    best = ledger.best()
    assert best is not None and best.trial_id == "big"
    view = LiveView(ledger, "mo", 5)
    assert "front 2: val_accuracy 0.9000..0.8000, parameters 900.0000..100.0000" in view.status_line()


def test_a_single_objective_best_skips_infeasible_trials() -> None:
    ledger = TrialLedger("val_accuracy", "max", constraints=(parse_constraint("latency <= 5", 0),))
    ended(ledger, "fast", val_accuracy=0.8, latency=1)
    ended(ledger, "slow", val_accuracy=0.9, latency=6)
    best = ledger.best()
    assert best is not None and best.trial_id == "fast"
    assert "best val_accuracy 0.8000 (trial fast)" in LiveView(ledger, "one", 2).status_line()
