"""The context a trainable receives: where to run, when to report, and how to checkpoint.

Trainables know nothing of Ray. The runner hands them a context whose ``_emit`` forwards
to Ray Tune; tests hand them a :class:`LocalContext` and run them in a plain loop.
"""

from __future__ import annotations

import copy
import math
import numbers
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from sweeps.errors import DatasetSizeError, MetricNotReportedError
from sweeps.iterations import TrialShape

#: Keys the context adds to every result; a trainable may not report them itself.
#: The key of a checkpoint's state that holds the whole module (see TrainContext.set_model).
MODULE_KEY = "module"
DERIVED_KEYS = (
    "iteration",
    "epoch",
    "samples_seen",
    "iterations_per_epoch",
    "total_iterations",
    "dataset_size",
)


class Sliceable(Protocol):
    """What :meth:`TrainContext.shard` cuts: a tensor, a list or a range of sample indices."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: slice, /) -> Any: ...


Indices = TypeVar("Indices", bound=Sliceable)


class TrialDiverged(Exception):
    """Raised inside a trial when its metric or loss is NaN or infinite; the trial stops at once."""


@dataclass
class TrainContext:
    """What a trainable sees. Subclasses implement :meth:`_emit` and checkpoint storage.

    Args:
        shape: The trial's dataset size, batch size, epochs and drop_last.
        metric: The sweep's metric; every report must include it.
        objectives: With several objectives, every objective's metric (``metric`` first);
            every report must include them all.
        constraint_metrics: The metrics the spec's ``constraints`` limit; every report must
            include them too (a trial without them could never be judged feasible).
        args: The spec's ``trainable_args`` (fixed settings such as ``n_samples``).
        report_iterations: Iterations at which the loop must report (rung milestones,
            epoch ends and the final iteration are always added).
        checkpoint_every_epochs: Checkpoint cadence of built-in trainables (0 = never).
        world_size: Data-parallel workers of this trial (`resources.workers`).
        rank: This worker's place among them; rank 0 reports and checkpoints.
    """

    shape: TrialShape
    metric: str
    objectives: tuple[str, ...] = ()
    constraint_metrics: tuple[str, ...] = ()
    args: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    device: str = "cpu"
    cpus: float = 1
    report_iterations: frozenset[int] = frozenset()
    checkpoint_every_epochs: int = 1
    last_reported_iteration: int = 0
    #: The report before the last one: their gap is the loop's own report cadence.
    previous_reported_iteration: int = 0
    world_size: int = 1
    rank: int = 0
    #: Keep the module handed to :meth:`set_model` in each checkpoint (``tracking.log_model``):
    #: the best trial's then becomes an MLflow PyTorch model.
    keep_model: bool = False
    model: Any = field(default=None, repr=False)
    _pending_checkpoint: Any = field(default=None, repr=False)
    _warned_other_rank: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        shape = self.shape
        epoch_ends = {shape.iterations_per_epoch * e for e in range(1, shape.epochs + 1)}
        self.report_iterations = frozenset(
            {i for i in self.report_iterations if 0 < i <= shape.total_iterations}
            | epoch_ends
            | {shape.total_iterations}
        )

    @property
    def num_threads(self) -> int:
        """Torch threads for this trial: the CPUs it was given (oversubscription costs >10×)."""
        return max(1, int(self.cpus))

    def should_report(self, iteration: int) -> bool:
        return iteration in self.report_iterations

    def prepare_model(self, model: Any) -> Any:
        """``model`` ready to train on this worker: on ``ctx.device``, and wrapped for data
        parallelism (DDP, which averages the gradients of all workers) when
        ``world_size > 1``. Evaluate and checkpoint the module itself, not the wrapper."""
        return model.to(self.device) if hasattr(model, "to") else model

    def shard(self, indices: Indices) -> Indices:
        """This worker's part of ``indices``, the sample indices of one global batch.

        Every worker gets the same shuffled order (the same seed), and each takes its
        contiguous share of every batch, so together the workers see each sample exactly
        once per epoch, and iteration i updates on the same global batch as one process
        would. Shares differ by at most one sample (the first ``len % world_size`` workers
        take one more), which only a short last batch can cause.

        Example:
            >>> ctx = LocalContext(TrialShape(8, 4, 1), metric="m", world_size=2, rank=1)
            >>> ctx.shard(list(range(8))[0:4])
            [2, 3]
        """
        base, extra = divmod(len(indices), self.world_size)
        start = self.rank * base + min(self.rank, extra)
        stop = start + base + (1 if self.rank < extra else 0)
        return indices[start:stop]  # type: ignore[no-any-return]  # a slice is of the same kind

    def should_checkpoint(self, iteration: int) -> bool:
        every = self.checkpoint_every_epochs
        ipe = self.shape.iterations_per_epoch
        return every > 0 and iteration % ipe == 0 and (iteration // ipe) % every == 0

    def report(self, iteration: int | None = None, **metrics: Any) -> None:
        """Report metrics at ``iteration`` (optimizer steps taken so far in this trial).

        A metric may be any real number, or anything ``float()`` turns into one (a 0-d
        torch tensor, a NumPy scalar).
        """
        iteration = self._check_reported_keys(iteration, metrics)
        result = self._result_at(iteration, metrics)
        diverged = [k for k, v in result.items() if isinstance(v, float) and not math.isfinite(v)]
        result["diverged"] = bool(diverged)
        checkpoint, self._pending_checkpoint = self._pending_checkpoint, None
        if self.rank != 0:
            # One trial has one series of results: rank 0's. A loop that reports from every
            # rank would otherwise send W copies (and W checkpoints) of each report.
            if not self._warned_other_rank:
                self._warned_other_rank = True
                warnings.warn(
                    f"rank {self.rank} of {self.world_size} called ctx.report(iteration={iteration}); only "
                    "rank 0's reports count, so this one and every later report from ranks other than 0 "
                    "are ignored. Report only `if ctx.rank == 0`.",
                    stacklevel=2,
                )
            return
        self.previous_reported_iteration, self.last_reported_iteration = (
            self.last_reported_iteration,
            iteration,
        )
        self._emit(result, checkpoint)
        if diverged:
            raise TrialDiverged(f"{', '.join(diverged)} became non-finite at iteration {iteration}")

    def _check_reported_keys(self, iteration: int | None, metrics: dict[str, Any]) -> int:
        """The report's iteration, once the report holds what the sweep needs and nothing the
        orchestrator derives itself (each missing piece is a :class:`MetricNotReportedError`)."""
        if iteration is None:
            raise MetricNotReportedError(
                f"the trainable called ctx.report({', '.join(f'{k}=...' for k in metrics)}) without "
                "`iteration=`: the orchestrator places each report on the iteration axis (ASHA's "
                f"rungs, MLflow's steps). Pass the optimizer steps taken so far, e.g. "
                f"`ctx.report(iteration=i, {self.metric}=...)`."
            )
        if self.metric not in metrics:
            raise MetricNotReportedError(
                f"the trainable reported {sorted(metrics) or 'no metrics'} at iteration "
                f"{iteration}, but never the sweep's metric `{self.metric}`. Report it, e.g. "
                f"`ctx.report(iteration=i, {self.metric}=...)`, or set `metric:` in the spec "
                "to one of the reported keys."
            )
        missing = [m for m in self.objectives if m not in metrics]
        if missing:
            raise MetricNotReportedError(
                f"the trainable reported {sorted(metrics)} at iteration {iteration}, but never the "
                f"sweep's objective(s) {', '.join(f'`{m}`' for m in missing)} (`metric` lists "
                f"{', '.join(self.objectives)}). Report every objective in each report, e.g. "
                f"`ctx.report(iteration=i, {', '.join(f'{m}=...' for m in self.objectives)})`, or drop it "
                "from `metric` and `mode` in the spec."
            )
        unconstrained = [m for m in self.constraint_metrics if m not in metrics]
        if unconstrained:
            raise MetricNotReportedError(
                f"the trainable reported {sorted(metrics)} at iteration {iteration}, but never "
                f"{', '.join(f'`{m}`' for m in unconstrained)}, which the spec's `constraints` limit. "
                "Report every constrained metric in each report, e.g. "
                f"`ctx.report(iteration=i, {', '.join(f'{m}=...' for m in (self.metric, *unconstrained))})`, "
                "or drop its entry from `constraints` in the spec."
            )
        for key in metrics:
            if key in DERIVED_KEYS:
                raise MetricNotReportedError(
                    f"the trainable reported `{key}`, which the orchestrator derives itself; "
                    "rename that metric."
                )
        return int(iteration)

    def _result_at(self, iteration: int, metrics: dict[str, Any]) -> dict[str, Any]:
        """The metrics as numbers, with the vocabulary's figures at ``iteration``."""
        shape = self.shape
        result = {key: _as_number(key, value, iteration) for key, value in metrics.items()}
        result.update(
            iteration=iteration,
            epoch=shape.epoch_at(iteration),
            samples_seen=shape.samples_at(iteration),
            iterations_per_epoch=shape.iterations_per_epoch,
            total_iterations=shape.total_iterations,
            dataset_size=shape.dataset_size,
        )
        return result

    def check_dataset_size(self, size: int) -> None:
        """Refuse a training set whose length is not the declared ``dataset_size``.

        Every iteration figure (iterations per epoch, the trial's total, ASHA's rungs) is
        derived from the declared N; a different real N makes completed trials look
        pruned, so it is an error, not a warning.
        """
        declared = self.shape.dataset_size
        if size != declared:
            raise DatasetSizeError(
                f"the trainable declares dataset_size = {declared:,}, but fit() was handed a "
                f"training set of {size:,} samples. Iterations per epoch, `total_iterations` and "
                "ASHA's rungs are all computed from the declared size, so every result would be "
                f"off. Declare the real size: `@trainable(dataset_size={size})` (or the "
                "trainable_args setting it derives from), or pass fit() the full training set."
            )

    def flush(self) -> None:
        """Deliver any report still held (see :mod:`sweeps.training.batching`); the runner
        calls it when the trainable returns."""

    def set_model(self, model: Any) -> None:
        """Hand the trial's model (the ``torch.nn.Module`` itself, not a DDP wrapper) to the sweep.

        With ``tracking.log_model: true`` each checkpoint then holds the module too, and the
        best trial's is logged as an MLflow PyTorch model (``mlflow.pytorch.load_model``
        loads it). ``fit`` calls it; an own loop calls it once, before training.
        """
        self.model = model

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        """Store ``state``; it is attached to the next :meth:`report` (rank 0's only: every
        rank holds the same weights)."""
        if self.rank != 0:
            return
        # The module's weights are the same tensors as a state_dict in `state`, and
        # `torch.save` writes a storage once: an MLP's 4.0 MB checkpoint grew by 1.5 kB.
        if self.keep_model and self.model is not None and MODULE_KEY not in state:
            try:
                self._pending_checkpoint = self._store_checkpoint({**state, MODULE_KEY: self.model})
                return
            except Exception as exc:  # noqa: BLE001  # pickle raises many kinds (a local class, a lambda)
                # The weights are still checkpointed; only the MLflow model is given up.
                self.keep_model = False
                print(
                    f"sweeps: the model handed to ctx.set_model cannot be saved whole ({type(exc).__name__}: "
                    f"{exc}); checkpoints keep its weights only, and no MLflow model is logged. Define its "
                    "class at a module's top level.",
                    file=sys.stderr,
                )
        self._pending_checkpoint = self._store_checkpoint(state)

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The state of the last checkpoint of this trial (after a retry or resume), or None."""
        return None

    def _store_checkpoint(self, state: dict[str, Any]) -> Any:
        return copy.deepcopy(state)

    def _emit(self, result: dict[str, Any], checkpoint: Any) -> None:
        raise NotImplementedError


def _as_number(key: str, value: Any, iteration: int) -> float:
    """``value`` as a float: a real number, or a scalar such as a 0-d tensor (``__float__``)."""
    if not isinstance(value, (bool, str, bytes)) and not isinstance(value, complex):
        if isinstance(value, numbers.Real):
            return float(value)
        if hasattr(value, "__float__"):
            try:
                return float(value)
            except (TypeError, ValueError, RuntimeError):
                pass  # e.g. a tensor of more than one element
    raise MetricNotReportedError(
        f"the trainable reported metric `{key}` = {value!r} ({type(value).__name__}) at "
        f"iteration {iteration}; metrics must be real numbers (a 0-d tensor is fine). "
        "Report one number per metric, e.g. `loss.item()` or `float(...)`."
    )


@dataclass
class LocalContext(TrainContext):
    """A context for running a trainable in a plain loop (tests, notebooks, debugging).

    Example:
        >>> ctx = LocalContext(TrialShape(1000, 100, 2), metric="val_accuracy")
        >>> train(config, ctx)  # doctest: +SKIP
        >>> ctx.results[-1]["iteration"]  # doctest: +SKIP
        20
    """

    results: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[tuple[int, Any]] = field(default_factory=list)
    resume_from: dict[str, Any] | None = None

    def _emit(self, result: dict[str, Any], checkpoint: Any) -> None:
        self.results.append(result)
        if checkpoint is not None:
            self.checkpoints.append((result["iteration"], checkpoint))

    def load_checkpoint(self) -> dict[str, Any] | None:
        return copy.deepcopy(self.resume_from)
