"""What a sweep reports when it ends: :class:`SweepSummary` (``sweep run``'s output, ``--json``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict

from sweeps.runner.failure_groups import failure_lines
from sweeps.runner.ledger import TrialLedger
from sweeps.spec.models import SweepSpec
from sweeps.store.state import SweepPaths


class BestTrial(TypedDict):
    """The best trial (:func:`sweeps.outcomes.best_trial`): its id, config, value and iterations."""

    trial_id: str
    config: dict[str, Any]
    value: float
    iterations: int


class FrontMember(TypedDict):
    """A trial on the Pareto front of a multi-objective sweep: every objective's final value."""

    trial_id: str
    config: dict[str, Any]
    values: dict[str, float]


class TrialSummary(TypedDict):
    trial_id: str
    config: dict[str, Any]
    outcome: str | None
    iterations: int


@dataclass
class SweepSummary:
    name: str
    best: BestTrial | None
    trials: dict[str, int]
    iterations_used: int
    iterations_worst_case: int
    storage: str
    wall_seconds: float
    aborted: str | None = None
    # Why the sweep stopped before its end (Ctrl-C, `sweep stop`); it can be resumed.
    stopped: str | None = None
    # Seconds spent starting (or joining) the backend (Ray). The wall ends when the summary is
    # complete, before the backend this sweep started shuts down (RunOptions.on_summary), so
    # `wall_seconds - start_seconds` is the sweep once the backend is up, the figure `make bench`
    # (B1, B2) compares with Ray Tune's `Tuner.fit()` and Optuna's `optimize`.
    start_seconds: float = 0.0
    #: CPU seconds of the driver process (all its threads: Tune's loop, the callbacks, the
    #: MLflow writer) during `fit()`: what orchestrating the trials takes from the workers
    #: on a shared machine (`make bench`, B2R: per 1,000 results).
    driver_cpu_seconds: float = 0.0
    trial_records: list[TrialSummary] = field(default_factory=list)
    #: The limit that ended the sweep (`limits`), in words: no trial started after it.
    limit: str | None = None
    #: Things the user should fix even though the sweep ran (reports that miss ASHA's milestones).
    warnings: list[str] = field(default_factory=list)
    #: The failed trials by error: ``7 × RuntimeError: CUDA out of memory (batch_size ≥ 128 in 7 of 7)``
    #: (:mod:`sweeps.runner.failure_groups`), the most common error first.
    failures: list[str] = field(default_factory=list)
    #: Step → [start, end], seconds since the driver process started (:mod:`sweeps.runner.timeline`).
    timeline: dict[str, list[float]] = field(default_factory=dict)
    #: Several objectives only: the Pareto front, best first by the first objective (whose
    #: first member is `best`); None for one objective, where `pareto_front` is left out.
    pareto_front: list[FrontMember] | None = None

    def to_json(self) -> dict[str, Any]:
        front = {} if self.pareto_front is None else {"pareto_front": self.pareto_front}
        return {
            "name": self.name,
            "best": self.best,
            "trials": self.trials,
            "iterations_used": self.iterations_used,
            "iterations_worst_case": self.iterations_worst_case,
            "storage": self.storage,
            "wall_seconds": round(self.wall_seconds, 2),
            "aborted": self.aborted,
            "stopped": self.stopped,
            "start_seconds": round(self.start_seconds, 2),
            "driver_cpu_seconds": round(self.driver_cpu_seconds, 2),
            "limit": self.limit,
            "warnings": self.warnings,
            "failures": self.failures,
            "timeline": self.timeline,
            **front,
        }


def summarize(
    spec: SweepSpec, ledger: TrialLedger, paths: SweepPaths, wall: float, aborted: str | None
) -> SweepSummary:
    best = ledger.best()
    records = list(ledger.trials.values())
    counts = ledger.counts()
    return SweepSummary(
        name=spec.name,
        best=None
        if best is None or best.last_result is None
        else {
            "trial_id": best.trial_id,
            "config": best.config,
            "value": best.last_result[spec.metric],
            "iterations": best.iterations,
        },
        trials={k: counts[k] for k in ("completed", "pruned", "diverged", "failed")},
        pareto_front=[
            {"trial_id": r.trial_id, "config": r.config, "values": ledger.objective_values(r)}
            for r in ledger.front()
        ]
        if spec.multi_objective
        else None,
        iterations_used=sum(r.iterations for r in records),
        iterations_worst_case=sum(int(r.last_result["total_iterations"]) for r in records if r.last_result),
        storage=str(paths.directory),
        wall_seconds=wall,
        aborted=aborted,
        failures=failure_lines(records),
        trial_records=[
            {"trial_id": r.trial_id, "config": r.config, "outcome": r.outcome, "iterations": r.iterations}
            for r in records
        ],
    )
