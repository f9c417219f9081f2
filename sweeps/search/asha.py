"""ASHA's rungs and decisions, in any budget unit, without Ray.

Asynchronous successive halving (Li et al., "A System for Massively Parallel
Hyperparameter Tuning", MLSys 2020) keeps one rung per milestone (:mod:`sweeps.plan.asha`
places them). The first result of a trial at or past a milestone is recorded in that
rung, and the trial continues only if its value is not below the rung's cut-off. A trial
is recorded in at most one rung per result, the highest it newly reached. Each decision
carries the rung, the trial's value there and the cut-off it had to reach, so a pruned
trial's record says exactly why it stopped.

The cut-off is one of two promotion rules (``scheduler.promotion``):

- ``ray``: the (1 - 1/η) quantile of the values recorded at the rung *before* the trial
  (NaNs ignored), as Ray Tune's ``ASHAScheduler`` computes it. An empty rung has no
  cut-off, and while a rung holds fewer than η values the quantile sits between them, so
  early in a sweep more than 1/η of the trials continue.
- ``strict``: the trial must be in the top 1/η of the values recorded there, itself
  included: at or above the k-th best of n values, k = max(1, ⌊n/η⌋). While the rung holds
  fewer than η values, k = 1: it continues only if it is the best there so far. This is
  the ASHA paper's top-1/η promotion, made a stopping rule the way Optuna's
  ``SuccessiveHalvingPruner`` makes it (a trial cannot wait at a rung to be promoted
  later, so a young rung promotes only its best), and it decides as Optuna's pruner does.

NaN values rank in neither rule, and a trial whose value is NaN is not stopped by the rung
(the divergence guard ends it).

With ``brackets: K`` (Hyperband, Li et al., JMLR 2018) :class:`AshaBrackets` keeps K such
ladders, bracket s without the s lowest rungs, and draws each new trial into one of them
with Ray's probabilities, from a generator seeded by the spec's seed and the trial's
position, so the same sweep draws the same brackets. With ``promotion: ray`` this is Ray
Tune's ``AsyncHyperBandScheduler`` decision for decision, given the same draws; with
``promotion: strict``, one trial at a time, it is Optuna's ``SuccessiveHalvingPruner``
decision for decision (``tests/search/test_asha.py`` checks both against the originals).

The rungs are a function of the results the driver received, so the result journal
persists them: :meth:`AshaBrackets.replay` rebuilds a resumed sweep's rungs from it and
from the recorded bracket of each trial (the study, the journal and MLflow hold it), and
no scheduler state of Ray's needs saving or writing. The scheduler Tune runs is
:class:`sweeps.ray_backend.scheduler.AshaScheduler`; the tests drive these classes directly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from sweeps.iterations import BUDGET_RESULT_KEY
from sweeps.plan.asha import bracket_probabilities
from sweeps.plan.planner import SweepPlan
from sweeps.search.pareto import pareto_order
from sweeps.spec.models import AshaSpec, SweepSpec

CONTINUE = "continue"
STOP = "stop"
#: Why a STOP: the trial fell below a rung's cut-off, or its budget reached max_t.
BELOW_CUTOFF = "below_cutoff"
AT_MAX_T = "max_t"
#: The promotion rules (`scheduler.promotion`): Ray's quantile, or the top 1/η (see above).
RAY_RULE = "ray"
STRICT_RULE = "strict"
PROMOTION_RULES = (RAY_RULE, STRICT_RULE)


def ray_cutoff(earlier: list[float], reduction_factor: float) -> float | None:
    """Ray's cut-off: the (1 - 1/η) quantile of the values recorded before the trial (None: none)."""
    if not earlier:
        return None
    return float(np.nanpercentile(earlier, (1 - 1 / reduction_factor) * 100))


def strict_cutoff(recorded: list[float], reduction_factor: float) -> float | None:
    """The strict cut-off: the k-th best of the n values recorded, the trial's own included,
    k = max(1, ⌊n/η⌋), so a trial continues only in the top 1/η (the best while n < η).
    Values are signed, higher is better; NaNs do not rank (None when no value does)."""
    ranked = sorted((v for v in recorded if not math.isnan(v)), reverse=True)
    if not ranked:
        return None
    # ⌊n/η⌋ as Optuna's pruner takes it (η may be fractional: 5 // 2.5 == 2.0 exactly).
    return ranked[max(1, int(len(ranked) // reduction_factor)) - 1]


@dataclass(frozen=True)
class Decision:
    """What ASHA made of one result: continue or stop, and the rung that decided it."""

    action: str
    bracket: int = 0
    #: The rung the result was newly recorded in (max_t for a trial cut there), or None.
    milestone: float | None = None
    #: The trial's value there, as reported (not signed).
    value: float | None = None
    #: The value it had to reach to continue (as reported, not signed); None for an empty rung.
    cutoff: float | None = None
    #: BELOW_CUTOFF or AT_MAX_T for a STOP, else None.
    reason: str | None = None
    #: Several objectives only: the trial's values there (as reported), its Pareto rank among
    #: the rung's trials (0 = first) and how many of them continue.
    values: tuple[float, ...] | None = None
    rank: int | None = None
    kept: int | None = None

    def explanation(self) -> dict[str, Any]:
        """The record of a stop below a cut-off (empty for any other decision): rung, value, cut-off."""
        if self.reason != BELOW_CUTOFF:
            return {}
        if self.values is not None:
            return {
                "stopped_at_rung": self.milestone,
                "rung_value": self.value,
                "rung_values": list(self.values),
                "rung_rank": self.rank,
                "rung_kept": self.kept,
            }
        # The bracket is recorded apart, for every trial, and only when there are several.
        return {"stopped_at_rung": self.milestone, "rung_value": self.value, "rung_cutoff": self.cutoff}


class ScheduleRecorder(Protocol):
    """Keeps what the scheduler decided of each trial, durably (the study does, for resume and status)."""

    def bracket_assigned(self, trial_id: str, bracket: int) -> None:
        """The new trial was drawn into ``bracket``."""

    def trial_stopped(self, trial_id: str, explanation: dict[str, Any]) -> None:
        """The trial fell below a rung's cut-off (:meth:`Decision.explanation`)."""


@dataclass
class Rung:
    milestone: float
    #: trial id → its value at this rung, signed so that higher is better.
    recorded: dict[str, float] = field(default_factory=dict)


class AshaRungs:
    """The rungs of one bracket; :meth:`judge` records a result and says continue or stop."""

    def __init__(
        self,
        milestones: list[float],
        reduction_factor: float,
        max_t: float,
        mode: str,
        bracket: int = 0,
        promotion: str = STRICT_RULE,
    ) -> None:
        if promotion not in PROMOTION_RULES:
            raise ValueError(f"`promotion` is {promotion!r}, but must be one of {', '.join(PROMOTION_RULES)}")
        self.reduction_factor = reduction_factor
        self.promotion = promotion
        self.max_t = max_t
        self.bracket = bracket
        self._sign = 1.0 if mode == "max" else -1.0
        #: Highest milestone first: a result is recorded in the highest rung it newly reached.
        self.rungs = [Rung(m) for m in sorted(milestones, reverse=True)]

    def cutoff(self, rung: Rung) -> float | None:
        """Ray's cut-off of ``rung`` as it stands, signed (None while it is empty)."""
        return ray_cutoff(list(rung.recorded.values()), self.reduction_factor)

    def judge(self, trial_id: str, budget: float, value: float) -> Decision:
        """Record the trial's result at ``budget`` (in the sweep's unit) and decide on it."""
        value = float(value)  # a numpy scalar would not go into a JSON record
        if budget >= self.max_t:
            # Its budget is spent (`max_t` below its own total cuts it here).
            return Decision(STOP, self.bracket, self.max_t, value, None, AT_MAX_T)
        signed = self._sign * value
        for rung in self.rungs:
            if budget < rung.milestone or trial_id in rung.recorded:
                continue
            earlier = list(rung.recorded.values())
            rung.recorded[trial_id] = signed
            if self.promotion == STRICT_RULE:
                cutoff = strict_cutoff(list(rung.recorded.values()), self.reduction_factor)
            else:
                cutoff = ray_cutoff(earlier, self.reduction_factor)
            shown = None if cutoff is None else self._sign * cutoff
            if cutoff is not None and signed < cutoff:
                return Decision(STOP, self.bracket, rung.milestone, value, shown, BELOW_CUTOFF)
            return Decision(CONTINUE, self.bracket, rung.milestone, value, shown)
        return Decision(CONTINUE, self.bracket)

    def decide(self, trial_id: str, budget: float, value: float) -> str:
        """Record the trial's result at ``budget`` (in the sweep's unit); CONTINUE or STOP."""
        return self.judge(trial_id, budget, value).action

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


class ParetoRungs(AshaRungs):
    """MOASHA's rungs (Schmucker et al. 2021): a trial continues at a rung when it is in the
    top 1/η of the trials recorded there, itself included (k = max(1, ⌊n/η⌋), as the strict
    rule), ranked by non-dominated sorting with the crowding-distance tie-break of
    :func:`sweeps.search.pareto.pareto_order`. Values are vectors, one per objective."""

    def __init__(
        self,
        milestones: list[float],
        reduction_factor: float,
        max_t: float,
        modes: Sequence[str],
        metrics: Sequence[str],
        bracket: int = 0,
    ) -> None:
        super().__init__(milestones, reduction_factor, max_t, modes[0], bracket, STRICT_RULE)
        self.metrics = tuple(metrics)
        self._signs = tuple(1.0 if mode == "max" else -1.0 for mode in modes)
        #: milestone → trial id → its signed vector there (``Rung.recorded`` holds the first objective).
        self.vectors: dict[float, dict[str, tuple[float, ...]]] = {r.milestone: {} for r in self.rungs}

    def values_of(self, result: dict[str, Any]) -> tuple[float, ...] | None:
        """The result's objectives, in the spec's order; None unless all are reported and finite."""
        values = [result.get(metric) for metric in self.metrics]
        if not all(_finite(v) for v in values):
            return None
        return tuple(float(v) for v in values)  # type: ignore[arg-type]  # checked finite above

    def judge_vector(self, trial_id: str, budget: float, values: Sequence[float]) -> Decision:
        """Record the trial's objectives at ``budget`` and decide on them."""
        shown = tuple(float(v) for v in values)
        if budget >= self.max_t:
            return Decision(STOP, self.bracket, self.max_t, shown[0], None, AT_MAX_T, shown)
        for rung in self.rungs:
            if budget < rung.milestone or trial_id in rung.recorded:
                continue
            self._record(rung, trial_id, shown)
            vectors = self.vectors[rung.milestone]
            order = list(vectors)
            ranked = pareto_order([vectors[t] for t in order])
            rank = ranked.index(order.index(trial_id))
            kept = max(1, int(len(order) // self.reduction_factor))
            if rank >= kept:
                return Decision(
                    STOP, self.bracket, rung.milestone, shown[0], None, BELOW_CUTOFF, shown, rank, kept
                )
            return Decision(CONTINUE, self.bracket, rung.milestone, shown[0], None, None, shown, rank, kept)
        return Decision(CONTINUE, self.bracket)

    def judge(self, trial_id: str, budget: float, value: float) -> Decision:
        raise TypeError("a multi-objective rung judges vectors: call judge_vector")

    def replay(self, journal: dict[str, list[dict[str, Any]]], metric: str, budget_unit: str) -> int:
        """As :meth:`AshaRungs.replay`, on every objective (``metric``, the first, is implied)."""
        key = BUDGET_RESULT_KEY[budget_unit]
        recorded = 0
        for trial_id, results in journal.items():
            for result in results:
                values, spent = self.values_of(result), result.get(key)
                if values is None or not isinstance(spent, (int, float)) or result.get("diverged"):
                    continue
                for rung in self.rungs:
                    if spent < rung.milestone or trial_id in rung.recorded:
                        continue
                    self._record(rung, trial_id, values)
                    recorded += 1
                    break
        return recorded

    def _record(self, rung: Rung, trial_id: str, values: tuple[float, ...]) -> None:
        signed = tuple(sign * v for sign, v in zip(self._signs, values, strict=True))
        rung.recorded[trial_id] = signed[0]
        self.vectors[rung.milestone][trial_id] = signed


class AshaBrackets:
    """K brackets of rungs (one for plain ASHA): each trial is drawn into one and judged there."""

    def __init__(
        self,
        ladders: list[list[float]],
        reduction_factor: float,
        max_t: float,
        mode: str,
        seed: int = 0,
        promotion: str = STRICT_RULE,
        objectives: Sequence[tuple[str, str]] = (),
    ) -> None:
        # `objectives`: (metric, mode) pairs; two or more make MOASHA's rungs (`mode` is the first's).
        self.brackets: list[AshaRungs] = (
            [
                ParetoRungs(
                    m, reduction_factor, max_t, [o[1] for o in objectives], [o[0] for o in objectives], s
                )
                for s, m in enumerate(ladders)
            ]
            if len(objectives) > 1
            else [AshaRungs(m, reduction_factor, max_t, mode, s, promotion) for s, m in enumerate(ladders)]
        )
        self.probabilities = bracket_probabilities([len(m) for m in ladders])
        self.seed = seed
        #: Trial id → its bracket, in the order drawn.
        self.assignments: dict[str, int] = {}

    @property
    def rungs(self) -> list[Rung]:
        """The first bracket's rungs (all of plain ASHA's)."""
        return self.brackets[0].rungs

    def assign(self, trial_id: str, bracket: int | None = None) -> int:
        """The trial's bracket: the one it has, else ``bracket``, else a new draw."""
        if trial_id not in self.assignments:
            self.assignments[trial_id] = self.draw(len(self.assignments)) if bracket is None else bracket
        return self.assignments[trial_id]

    def draw(self, position: int) -> int:
        """The bracket of the ``position``-th trial of the sweep (0-based): Ray's probabilities,
        from a generator of its own, so a sweep with the same seed draws the same brackets."""
        if len(self.brackets) == 1:
            return 0
        generator = np.random.default_rng([self.seed % 2**32, position])
        return int(generator.choice(len(self.brackets), p=self.probabilities))

    def judge(self, trial_id: str, budget: float, value: float) -> Decision:
        return self.brackets[self.assign(trial_id)].judge(trial_id, budget, value)

    @property
    def multi_objective(self) -> bool:
        return isinstance(self.brackets[0], ParetoRungs)

    def judge_result(
        self, trial_id: str, budget: float, result: dict[str, Any], metric: str
    ) -> Decision | None:
        """Judge a reported result: its ``metric`` (one objective) or every objective; None if absent."""
        bracket = self.brackets[self.assign(trial_id)]
        if isinstance(bracket, ParetoRungs):
            values = bracket.values_of(result)
            return None if values is None else bracket.judge_vector(trial_id, budget, values)
        return None if metric not in result else bracket.judge(trial_id, budget, result[metric])

    def decide(self, trial_id: str, budget: float, value: float) -> str:
        return self.judge(trial_id, budget, value).action

    def replay(
        self,
        journal: dict[str, list[dict[str, Any]]],
        metric: str,
        budget_unit: str,
        assignments: dict[str, int] | None = None,
    ) -> int:
        """Rebuild a resumed sweep: first the recorded brackets, then each trial's results in its own."""
        for trial_id, bracket in (assignments or {}).items():
            if 0 <= bracket < len(self.brackets):
                self.assign(trial_id, bracket)
        return sum(
            bracket.replay(
                {t: r for t, r in journal.items() if self.assign(t) == bracket.bracket}, metric, budget_unit
            )
            for bracket in self.brackets
        )


def asha_rungs_for(spec: SweepSpec, plan: SweepPlan) -> AshaBrackets | None:
    """The brackets of the spec's ASHA on the plan's milestones; None for `scheduler: none`."""
    if not isinstance(spec.scheduler, AshaSpec):
        return None
    assert plan.max_t is not None and plan.reduction_factor is not None  # set for ASHA plans
    # With `max_t: auto` below the grace period (every config is shorter than the first
    # rung; the plan warns), ASHA stops nothing.
    return AshaBrackets(
        plan.bracket_milestones() or [plan.milestones()],
        plan.reduction_factor,
        max(plan.max_t, plan.grace_period or 0),
        spec.mode,
        spec.seed,
        spec.scheduler.promotion,
        spec.objectives,
    )


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
