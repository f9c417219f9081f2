"""The ledger: every trial's config, last result and outcome (:mod:`sweeps.outcomes`), kept on the driver."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sweeps.backend import SweepListener, TrialError, TrialInfo
from sweeps.outcomes import OUTCOMES, Outcome, TrialRecord, best_trial, classify_outcome
from sweeps.spec.objectives import Constraint, constraint_violations, objective_values


@dataclass
class TrialLedger(SweepListener):
    """Records each trial's last result and final outcome."""

    metric: str
    mode: str
    trials: dict[str, TrialRecord] = field(default_factory=dict)
    #: (metric, mode) of every objective when there are several (see :meth:`front`).
    objectives: tuple[tuple[str, str], ...] = ()
    #: Feasibility limits: a trial whose last result breaks one is never the best nor on the front.
    constraints: tuple[Constraint, ...] = ()
    #: Trial errors seen so far: lets per-step checks skip a scan of every trial when it
    #: has not changed (Ray Tune asks its stoppers at every step of its loop).
    errors_seen: int = 0
    #: Trial id → checkpoints the backend has registered for it (what a restart starts from).
    checkpoints: dict[str, int] = field(default_factory=dict)
    #: Trial id → why it failed, as the backend said in this run (a resumed sweep's earlier
    #: failures keep only their text, in their records).
    failures: dict[str, TrialError] = field(default_factory=dict)

    def trial_started(self, trial: TrialInfo) -> None:
        self._record(trial).outcome = None

    def trial_reported(self, trial: TrialInfo, points: list[dict[str, Any]]) -> None:
        record = self._record(trial)
        record.last_result = points[-1]  # the latest report, without those it carried
        record.node_id = record.last_result.get("node_id", record.node_id)

    def trial_checkpointed(self, trial: TrialInfo) -> None:
        self.checkpoints[trial.trial_id] = self.checkpoints.get(trial.trial_id, 0) + 1

    def trial_completed(self, trial: TrialInfo) -> None:
        record = self._record(trial)
        record.outcome = classify_outcome(record.last_result, error=False)

    def trial_failed(self, trial: TrialInfo, error: TrialError) -> None:
        record = self._record(trial)
        record.outcome = Outcome.FAILED
        record.error = error.text
        self.failures[trial.trial_id] = error
        self.errors_seen += 1

    def _record(self, trial: TrialInfo) -> TrialRecord:
        return self.trials.setdefault(trial.trial_id, TrialRecord(trial.trial_id, dict(trial.config)))

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {outcome: 0 for outcome in OUTCOMES}
        for record in self.trials.values():
            if record.outcome:
                counts[record.outcome] += 1
        counts["running"] = sum(1 for r in self.trials.values() if r.outcome is None)
        return counts

    def best(self) -> TrialRecord | None:
        """The best trial so far, by :func:`sweeps.outcomes.best_trial`; with several objectives
        the front's first (best by the first objective), else the first objective's best."""
        front = self.front() if len(self.objectives) > 1 else []
        if front:
            return front[0]
        return best_trial(self.trials.values(), lambda r: r.outcome, self._value, self.mode)

    def _value(self, record: TrialRecord) -> float | None:
        value = record.last_result.get(self.metric) if record.last_result else None
        if self.constraints and not self.feasible(record):
            return None  # infeasible: never the best
        return float(value) if isinstance(value, (int, float)) else None

    def feasible(self, record: TrialRecord) -> bool:
        return all(v <= 0 for v in constraint_violations(record.last_result, self.constraints))

    def front(self) -> list[TrialRecord]:
        """The completed, feasible trials that no other one dominates in every objective,
        best first by the first objective (:mod:`sweeps.search.pareto`)."""
        from sweeps.search.pareto import pareto_front  # here: importing sweeps.search imports Optuna

        metrics = [m for m, _ in self.objectives]
        signs = [1.0 if mode == "max" else -1.0 for _, mode in self.objectives]
        candidates, signed = [], []
        for record in self.trials.values():
            values = objective_values(record.last_result, metrics)
            if record.outcome == Outcome.COMPLETED and values is not None and self.feasible(record):
                candidates.append((record, values))
                signed.append([s * v for s, v in zip(signs, values, strict=True)])
        members = [candidates[i] for i in pareto_front(signed)]
        return [record for record, values in sorted(members, key=lambda m: -signs[0] * m[1][0])]

    def objective_values(self, record: TrialRecord) -> dict[str, float]:
        """Metric → the record's last value of each objective (those it reported)."""
        values = record.last_result or {}
        return {m: float(values[m]) for m, _ in self.objectives if isinstance(values.get(m), (int, float))}

    def best_running_value(self) -> float | None:
        values: list[float] = [
            r.last_result[self.metric]
            for r in self.trials.values()
            if r.last_result and self.metric in r.last_result and not r.last_result.get("diverged")
        ]
        if not values:
            return None
        return max(values) if self.mode == "max" else min(values)
