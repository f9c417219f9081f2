"""How a trial ended, in the product's words, and which trial is the best: written once.

Outcomes:

- ``completed``: ran all of its ``total_iterations``;
- ``pruned``: stopped early by ASHA (or cut by ``max_t``);
- ``diverged``: its loss or metric became NaN or infinite;
- ``failed``: the trainable raised (after its retries), or its worker died;
- ``interrupted``: still running when the sweep was stopped (it resumes with the sweep).

Each has one Optuna state (what the sampler learns from) and one MLflow run status (what
the UI's status column shows); the ``sweep.state`` tag of a child run is the outcome itself.
The ledger, ``sweep status``, the analysis frames and the MLflow tracker all use these.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

from sweeps.iterations import BUDGET_RESULT_KEY


class Outcome(str, Enum):
    """How a trial ended. A ``str``: it compares, hashes, formats and serialises as its value."""

    COMPLETED = "completed"
    PRUNED = "pruned"
    DIVERGED = "diverged"
    FAILED = "failed"
    INTERRUPTED = "interrupted"

    # As the plain string, so that dicts keyed by outcome names find an Outcome, and
    # f-strings and JSON show "pruned" rather than "Outcome.PRUNED".
    __hash__ = str.__hash__

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def mlflow_status(self) -> str:
        """The MLflow run status: completed and pruned runs FINISHED (told apart by
        ``sweep.state``), failed and diverged FAILED, interrupted KILLED."""
        return _MLFLOW_STATUS[self]

    @property
    def optuna_state(self) -> str:
        """The name of the Optuna ``TrialState``: a diverged trial is FAIL, not a made-up
        worst value, because Optuna's samplers skip FAIL trials."""
        return _OPTUNA_STATE[self]


_MLFLOW_STATUS = {
    Outcome.COMPLETED: "FINISHED",
    Outcome.PRUNED: "FINISHED",
    Outcome.DIVERGED: "FAILED",
    Outcome.FAILED: "FAILED",
    Outcome.INTERRUPTED: "KILLED",
}
_OPTUNA_STATE = {
    Outcome.COMPLETED: "COMPLETE",
    Outcome.PRUNED: "PRUNED",
    Outcome.DIVERGED: "FAIL",
    Outcome.FAILED: "FAIL",
    Outcome.INTERRUPTED: "RUNNING",
}

#: The outcomes of a trial that ended (every one but ``interrupted``), in display order.
OUTCOMES = (Outcome.COMPLETED, Outcome.PRUNED, Outcome.DIVERGED, Outcome.FAILED)


def classify_outcome(result: dict[str, Any] | None, error: bool) -> Outcome:
    """The outcome of an ended trial from its last result (``error``: it raised)."""
    if error or not result:
        return Outcome.FAILED
    if result.get("diverged"):
        return Outcome.DIVERGED
    if result["iteration"] < result["total_iterations"]:
        return Outcome.PRUNED
    return Outcome.COMPLETED


def rung_reached(result: dict[str, Any] | None, milestones: list[float], budget_unit: str) -> int:
    """Index of the highest rung milestone the trial's budget reached (-1 for none)."""
    if not result:
        return -1
    budget = result.get(BUDGET_RESULT_KEY[budget_unit], 0)
    return sum(1 for milestone in milestones if budget >= milestone) - 1


Candidate = TypeVar("Candidate")


def best_trial(
    candidates: Iterable[Candidate],
    outcome: Callable[[Candidate], str | None],
    value: Callable[[Candidate], float | None],
    mode: str,
) -> Candidate | None:
    """The best trial: the best value among completed trials; among pruned ones only if
    none completed. A pruned trial's value was measured at low fidelity (an early rung), so
    it must not beat a trial that trained to the end. Trials without a value never win.
    """
    sign = 1.0 if mode == "max" else -1.0
    pool = [c for c in candidates if value(c) is not None]
    for eligible in ((Outcome.COMPLETED,), (Outcome.COMPLETED, Outcome.PRUNED)):
        found = [c for c in pool if outcome(c) in eligible]
        if found:
            return max(found, key=lambda c: sign * float(value(c)))  # type: ignore[arg-type]
    return None


@dataclass
class TrialRecord:
    """What the driver knows of one trial: its config, last result and outcome."""

    trial_id: str
    config: dict[str, Any]
    last_result: dict[str, Any] | None = None
    outcome: str | None = None  # an Outcome once ended; None while running
    error: str | None = None
    node_id: str | None = None

    @property
    def iterations(self) -> int:
        return int(self.last_result["iteration"]) if self.last_result else 0


#: How a line the sweep adds to a trial's error file starts (a trial it stopped for
#: ``failure.trial_timeout``): that line is the trial's error, not the exception Ray saw.
SWEEP_REASON_PREFIX = "Stopped by the sweep: "


def error_headline(error: str | None) -> str | None:
    """The first line of the exception a failed trial raised, from the traceback text
    Ray wrote for it: ``RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB``.

    It is the first unindented line after the traceback's last ``File`` frame (Ray prefixes
    the traceback with a ``Failure # 1`` line and the actor's name, and an exception's
    message may run over several lines); a text without frames gives its last line. A
    reason the sweep added (:data:`SWEEP_REASON_PREFIX`) comes first.

    Example:
        >>> error_headline('Failure # 1\\nTraceback (most recent call last):\\n'
        ...                '  File "t.py", line 3\\n'
        ...                '    raise RuntimeError("CUDA out of memory")\\n'
        ...                'RuntimeError: CUDA out of memory\\n')
        'RuntimeError: CUDA out of memory'
    """
    if not error or not error.strip():
        return None
    lines = error.rstrip().splitlines()
    reasons = [line.strip() for line in lines if line.startswith(SWEEP_REASON_PREFIX)]
    if reasons:
        return reasons[-1]
    frames = [n for n, line in enumerate(lines) if line.lstrip().startswith('File "')]
    after = lines[frames[-1] + 1 :] if frames else []
    for line in after:
        if line.strip() and not line[:1].isspace():
            return line.strip()
    return next(line.strip() for line in reversed(lines) if line.strip())
