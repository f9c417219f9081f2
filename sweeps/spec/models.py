"""Typed models of the sweep spec. Field names here are the public YAML interface.

Validation that needs only the spec itself lives here (``low < high``, ``log`` with a
positive ``low``, required hyperparameters...). Checks that need the trainable's
declared dataset size (a batch size larger than the training set) live in
:mod:`sweeps.plan`, because only the plan knows the dataset.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sweeps.spec.domains import check_count, check_learning_rate, check_scale, domain_error
from sweeps.spec.limits import LimitsSpec
from sweeps.spec.objectives import (
    MAX_OBJECTIVES,
    SINGLE_OBJECTIVE_SAMPLERS,
    Constraint,
    normalize_objectives,
    parse_constraint,
)
from sweeps.spec.sampler_options import SAMPLER_CLASSES, check_sampler_options

#: The hyperparameters this product exists for: every search space must define them.
REQUIRED_HYPERPARAMETERS = ("batch_size", "epochs", "learning_rate")

#: The longest sweep name: it names a folder, an MLflow experiment and an Optuna study.
MAX_NAME_LENGTH = 100
NAME_RULE = (
    f"a sweep name is 1 to {MAX_NAME_LENGTH} characters: letters, digits, `_`, `.` and `-`, "
    "starting with a letter or a digit (it names the sweep's folder), e.g. `digits-mlp-2`"
)

BudgetUnit = Literal["iterations", "samples", "epochs"]


class _Strict(BaseModel):
    # Unknown keys are rejected (and a close match suggested) rather than ignored:
    # a typo such as `grace_peroid` must not silently fall back to the default.
    model_config = ConfigDict(extra="forbid", frozen=True)


ScalingRule = Literal["linear", "sqrt", "none"]
_SCALING_RULES = ("linear", "sqrt", "none")


class LearningRateScale(_Strict):
    """How ``learning_rate`` follows ``batch_size``: Optuna samples the *base* learning rate,
    the one at ``reference_batch_size``, and a trial trains with the effective one.

    ``linear`` is base × (batch_size / reference_batch_size), the rule for SGD (Goyal et
    al., 2017, "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour"); ``sqrt`` is
    base × sqrt(batch_size / reference_batch_size), the rule for Adam (Malladi et al.,
    2022, "On the SDEs and Scaling Rules for Adaptive Gradient Algorithms"); ``none``
    trains with the sampled value itself, as without ``scale``. The arithmetic lives in
    :mod:`sweeps.spec.scaling`.
    """

    rule: ScalingRule
    reference_batch_size: int

    @field_validator("rule", mode="before")
    @classmethod
    def _known_rule(cls, rule: Any) -> Any:
        if rule not in _SCALING_RULES:
            raise ValueError(
                f"the scaling rule {rule!r} is not one of linear, sqrt or none; write `rule: linear` "
                "(SGD: the learning rate grows with the batch), `rule: sqrt` (Adam) or `rule: none`"
            )
        return rule

    @field_validator("reference_batch_size", mode="after")
    @classmethod
    def _positive_reference(cls, reference: int) -> int:
        if reference < 1:
            raise ValueError(
                f"`reference_batch_size` is {reference}, but must be at least 1: it is the batch "
                "size at which the sampled (base) learning rate applies; use one of the searched "
                "batch sizes, e.g. `reference_batch_size: 64`"
            )
        return reference


class _Scalable(_Strict):
    # Only `learning_rate` may carry a `scale`; the search space's validator says so for any
    # other parameter (pydantic alone would name no fix).
    scale: LearningRateScale | None = None

    @field_validator("scale", mode="before")
    @classmethod
    def _scale_is_a_mapping(cls, scale: Any) -> Any:
        if scale is not None and not isinstance(scale, (dict, LearningRateScale)):
            raise ValueError(
                f"`scale` is a mapping of `rule` and `reference_batch_size`, not {scale!r}; write "
                "for example `scale: {rule: linear, reference_batch_size: 64}`"
            )
        return scale


class FloatParam(_Scalable):
    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = None

    @model_validator(mode="after")
    def _check_bounds(self) -> FloatParam:
        _check_range(self.low, self.high, self.log, self.step)
        return self


class IntParam(_Scalable):
    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: int = 1

    @model_validator(mode="after")
    def _check_bounds(self) -> IntParam:
        _check_range(self.low, self.high, self.log, self.step)
        return self

    def values(self) -> list[int]:
        return list(range(self.low, self.high + 1, self.step))


class CategoricalParam(_Scalable):
    type: Literal["categorical"]
    values: list[Any]

    @field_validator("values")
    @classmethod
    def _non_empty(cls, values: list[Any]) -> list[Any]:
        if not values:
            raise ValueError(
                "the list of `values` is empty, but a categorical needs at least one "
                "choice; list the choices, e.g. `values: [32, 64, 128]`"
            )
        nested = [v for v in values if isinstance(v, (dict, list))]
        if nested:
            # Optuna's CategoricalDistribution holds only None, bool, int, float and str:
            # it warns on every command and stores a dict as its text. Conditional
            # parameters (momentum only for sgd) are not supported: see docs/spec.md.
            raise ValueError(
                f"holds {nested[0]!r}, but a categorical's choices must be plain values (numbers, "
                "strings, true/false); conditional parameters are not supported. Search each "
                "setting as its own parameter (`optimizer: {type: categorical, values: [sgd, adam]}` "
                "and `momentum: {type: float, low: 0.0, high: 0.99}`) and let the trainable ignore "
                "`momentum` when the optimizer is adam"
            )
        return values


def _check_range(low: float, high: float, log: bool, step: float | None) -> None:
    if low >= high:
        raise ValueError(
            f"`low` is {low} and `high` is {high}, but `low` must be smaller than "
            "`high`; swap them, or give a fixed value instead of a range"
        )
    if log and low <= 0:
        raise ValueError(
            f"`log: true` needs `low > 0`, but `low` is {low}; use a positive lower "
            "bound such as 1.0e-5, or set `log: false`"
        )
    if log and step not in (None, 1):
        raise ValueError("`log: true` cannot be combined with `step`; drop one of them")
    if step is not None and step <= 0:
        raise ValueError(f"`step` is {step}, but must be positive")


Distribution = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]
#: A search-space entry is either a distribution or a fixed value.
ParamSpec = Distribution | int | float | str | bool


class SamplerSpec(BaseModel):
    """``type`` picks the Optuna sampler; every other key is an argument of its constructor.

    The keys are checked against the sampler's own signature, so this model allows extra
    keys and :mod:`sweeps.spec.sampler_options` rejects the ones the sampler lacks.
    """

    model_config = ConfigDict(extra="allow", frozen=True)
    type: Literal["tpe", "random", "cmaes", "gp", "qmc", "multi_fidelity"] = "tpe"

    @model_validator(mode="before")
    @classmethod
    def _check_options(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("type", "tpe") not in SAMPLER_CLASSES:
            return data  # not a mapping, or an unknown type: pydantic's own message says so
        kind = data.get("type", "tpe")
        options = {key: value for key, value in data.items() if key != "type"}
        return {"type": kind, **check_sampler_options(kind, options)}

    @property
    def options(self) -> dict[str, Any]:
        """The options the spec gives, checked and typed (``type`` excluded)."""
        return dict(self.model_extra or {})


class AshaSpec(_Strict):
    """ASHA (Li et al., "A System for Massively Parallel Hyperparameter Tuning", MLSys 2020).

    ``grace_period`` is r (the minimum resource), ``reduction_factor`` is η and ``max_t``
    is R, all read in ``budget`` units. ``grace_period: auto`` (the default) derives r
    from R and η (:func:`sweeps.plan.asha.auto_grace_period`), so that every trial length
    gets the same number of rungs. ``brackets`` is the number of Hyperband brackets
    (Li et al., "Hyperband", JMLR 2018): bracket s starts its rungs at r·η^s.
    ``promotion`` is the rule that decides at a rung (:mod:`sweeps.search.asha`): ``ray``,
    Ray's quantile of the values before the trial, or ``strict``, the top 1/η of the values
    there, the trial's own included (only the best while a rung holds fewer than η).
    """

    type: Literal["asha"]
    budget: BudgetUnit = "iterations"
    grace_period: float | Literal["auto"] = "auto"
    reduction_factor: float = Field(default=3, ge=2)
    max_t: float | Literal["auto"] = "auto"
    brackets: int = 1
    promotion: Literal["strict", "ray"] = "strict"

    @field_validator("grace_period", mode="before")
    @classmethod
    def _grace_period_is_auto_or_positive(cls, grace: Any) -> Any:
        # One message for both members of the union (pydantic alone gives one per member).
        if grace == "auto":
            return grace
        if isinstance(grace, bool) or not isinstance(grace, (int, float)) or not grace > 0:
            raise ValueError(
                f"`grace_period` is {grace!r}, but must be `auto` or a number greater than 0 (in "
                "`budget` units); write `grace_period: auto` to derive it from `max_t`, or e.g. "
                "`grace_period: 20`"
            )
        return grace

    @field_validator("brackets", mode="before")
    @classmethod
    def _brackets_is_a_positive_count(cls, brackets: Any) -> Any:
        if isinstance(brackets, bool) or not isinstance(brackets, int) or brackets < 1:
            raise ValueError(
                f"`brackets` is {brackets!r}, but must be a whole number of at least 1: the number "
                "of Hyperband brackets, each with its own grace period; write `brackets: 1` "
                "(plain ASHA) or e.g. `brackets: 3`"
            )
        return brackets

    @field_validator("promotion", mode="before")
    @classmethod
    def _promotion_is_a_known_rule(cls, promotion: Any) -> Any:
        if promotion not in ("strict", "ray"):
            raise ValueError(
                f"`promotion` is {promotion!r}, but must be `strict` (a trial continues past a rung only "
                "in the top 1/reduction_factor of the values there, only the best while the rung holds "
                "fewer) or `ray` (Ray Tune's ASHAScheduler rule); write e.g. `promotion: strict`"
            )
        return promotion

    @model_validator(mode="after")
    def _check_grace_period(self) -> AshaSpec:
        # With `auto` on either side the plan checks it (it knows max_t and the grace
        # period); so does it whether every bracket has a rung (sweeps.plan.asha).
        if self.max_t != "auto" and self.grace_period != "auto" and self.grace_period > self.max_t:
            raise ValueError(
                f"`grace_period` is {self.grace_period} but `max_t` is "
                f"{self.max_t}; ASHA needs `grace_period <= max_t`. Lower "
                "`grace_period` or use `max_t: auto`"
            )
        return self


class NoSchedulerSpec(_Strict):
    type: Literal["none"]
    budget: BudgetUnit = "iterations"


SchedulerSpec = Annotated[AshaSpec | NoSchedulerSpec, Field(discriminator="type")]


class ResourcesSpec(_Strict):
    """What one trial runs on: ``workers`` data-parallel workers of ``cpu``/``gpu`` each."""

    cpu: float = Field(default=1, gt=0)
    # Fractional GPUs are allowed: `gpu: 0.25` packs four trials on one GPU.
    gpu: float = Field(default=0, ge=0)
    # Data-parallel workers per trial. `cpu` and `gpu` are per worker; `batch_size` stays the
    # global batch of one iteration, split evenly: each worker takes batch_size / workers.
    workers: int = Field(default=1, ge=1)


class TrackingSpec(_Strict):
    enabled: bool = True
    # None means the embedded SQLite store `<storage>/mlflow.db`.
    uri: str | None = None
    # None means the sweep name.
    experiment: str | None = None
    log_model: bool = True


class FailureSpec(_Strict):
    max_retries: int = Field(default=1, ge=0)
    max_failed_fraction: float = Field(default=0.5, ge=0, le=1)
    # Seconds a running trial may go without a result reaching the driver (counted from
    # its start) before it is stopped and recorded as failed, then retried like any
    # failure; None = never. Results reach the driver at least every few seconds while
    # a trial reports, so a hung trial is told from a slow one by this alone.
    trial_timeout: float | None = Field(default=None, gt=0)
    # Whether the sampler counts failed (and diverged) trials as infeasible configs, so it
    # stops proposing the region that fails (sweeps/search/avoid_failures.py); the study
    # still records them as FAIL. None = on for TPE, the only sampler it applies to
    # (measured: benchmarks/failure_avoid.py).
    avoid: bool | None = None


class CheckpointSpec(_Strict):
    # Built-in trainables save a checkpoint every `every_epochs` epochs (0 = never).
    every_epochs: int = Field(default=1, ge=0)
    # Checkpoints kept per running trial (the newest ones): a restart or a retry needs only
    # the last, and one more covers a checkpoint torn by a crash while it was written.
    keep: int = 2
    # Once a trial has ended only the best trial's last checkpoint is kept (what `sweep best`
    # and MLflow's model need; an ended trial is never restarted). True keeps the pruned
    # trials' checkpoints too, e.g. to continue one by hand (sweeps.store.checkpoints).
    keep_pruned: bool = False

    @field_validator("keep", mode="before")
    @classmethod
    def _at_least_one_checkpoint(cls, value: Any) -> Any:
        # Before pydantic's own check: `keep: "2"` or `keep: true` would pass its lax int.
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                "must be a whole number of checkpoints kept per running trial, at least 1 (e.g. "
                "`keep: 2`): a restarted or retried trial continues from its last checkpoint. "
                "Set `every_epochs: 0` for no checkpoints at all"
            )
        return value


class SweepSpec(_Strict):
    name: str
    trainable: str
    trainable_args: dict[str, Any] = Field(default_factory=dict)
    #: The first objective (`metric: [a, b]` in YAML lists several: see sweeps.spec.objectives).
    metric: str
    mode: Literal["max", "min"]
    #: Every objective, the first included (filled from `metric`/`mode`, not written in YAML).
    metrics: tuple[str, ...] = ()
    modes: tuple[Literal["max", "min"], ...] = ()
    #: Feasibility limits on reported metrics, e.g. "latency_ms <= 5".
    constraints: tuple[str, ...] = ()
    num_samples: int = Field(ge=1)
    max_concurrent: int | Literal["auto"] = "auto"
    seed: int = 0
    search_space: dict[str, ParamSpec]
    sampler: SamplerSpec = SamplerSpec()
    scheduler: SchedulerSpec = AshaSpec(type="asha")
    resources: ResourcesSpec = ResourcesSpec()
    storage: str = "./sweep_results"
    tracking: TrackingSpec = TrackingSpec()
    failure: FailureSpec = FailureSpec()
    checkpoint: CheckpointSpec = CheckpointSpec()
    limits: LimitsSpec = LimitsSpec()

    @model_validator(mode="before")
    @classmethod
    def _default_scheduler_type(cls, data: Any) -> Any:
        # `scheduler: {grace_period: 10}`, or `--set scheduler.grace_period=10` on a spec
        # without a scheduler, means the default ASHA. Without a `type`, pydantic's tagged
        # union could only say "Unable to extract tag using discriminator 'type'".
        if (
            isinstance(data, dict)
            and isinstance(data.get("scheduler"), dict)
            and "type" not in data["scheduler"]
        ):
            data = {**data, "scheduler": {"type": "asha", **data["scheduler"]}}
        return data

    @model_validator(mode="before")
    @classmethod
    def _objectives_from_metric_and_mode(cls, data: Any) -> Any:
        return normalize_objectives(data) if isinstance(data, dict) else data

    @field_validator("constraints")
    @classmethod
    def _constraints_parse(cls, constraints: tuple[str, ...]) -> tuple[str, ...]:
        for position, text in enumerate(constraints):
            parse_constraint(text, position)
        return constraints

    @model_validator(mode="after")
    def _several_objectives_fit_the_search(self) -> SweepSpec:
        if not self.multi_objective:
            return self
        if self.sampler.type in SINGLE_OBJECTIVE_SAMPLERS:
            raise domain_error(
                "sampler.type",
                (
                    f"`metric` lists {len(self.metrics)} objectives, but "
                    f"`sampler.type: {self.sampler.type}` optimises one value only. "
                    "Use `sampler: {type: tpe}` (the default), `random`, `qmc` or `gp`, "
                    f"or one objective (at most {MAX_OBJECTIVES} in all)"
                ),
            )
        if isinstance(self.scheduler, AshaSpec) and self.scheduler.promotion == "ray":
            raise domain_error(
                "scheduler.promotion",
                (
                    f"`metric` lists {len(self.metrics)} objectives, but `scheduler.promotion: ray` is a "
                    "quantile of one value. Several objectives are ranked by non-dominated sorting, "
                    "keeping the top 1/η (the `strict` rule): use `promotion: strict` (the default)"
                ),
            )
        return self

    @property
    def multi_objective(self) -> bool:
        return len(self.metrics) > 1

    @property
    def objectives(self) -> tuple[tuple[str, str], ...]:
        """(metric, mode) of each objective, the first first; one pair for a single objective."""
        return tuple(zip(self.metrics, self.modes, strict=True)) or ((self.metric, self.mode),)

    @property
    def parsed_constraints(self) -> tuple[Constraint, ...]:
        return tuple(parse_constraint(text, i) for i, text in enumerate(self.constraints))

    @property
    def reported_objectives(self) -> tuple[str, ...]:
        """What a trial's context demands in each report besides `metric`: every objective's metric
        with several, none with one (``metric`` itself is always demanded)."""
        return self.metrics if self.multi_objective else ()

    @property
    def constraint_metrics(self) -> tuple[str, ...]:
        """The metrics ``constraints`` limit, each once: every report must include them too."""
        return tuple(dict.fromkeys(c.metric for c in self.parsed_constraints))

    @model_validator(mode="after")
    def _avoid_needs_tpe(self) -> SweepSpec:
        if self.failure.avoid and self.sampler.type != "tpe":
            raise domain_error(
                "failure.avoid",
                (
                    f"`failure.avoid: true` works with the TPE sampler only (it uses TPE's handling of "
                    f"infeasible trials), but `sampler.type` is `{self.sampler.type}`. Use `sampler: "
                    "{type: tpe}`, or drop `failure.avoid`"
                ),
            )
        return self

    @model_validator(mode="after")
    def _workers_divide_every_batch_size(self) -> SweepSpec:
        workers = self.resources.workers
        if workers == 1:
            return self
        # A float range has no finite set of values; check_count has refused it already.
        uneven = [b for b in possible_values(self.search_space["batch_size"]) if int(b) % workers]
        if uneven:
            raise domain_error(
                "resources.workers",
                (
                    f"`resources.workers` is {workers}, but `search_space.batch_size` allows "
                    f"{', '.join(map(str, uneven))}, which {workers} workers cannot split evenly: batch_size "
                    f"is the global batch of one iteration, and each worker takes batch_size / workers "
                    f"samples of it. Use batch sizes that are multiples of {workers}, or change `workers`"
                ),
            )
        return self

    @model_validator(mode="after")
    def _distributed_workers_take_whole_gpus(self) -> SweepSpec:
        resources = self.resources
        if resources.workers == 1 or resources.gpu == int(resources.gpu):
            return self
        raise domain_error(
            "resources.gpu",
            (
                f"`resources.gpu` is {resources.gpu} with `resources.workers: {resources.workers}`, but each "
                "worker of a distributed trial needs whole GPUs: Ray may place two fractional workers of one "
                "trial on the same GPU, and NCCL refuses two ranks of one process group there. Use a whole "
                "number such as `gpu: 1` per worker, or `workers: 1` to pack several trials onto each GPU"
            ),
        )

    @field_validator("name")
    @classmethod
    def _name_is_a_folder_name(cls, name: str) -> str:
        # The name is the sweep's folder, its MLflow experiment and its Optuna study:
        # a path separator, a leading dot or a name longer than a file name may be
        # (255 bytes on most file systems, with room for suffixes) would break one of them.
        if not name:
            raise ValueError(f"is empty; {NAME_RULE}")
        if len(name) > MAX_NAME_LENGTH:
            raise ValueError(f"is {len(name)} characters long; {NAME_RULE}")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            raise ValueError(f"is not a valid sweep name; {NAME_RULE}")
        return name

    @model_validator(mode="after")
    def _multi_fidelity_needs_rungs(self) -> SweepSpec:
        # The multi-fidelity sampler models the values of ASHA's rungs, keyed by the study's
        # step; under `budget: epochs` the study keys steps by iteration, and an epoch is a
        # different number of iterations for each batch size, so no rung has one step.
        if self.sampler.type != "multi_fidelity":
            return self
        if not isinstance(self.scheduler, AshaSpec):
            raise domain_error(
                "sampler.type",
                (
                    "`sampler: {type: multi_fidelity}` fits its model on the values of ASHA's rungs, but "
                    "`scheduler` is `none`, which has no rungs. Use `scheduler: {type: asha}`, or "
                    "`sampler: {type: tpe}`"
                ),
            )
        if self.scheduler.budget == "epochs":
            raise domain_error(
                "sampler.type",
                (
                    "`sampler: {type: multi_fidelity}` needs rungs counted in iterations or samples, but "
                    "`scheduler.budget` is `epochs` (the study keys each value by iteration, and an "
                    "epoch is a different number of iterations for each batch size). Use "
                    "`scheduler.budget: iterations` or `samples`, or `sampler: {type: tpe}`"
                ),
            )
        return self

    @field_validator("max_concurrent")
    @classmethod
    def _positive_concurrency(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError(f"must be `auto` or at least 1, but is {value}")
        return value

    @field_validator("search_space")
    @classmethod
    def _check_search_space(cls, space: dict[str, ParamSpec]) -> dict[str, ParamSpec]:
        check_scale(space)
        missing = [p for p in REQUIRED_HYPERPARAMETERS if p not in space]
        if missing:
            raise ValueError(
                f"is missing the required hyperparameter(s) {', '.join(missing)}; every "
                "search space defines batch_size, epochs and learning_rate, as a "
                "distribution or a fixed value (e.g. `epochs: 5`)"
            )
        for name in ("batch_size", "epochs"):
            check_count(name, space[name])
        check_learning_rate(space["learning_rate"])
        for name in space:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                raise ValueError(f"parameter name {name!r} is not a valid identifier")
        return space

    @property
    def budget_unit(self) -> str:
        return self.scheduler.budget


def possible_values(param: ParamSpec) -> list[Any]:
    """All values an integer-valued parameter can take (used for iteration arithmetic)."""
    if isinstance(param, IntParam):
        return param.values()
    if isinstance(param, CategoricalParam):
        return list(param.values)
    if isinstance(param, FloatParam):
        raise TypeError("a float range has no finite set of values")
    return [param]
