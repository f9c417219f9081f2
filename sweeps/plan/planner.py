"""The sweep plan: what a spec will cost in epochs, batches and iterations, before any trial.

``sweep plan`` prints it; ``sweep run`` uses it to configure ASHA (``max_t: auto``) and to
tell each trial where its rung milestones fall in iterations.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from typing import Any

from sweeps.errors import SpecError
from sweeps.iterations import TrialShape
from sweeps.plan.asha import (
    auto_grace_period,
    bracket_probabilities,
    bracket_problem,
    expected_iterations,
    rung_milestones,
)
from sweeps.spec.loading import LoadedSpec
from sweeps.spec.models import AshaSpec, SweepSpec, possible_values
from sweeps.spec.sampler_options import sampler_warnings
from sweeps.spec.scaling import base_learning_rates, learning_rate_range, learning_rate_scale
from sweeps.training.registry import ResolvedTrainable, resolve_trainable


@dataclass(frozen=True)
class BatchSizeRow:
    batch_size: int
    iterations_per_epoch: int
    samples_per_iteration: int
    min_total_iterations: int
    max_total_iterations: int
    #: The (low, high) learning rate a trial at this batch size trains with: the spec's
    #: range, scaled by its `learning_rate.scale` rule when it has one.
    learning_rate_range: tuple[float, float] = (0.0, 0.0)
    #: Samples each data-parallel worker takes of one iteration's batch (batch_size / workers).
    per_worker_batch_size: int = 0


@dataclass(frozen=True)
class Rung:
    milestone: float
    milestone_iterations_by_batch_size: dict[int, int | None]
    expected_trials: float


@dataclass(frozen=True)
class BracketPlan:
    """One Hyperband bracket: its rungs, the share of trials drawn into it and what they cost."""

    bracket: int
    grace_period: float
    milestones: list[float]
    probability: float
    expected_trials: float
    expected_iterations: float
    expected_samples: float


@dataclass(frozen=True)
class SweepPlan:
    dataset_size: int
    drop_last: bool
    num_samples: int
    budget_unit: str
    batch_sizes: list[BatchSizeRow]
    epochs: list[int]
    scheduler: str
    grace_period: float | None
    reduction_factor: float | None
    max_t: float | None
    rungs: list[Rung]
    worst_case_iterations: float
    expected_iterations: float
    worst_case_samples: float
    expected_samples: float
    warnings: list[str] = field(default_factory=list)
    #: Each compute limit of the spec (`limits`), with how many trials it is expected to
    #: cover at the expected cost per trial: {"max_iterations": {"limit": ..., "expected_trials": ...}}.
    limits: dict[str, dict[str, float]] = field(default_factory=dict)
    #: `search_space.learning_rate.scale` (rule, reference_batch_size), None without one.
    learning_rate_scale: dict[str, Any] | None = None
    #: Data-parallel workers per trial (`resources.workers`); the batch size stays global.
    workers: int = 1
    #: Whether the grace period was derived from max_t (`grace_period: auto`).
    grace_period_auto: bool = False
    #: ASHA's Hyperband brackets (one for plain ASHA); `rungs` are the first bracket's,
    #: which hold every other bracket's milestones.
    brackets: list[BracketPlan] = field(default_factory=list)

    @property
    def saving_ratio(self) -> float:
        return self.worst_case_iterations / self.expected_iterations if self.expected_iterations else 1.0

    def milestones(self) -> list[float]:
        """Every rung milestone, of every bracket (the first bracket's hold the others')."""
        return [rung.milestone for rung in self.rungs]

    def bracket_milestones(self) -> list[list[float]]:
        """Each bracket's milestones, first bracket first."""
        return [list(bracket.milestones) for bracket in self.brackets]

    @property
    def decision_milestones(self) -> list[float]:
        """The first bracket's milestones below max_t: where ASHA can stop a trial."""
        return [m for m in self.milestones() if self.max_t is None or m < self.max_t]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for rung in data["rungs"]:
            # JSON object keys are strings; keep batch sizes readable as such.
            rung["milestone_iterations_by_batch_size"] = {
                str(k): v for k, v in rung["milestone_iterations_by_batch_size"].items()
            }
        data["saving_ratio"] = self.saving_ratio
        return data


def plan_spec(loaded: LoadedSpec, *, reject_impossible: bool = True) -> tuple[ResolvedTrainable, SweepPlan]:
    """Resolve the trainable and compute the plan.

    With ``reject_impossible`` (as for ``sweep run``), a batch size larger than the
    training set is an error; ``sweep plan`` only warns about it.
    """
    spec = loaded.spec
    resolved = resolve_trainable(spec.trainable, loaded.path.parent, source=loaded.source)
    dataset_size = resolved.dataset_size(spec.trainable_args)
    plan = make_plan(spec, dataset_size, resolved.drop_last)
    if isinstance(spec.scheduler, AshaSpec) and plan.grace_period is not None and plan.max_t is not None:
        problem = bracket_problem(
            plan.grace_period,
            max(plan.max_t, plan.grace_period),
            spec.scheduler.reduction_factor,
            spec.scheduler.brackets,
            spec.budget_unit,
        )
        if problem:
            raise SpecError(f"{loaded.source}: {problem}.")
    too_large = [b for b in possible_values(spec.search_space["batch_size"]) if b > dataset_size]
    if too_large and reject_impossible:
        raise SpecError(
            f"{loaded.source}: field `search_space.batch_size` allows {too_large}, larger than "
            f"the training set of trainable `{spec.trainable}` (N = {dataset_size}). Remove "
            "those values, or enlarge the training set (e.g. through `trainable_args`)."
        )
    return resolved, plan


def make_plan(spec: SweepSpec, dataset_size: int, drop_last: bool) -> SweepPlan:
    """Compute the plan of ``spec`` for a trainable with training-set size ``dataset_size``."""
    batch_sizes = sorted(set(possible_values(spec.search_space["batch_size"])))
    epochs = sorted(set(possible_values(spec.search_space["epochs"])))
    # Optuna's own notes on the sampler's options (it ignores some it still accepts).
    warnings: list[str] = sampler_warnings(spec.sampler.type, spec.sampler.options)
    warnings += _oversized_batch_warnings(batch_sizes, dataset_size, drop_last)
    usable = [b for b in batch_sizes if b <= dataset_size] or batch_sizes
    shapes = {
        (b, e): TrialShape(dataset_size, b, e, drop_last)
        for b, e in itertools.product(usable, epochs)
        if TrialShape(dataset_size, b, e, drop_last).iterations_per_epoch > 0
    }
    # Every (batch size, epochs) pair is taken as equally likely: a first-order estimate
    # that ignores how the sampler concentrates on good regions as the sweep goes on.
    weight = spec.num_samples / max(len(shapes), 1)
    worst_iterations = sum(s.total_iterations for s in shapes.values()) * weight
    worst_samples = sum(s.samples_at(s.total_iterations) for s in shapes.values()) * weight
    scale = learning_rate_scale(spec)
    common: dict[str, Any] = {
        "dataset_size": dataset_size,
        "drop_last": drop_last,
        "num_samples": spec.num_samples,
        "budget_unit": spec.budget_unit,
        "epochs": epochs,
        "batch_sizes": _batch_size_rows(spec, usable, epochs, dataset_size, drop_last),
        "worst_case_iterations": worst_iterations,
        "worst_case_samples": worst_samples,
        "learning_rate_scale": scale.model_dump() if scale is not None else None,
        "workers": spec.resources.workers,
    }
    if not isinstance(spec.scheduler, AshaSpec):
        return SweepPlan(
            **common,
            scheduler="none",
            grace_period=None,
            reduction_factor=None,
            max_t=None,
            rungs=[],
            expected_iterations=worst_iterations,
            expected_samples=worst_samples,
            warnings=warnings,
            limits=limit_coverage(spec, worst_iterations, worst_samples),
        )
    return _asha_plan(spec, spec.scheduler, shapes, weight, warnings, common)


def _oversized_batch_warnings(batch_sizes: list[int], dataset_size: int, drop_last: bool) -> list[str]:
    too_large = [b for b in batch_sizes if b > dataset_size]
    if not too_large:
        return []
    outcome = "no iterations at all" if drop_last else "one short batch per epoch"
    return [
        (
            f"batch_size {', '.join(map(str, too_large))} is larger than the training set "
            f"(N = {dataset_size}); such a trial would have {outcome}. Remove those choices."
        )
    ]


def _batch_size_rows(
    spec: SweepSpec, usable: list[int], epochs: list[int], dataset_size: int, drop_last: bool
) -> list[BatchSizeRow]:
    scale = learning_rate_scale(spec)
    rows = []
    for b in usable:
        per_epoch = TrialShape(dataset_size, b, 1, drop_last).iterations_per_epoch
        rows.append(
            BatchSizeRow(
                batch_size=b,
                iterations_per_epoch=per_epoch,
                samples_per_iteration=b,
                min_total_iterations=min(epochs) * per_epoch,
                max_total_iterations=max(epochs) * per_epoch,
                learning_rate_range=learning_rate_range(*base_learning_rates(spec), scale, b),
                per_worker_batch_size=b // spec.resources.workers,
            )
        )
    return rows


def _asha_plan(
    spec: SweepSpec,
    scheduler: AshaSpec,
    shapes: dict[tuple[int, int], TrialShape],
    weight: float,
    warnings: list[str],
    common: dict[str, Any],
) -> SweepPlan:
    """The plan under ASHA: its rungs, each bracket's share and cost, and what to warn of."""
    unit = spec.budget_unit
    largest = max(s.total_budget(unit) for s in shapes.values())
    max_t = largest if scheduler.max_t == "auto" else float(scheduler.max_t)
    eta = scheduler.reduction_factor
    auto = scheduler.grace_period == "auto"
    grace = auto_grace_period(max_t, eta) if auto else float(scheduler.grace_period)
    # Every bracket's milestones are among the first bracket's (bracket s drops its s lowest).
    brackets = bracket_plans(shapes, grace, max_t, eta, scheduler.brackets, weight, unit)
    rungs = _rungs(shapes, brackets, weight, eta, unit, common)
    expected = sum(b.expected_iterations for b in brackets)
    expected_samples = sum(b.expected_samples for b in brackets)
    warnings = warnings + _asha_warnings(shapes, grace, auto, max_t, brackets[0].milestones, unit)
    return SweepPlan(
        **common,
        scheduler="asha",
        grace_period=grace,
        reduction_factor=eta,
        max_t=max_t,
        rungs=rungs,
        expected_iterations=expected,
        expected_samples=expected_samples,
        warnings=warnings,
        limits=limit_coverage(spec, expected, expected_samples),
        grace_period_auto=auto,
        brackets=brackets,
    )


def _rungs(
    shapes: dict[tuple[int, int], TrialShape],
    brackets: list[BracketPlan],
    weight: float,
    eta: float,
    unit: str,
    common: dict[str, Any],
) -> list[Rung]:
    """The first bracket's rungs: where each batch size reaches them, and how many trials do."""
    longest_epochs = max(common["epochs"])
    rungs = []
    for k, milestone in enumerate(brackets[0].milestones):
        reaching = sum(1 for s in shapes.values() if s.total_budget(unit) >= milestone)
        rungs.append(
            Rung(
                milestone=milestone,
                milestone_iterations_by_batch_size={
                    row.batch_size: TrialShape(
                        common["dataset_size"], row.batch_size, longest_epochs, common["drop_last"]
                    ).first_iteration_reaching(milestone, unit)
                    for row in common["batch_sizes"]
                },
                # Rung k of the first bracket is rung k - s of bracket s (when s <= k).
                expected_trials=sum(
                    weight * reaching * b.probability / eta ** (k - b.bracket)
                    for b in brackets
                    if b.bracket <= k
                ),
            )
        )
    return rungs


def _asha_warnings(
    shapes: dict[tuple[int, int], TrialShape],
    grace: float,
    auto: bool,
    max_t: float,
    milestones: list[float],
    unit: str,
) -> list[str]:
    warnings = []
    largest = max(s.total_budget(unit) for s in shapes.values())
    smallest_shape = min(shapes.values(), key=lambda s: s.total_budget(unit))
    if grace > smallest_shape.total_budget(unit):
        warnings.append(
            f"grace_period ({grace:g} {unit}) is beyond what the shortest config reaches "
            f"({smallest_shape.total_budget(unit):g} {unit} at batch_size="
            f"{smallest_shape.batch_size}, epochs={smallest_shape.epochs}): such trials end "
            "before the first rung, so ASHA can never stop them. "
            + (
                "`grace_period: auto` is derived from max_t; give a number to judge them sooner."
                if auto
                else "Lower grace_period."
            )
        )
    unreachable = [m for m in milestones if m > largest]
    if unreachable:
        warnings.append(
            f"rung(s) at {', '.join(f'{m:g}' for m in unreachable)} {unit} cannot be reached "
            f"by any config (the longest reaches {largest:g}). Lower max_t."
        )
    if max_t < largest:
        cut = sum(1 for s in shapes.values() if s.total_budget(unit) > max_t)
        warnings.append(
            f"max_t ({max_t:g} {unit}) is smaller than the length of {cut} of "
            f"{len(shapes)} (batch_size, epochs) configs (up to {largest:g}); ASHA would "
            "silently cut them short. Use `max_t: auto`."
        )
    return warnings


def bracket_plans(
    shapes: dict[tuple[int, int], TrialShape],
    grace: float,
    max_t: float,
    eta: float,
    count: int,
    weight: float,
    unit: str,
) -> list[BracketPlan]:
    """Each bracket's rungs, share of the trials and expected cost (a bracket with no rung costs as none)."""
    # With `max_t: auto` below the grace period (every config is shorter than the first
    # rung; the plan warns), there are no rungs and ASHA stops nothing.
    ladders = [rung_milestones(grace, max_t, eta, s) if grace <= max_t else [] for s in range(count)]
    probabilities = bracket_probabilities([len(ladder) for ladder in ladders])
    plans = []
    for s, (ladder, probability) in enumerate(zip(ladders, probabilities, strict=False)):
        share = weight * probability
        plans.append(
            BracketPlan(
                bracket=s,
                grace_period=grace * eta**s,
                milestones=ladder,
                probability=probability,
                expected_trials=share * len(shapes),
                expected_iterations=share
                * sum(expected_iterations(t, ladder, max_t, unit, eta) for t in shapes.values()),
                expected_samples=share
                * sum(_expected_samples(t, ladder, max_t, unit, eta) for t in shapes.values()),
            )
        )
    return plans


def limit_coverage(
    spec: SweepSpec, expected_iterations: float, expected_samples: float
) -> dict[str, dict[str, float]]:
    """How many trials each compute limit covers, at the expected iterations (samples) per trial."""
    coverage = {}
    for name, limit, expected in (
        ("max_iterations", spec.limits.max_iterations, expected_iterations),
        ("max_samples", spec.limits.max_samples, expected_samples),
    ):
        if limit is not None:
            per_trial = expected / spec.num_samples if expected else 0.0
            covered = (
                min(float(spec.num_samples), limit / per_trial) if per_trial else float(spec.num_samples)
            )
            coverage[name] = {"limit": float(limit), "expected_trials": covered}
    return coverage


def _expected_samples(
    shape: TrialShape, milestones: list[float], max_t: float, unit: str, eta: float
) -> float:
    # Samples seen are proportional to iterations except for the short last batch; the
    # ratio of whole-trial figures is exact enough for a plan.
    iterations = expected_iterations(shape, milestones, max_t, unit, eta)
    return iterations * shape.samples_at(shape.total_iterations) / shape.total_iterations
