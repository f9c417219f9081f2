"""A dry run of one trial in this process: the trainable's contract checked before a sweep.

``sweep check SPEC`` calls :func:`dry_run`: the spec's trainable gets one config (each
parameter's first value, or what ``--set`` fixes) and a :class:`~sweeps.training.context.LocalContext`
that asks for reports where a real trial's would (ASHA's milestones, epoch ends, the last
iteration). It runs up to the first milestone, or a given number of iterations, and then
stops the trainable the way a pruned trial is stopped: from inside its ``ctx.report``.

No Ray and no MLflow are imported: a broken trainable is found in seconds, not after a
cluster has started, and every failure (it raised, never reported, reported something
other than a number or no metric, trained on another N than it declared) becomes one
:class:`~sweeps.errors.TrainableError` paragraph naming the config and the fix.
"""

from __future__ import annotations

import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from sweeps.errors import SweepError, TrainableError
from sweeps.iterations import TrialShape
from sweeps.spec.models import CategoricalParam, FloatParam, IntParam, SweepSpec
from sweeps.training import memory
from sweeps.training.context import LocalContext, TrialDiverged
from sweeps.training.contract import check_trial_ended_properly
from sweeps.training.registry import ResolvedTrainable


class _StopDryRun(Exception):
    """Raised from ``ctx.report`` once the dry run has its iterations (as ASHA stops a trial)."""


@dataclass
class DryRunContext(LocalContext):
    """A LocalContext that stops the trainable at ``stop_at`` and times every report."""

    stop_at: int = 0
    started: float = field(default_factory=time.perf_counter)
    report_seconds: list[float] = field(default_factory=list)
    #: The length of the training set handed to ``fit`` (None: the trainable never said).
    seen_dataset_size: int | None = None

    #: When the loop first asked ``should_report`` (after its first iteration), and at which.
    first_step: tuple[float, int] | None = None

    def should_report(self, iteration: int) -> bool:
        if self.first_step is None:
            self.first_step = (time.perf_counter() - self.started, int(iteration))
        return super().should_report(iteration)

    def _emit(self, result: dict[str, Any], checkpoint: Any) -> None:
        super()._emit(result, checkpoint)
        self.report_seconds.append(time.perf_counter() - self.started)
        if result["iteration"] >= self.stop_at:
            raise _StopDryRun

    def check_dataset_size(self, size: int) -> None:
        self.seen_dataset_size = size
        super().check_dataset_size(size)

    #: Bytes of the first checkpoint the trainable saved, as a trial writes it (``torch.save``).
    checkpoint_bytes: int | None = None

    def should_checkpoint(self, iteration: int) -> bool:
        # Asked at the first report (when the spec checkpoints at all), so that `sweep check`
        # measures a checkpoint even when its run ends before the first epoch's.
        first = self.checkpoint_every_epochs > 0 and self.checkpoint_bytes is None
        return first or super().should_checkpoint(iteration)

    def _store_checkpoint(self, state: dict[str, Any]) -> Any:
        if self.checkpoint_bytes is None:
            self.checkpoint_bytes = serialized_size(state)
        return super()._store_checkpoint(state)


def serialized_size(state: dict[str, Any]) -> int:
    """The bytes of ``state`` as a trial's checkpoint holds it (sweeps.ray_backend.worker)."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.tell()


@dataclass(frozen=True)
class DryRunResult:
    """What one dry run measured (``sweep check --json`` prints it)."""

    config: dict[str, Any]
    total_iterations: int
    target_iterations: int
    target_reason: str
    iterations_run: int
    seconds: float
    first_report_seconds: float
    #: Seconds and iteration of the loop's first ``ctx.should_report`` call (None: it never asked).
    first_step: tuple[float, int] | None
    reports: list[dict[str, Any]]
    milestone_iterations: list[int]
    missed_milestones: list[int]
    declared_dataset_size: int
    seen_dataset_size: int | None
    peak_memory_bytes: int | None
    memory_growth_bytes: int | None
    gpu_peak_memory_bytes: int | None
    diverged: bool
    #: Bytes of one checkpoint (None: the trainable saved none in these iterations).
    checkpoint_bytes: int | None = None

    @property
    def iterations_per_second(self) -> float:
        return self.iterations_run / self.seconds if self.seconds > 0 else 0.0

    @property
    def setup_seconds(self) -> float | None:
        """Seconds before the loop's first iteration ended: imports, data, model."""
        return self.first_step[0] if self.first_step else None

    @property
    def steady_iterations_per_second(self) -> float | None:
        """The training rate without the set-up: from the first iteration (when the loop
        first asked ``should_report``) to the last report, or between the first and the
        last report for a loop that never asks."""
        last = int(self.reports[-1]["iteration"])
        if self.first_step is not None:
            at, iteration = self.first_step
            spent, done = self.seconds - at, last - iteration
        elif len(self.reports) >= 2:
            spent, done = self.seconds - self.first_report_seconds, last - int(self.reports[0]["iteration"])
        else:
            return None
        return done / spent if spent > 0 and done > 0 else None


def first_config(spec: SweepSpec) -> dict[str, Any]:
    """Each parameter's first value: a categorical's first choice, a range's ``low``, a fixed value."""
    config: dict[str, Any] = {}
    for name, param in spec.search_space.items():
        if isinstance(param, CategoricalParam):
            config[name] = param.values[0]
        elif isinstance(param, (IntParam, FloatParam)):
            config[name] = param.low
        else:
            config[name] = param
    return config


def dry_run(
    spec: SweepSpec,
    resolved: ResolvedTrainable,
    dataset_size: int,
    milestones: list[float],
    iterations: int | None = None,
    device: str = "cpu",
) -> DryRunResult:
    """Run ``spec``'s trainable on :func:`first_config` up to its first milestone (or ``iterations``).

    Raises:
        TrainableError: the trainable raised, returned without reporting, reported no
            number or not the sweep's metric, trained on another N than it declared, or
            returned before its config's last iteration.
    """
    config = first_config(spec)
    shape = TrialShape(dataset_size, int(config["batch_size"]), int(config["epochs"]), resolved.drop_last)
    milestone_iterations = sorted(
        i for i in (shape.first_iteration_reaching(m, spec.budget_unit) for m in milestones) if i is not None
    )
    ctx = DryRunContext(
        shape=shape,
        metric=spec.metric,
        objectives=spec.reported_objectives,
        constraint_metrics=spec.constraint_metrics,
        args=dict(spec.trainable_args),
        seed=spec.seed,
        device=device,
        cpus=spec.resources.cpu,
        report_iterations=frozenset(milestone_iterations),
        checkpoint_every_epochs=spec.checkpoint.every_epochs,
    )
    target, reason = _target(ctx, milestone_iterations, iterations)
    ctx.stop_at = target
    # A loop that reports when asked then stops right there, not at its next milestone.
    ctx.report_iterations = ctx.report_iterations | {target}
    where = f"trainable `{spec.trainable}` with config {config}"
    watch = memory.PeakMemory(device)
    _use_the_trials_threads(ctx.num_threads)
    ctx.started = time.perf_counter()
    returned, stopped, diverged = _call_trainable(resolved, config, ctx, where)
    seconds = time.perf_counter() - ctx.started
    peak, growth, gpu_peak = watch.measure()
    if not stopped and not (diverged and ctx.last_reported_iteration):
        # It returned by itself: the check every trial's end passes (sweeps.training.contract).
        try:
            check_trial_ended_properly(ctx, returned)
        except SweepError as exc:
            raise TrainableError(f"{where}: {exc}") from None
    last = ctx.last_reported_iteration
    # Diverged at the last iteration, the stop raised in `_emit` comes before TrialDiverged.
    diverged = diverged or any(result["diverged"] for result in ctx.results)
    reported = {int(result["iteration"]) for result in ctx.results}
    reached = [i for i in milestone_iterations if i <= last]
    return DryRunResult(
        config=config,
        total_iterations=shape.total_iterations,
        target_iterations=target,
        target_reason=reason,
        iterations_run=last,
        seconds=seconds,
        first_report_seconds=ctx.report_seconds[0],
        first_step=ctx.first_step,
        reports=list(ctx.results),
        milestone_iterations=reached,
        missed_milestones=[i for i in reached if i not in reported],
        declared_dataset_size=dataset_size,
        seen_dataset_size=ctx.seen_dataset_size,
        peak_memory_bytes=peak,
        memory_growth_bytes=growth,
        gpu_peak_memory_bytes=gpu_peak,
        diverged=diverged,
        checkpoint_bytes=ctx.checkpoint_bytes,
    )


def _call_trainable(
    resolved: ResolvedTrainable, config: dict[str, Any], ctx: DryRunContext, where: str
) -> tuple[Any, bool, bool]:
    """Run the trainable: what it returned, whether the dry run stopped it, whether it diverged."""
    try:
        return resolved.function(dict(config), ctx), False, False
    except _StopDryRun:
        return None, True, False
    except TrialDiverged:
        return None, False, True
    except SweepError as exc:  # the context's own contract errors, already one paragraph
        raise TrainableError(f"{where}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - whatever the user's code raised is the finding
        raise TrainableError(_raised_message(where, exc, ctx)) from None


def _target(ctx: DryRunContext, milestones: list[int], iterations: int | None) -> tuple[int, str]:
    total = ctx.shape.total_iterations
    if iterations is not None:
        if iterations >= total:
            return total, f"the whole trial (--iterations {iterations:,} asks for more than its {total:,})"
        return iterations, f"--iterations {iterations:,}"
    if milestones:
        return milestones[0], f"its first ASHA milestone, iteration {milestones[0]:,}"
    first = min(ctx.report_iterations)
    return first, f"the first report a sweep asks of it, iteration {first:,} (no ASHA milestone)"


def _use_the_trials_threads(threads: int) -> None:
    # As a trial does: torch gets the CPUs the spec gives a trial, so the rate is the
    # trial's. Only if torch is already imported (the trainable may not use it at all).
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


def _raised_message(where: str, exc: Exception, ctx: DryRunContext) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    # The innermost frame outside the installed libraries is where the user's code failed.
    own = [f for f in frames if "site-packages" not in f.filename and "/sweeps/training/" not in f.filename]
    frame = (own or frames)[-1] if frames else None
    at = f" at {frame.filename}:{frame.lineno} (in `{frame.name}`)" if frame else ""
    after = (
        f"after reporting iteration {ctx.last_reported_iteration:,}"
        if ctx.last_reported_iteration
        else "before its first report"
    )
    message = str(exc).strip().splitlines()[0][:400] if str(exc).strip() else "(no message)"
    return (
        f"{where}: the trainable raised {type(exc).__name__}: {message}{at}, {after}. A sweep would "
        "record every trial of this config as failed. Fix the error there, then run `sweep check` again."
    )
