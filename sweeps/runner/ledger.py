"""The ledger: every trial's config, last result and outcome, kept on the driver.

Outcomes, in the product's words:

- ``completed``: ran all of its ``total_iterations``;
- ``pruned``: stopped early by ASHA (or cut by ``max_t``);
- ``diverged``: its loss or metric became NaN or infinite;
- ``failed``: the trainable raised (after its retries).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ray.tune import Callback

from sweeps.plan.iterations import BUDGET_RESULT_KEY
from sweeps.training.batching import points_in

OUTCOMES = ("completed", "pruned", "diverged", "failed")


def classify_outcome(result: dict[str, Any] | None, error: bool) -> str:
    if error or not result:
        return "failed"
    if result.get("diverged"):
        return "diverged"
    if result["iteration"] < result["total_iterations"]:
        return "pruned"
    return "completed"


def rung_reached(result: dict[str, Any] | None, milestones: list[float], budget_unit: str) -> int:
    """Index of the highest rung milestone the trial's budget reached (-1 for none)."""
    if not result:
        return -1
    budget = result.get(BUDGET_RESULT_KEY[budget_unit], 0)
    return sum(1 for milestone in milestones if budget >= milestone) - 1


@dataclass
class TrialRecord:
    trial_id: str
    config: dict[str, Any]
    last_result: dict[str, Any] | None = None
    outcome: str | None = None  # None while running
    error: str | None = None
    node_id: str | None = None

    @property
    def iterations(self) -> int:
        return int(self.last_result["iteration"]) if self.last_result else 0


@dataclass
class TrialLedger(Callback):
    """A Ray Tune callback that records each trial's last result and final outcome."""

    metric: str
    mode: str
    trials: dict[str, TrialRecord] = field(default_factory=dict)
    #: Trial errors seen so far: lets per-step checks skip a scan of every trial when it
    #: has not changed (Ray Tune asks its stoppers at every step of its loop).
    errors_seen: int = 0

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        record = self.trials.setdefault(trial.trial_id, TrialRecord(trial.trial_id, dict(trial.config)))
        record.outcome = None

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any) -> None:
        record = self.trials.setdefault(trial.trial_id, TrialRecord(trial.trial_id, dict(trial.config)))
        record.last_result = points_in(result)[-1]  # the latest report, without those it carried
        record.node_id = result.get("node_id", record.node_id)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        record = self.trials.setdefault(trial.trial_id, TrialRecord(trial.trial_id, dict(trial.config)))
        record.outcome = classify_outcome(record.last_result, error=False)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        record = self.trials.setdefault(trial.trial_id, TrialRecord(trial.trial_id, dict(trial.config)))
        record.outcome = "failed"
        record.error = read_trial_error(trial)
        self.errors_seen += 1

    def counts(self) -> dict[str, int]:
        counts = {outcome: 0 for outcome in OUTCOMES}
        for record in self.trials.values():
            if record.outcome:
                counts[record.outcome] += 1
        counts["running"] = sum(1 for r in self.trials.values() if r.outcome is None)
        return counts

    def best(self) -> TrialRecord | None:
        """Best final value among completed trials; pruned ones only if none completed.

        A pruned trial's value is measured at low fidelity, so it would be unfair to let
        it beat a trial that trained to the end.
        """
        for eligible in (("completed",), ("completed", "pruned")):
            candidates = [
                r for r in self.trials.values()
                if r.outcome in eligible and r.last_result and self.metric in r.last_result
            ]
            if candidates:
                sign = 1 if self.mode == "max" else -1
                return max(candidates, key=lambda r: sign * r.last_result[self.metric])  # type: ignore[index]
        return None

    def best_running_value(self) -> float | None:
        values: list[float] = [
            r.last_result[self.metric] for r in self.trials.values()
            if r.last_result and self.metric in r.last_result and not r.last_result.get("diverged")
        ]
        if not values:
            return None
        return max(values) if self.mode == "max" else min(values)


def read_trial_error(trial: Any) -> str:
    path = getattr(trial, "error_file", None)
    if path:
        try:
            with open(path) as stream:
                return stream.read()
        except OSError:
            pass
    return "unknown error (Ray recorded no error file)"
