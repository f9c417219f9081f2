"""The function Ray Tune runs for each trial: it builds a context and calls the trainable.

This runs on the worker. It re-resolves the trainable from its reference (so a trainable
in a user file works on any node), reports through ``ray.tune.report`` and stores
checkpoints as Ray checkpoints, so a retried trial continues from its last one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweeps.errors import MetricNotReportedError, TrialEndedEarlyError
from sweeps.iterations import TrialShape
from sweeps.store.trial_output import captured_output
from sweeps.training.batching import ReportBatcher
from sweeps.training.context import TrainContext, TrialDiverged

_STATE_FILE = "state.pt"


@dataclass(frozen=True)
class TrialSettings:
    """Everything a worker needs, small and picklable."""

    trainable: str
    trainable_args: dict[str, Any]
    metric: str
    seed: int
    dataset_size: int
    drop_last: bool
    budget_unit: str
    milestones: tuple[float, ...]
    checkpoint_every_epochs: int
    cpus: float
    extra_pythonpath: tuple[str, ...] = field(default_factory=tuple)
    #: Resumed sweeps: trial id → last iteration the driver already received before it died
    #: (from the result journal); a trial restarted from an older checkpoint skips them.
    delivered: dict[str, int] = field(default_factory=dict)
    #: `<sweep>/stop-requested`: when it appears, trials checkpoint at their next iteration.
    stop_file: str | None = None
    #: Data-parallel workers per trial (`resources.workers`), and what each one gets.
    workers: int = 1
    gpus: float = 0
    #: Where a distributed trial's Ray Train runs keep their state (under the sweep's folder).
    train_storage: str = ""
    #: `tracking.log_model`: checkpoints keep the module handed to `ctx.set_model`.
    keep_model: bool = False
    #: `<sweep>/trials`: each trial keeps what it prints in its folder there (trial_output.py).
    trials_directory: str = ""


def trial_seed(sweep_seed: int, config: dict[str, Any]) -> int:
    """A trial's seed: a stable function of the sweep seed and the trial's config."""
    text = json.dumps({"seed": sweep_seed, "config": config}, sort_keys=True, default=str)
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


@dataclass
class RayTrialContext(TrainContext):
    """A context whose reports and checkpoints go to Ray Tune, batched (see
    :mod:`sweeps.training.batching`): only a report some decision needs waits for the driver."""

    node_id: str = ""
    delivered_through: int = -1
    stop_file: str | None = None
    #: The trial's iterations at which ASHA decides (its rung milestones).
    milestone_iterations: frozenset[int] = frozenset()
    _batcher: ReportBatcher | None = field(default=None, repr=False)
    _stop_due: bool = False
    _stop_done: bool = False
    _next_stop_poll: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self._batcher = ReportBatcher(self.milestone_iterations, self.shape.total_iterations)

    def should_report(self, iteration: int) -> bool:
        return super().should_report(iteration) or self._stop_checkpoint_due()

    def should_checkpoint(self, iteration: int) -> bool:
        return super().should_checkpoint(iteration) or self._stop_checkpoint_due()

    def _stop_checkpoint_due(self) -> bool:
        """True once the sweep is being stopped, until this trial has reported a checkpoint."""
        if self._stop_done or self.stop_file is None:
            return False
        if not self._stop_due:
            now = time.monotonic()
            if now < self._next_stop_poll:
                return False
            self._next_stop_poll = now + 0.25
            self._stop_due = os.path.exists(self.stop_file)
        return self._stop_due

    def _emit(self, result: dict[str, Any], checkpoint: Any) -> None:

        if self._stop_due and checkpoint is not None:
            self._stop_done = True
        if result["iteration"] <= self.delivered_through and not result.get("diverged"):
            # The driver received this iteration before it died: its MLflow steps, Optuna
            # values and ASHA rungs hold it already. (Same seed, same numbers.)
            if checkpoint is not None:
                shutil.rmtree(checkpoint, ignore_errors=True)
            return
        result["node_id"] = self.node_id
        assert self._batcher is not None
        # A pending stop is urgent even without a checkpoint: the driver is waiting for it.
        sent = self._batcher.offer(result, urgent=checkpoint is not None or self._stop_due)
        if sent is None:
            return
        self._deliver(sent, checkpoint)

    def _deliver(self, sent: dict[str, Any], checkpoint: str | None) -> None:
        report_to_tune(sent, checkpoint)

    def flush(self) -> None:
        assert self._batcher is not None
        sent = self._batcher.drain()
        if sent is not None:
            self._deliver(sent, None)

    def _ray_checkpoint(self) -> Any:
        from ray import tune

        return tune.get_checkpoint()

    def _store_checkpoint(self, state: dict[str, Any]) -> Any:
        import torch

        directory = tempfile.mkdtemp(prefix="sweeps-checkpoint-")
        torch.save(state, os.path.join(directory, _STATE_FILE))
        return directory

    def load_checkpoint(self) -> dict[str, Any] | None:
        import torch

        checkpoint = self._ray_checkpoint()
        if checkpoint is None:
            return None
        with checkpoint.as_directory() as directory:
            path = Path(directory) / _STATE_FILE
            return torch.load(path, weights_only=False) if path.exists() else None


def report_to_tune(sent: dict[str, Any], checkpoint: str | None) -> None:
    """Hand ``sent`` (and the checkpoint folder) to Tune; returns when the driver took it."""
    from ray import tune

    if checkpoint is None:
        tune.report(sent)
        return
    try:
        tune.report(sent, checkpoint=tune.Checkpoint.from_directory(checkpoint))
    finally:
        # Ray has copied the checkpoint into the trial's storage by now.
        shutil.rmtree(checkpoint, ignore_errors=True)


def return_freed_memory() -> None:
    """Hand the memory freed by the previous trial in this (reused) worker back to the OS.

    Ray runs each trial in a new thread of the reused actor, and glibc's allocator keeps
    what a thread's arena freed (the last trial's model, optimizer state and batches) for
    reuse instead of returning it. Measured with `make bench` (B2) on a 768×768 MLP: a
    worker's RSS grew about 4.5 MB per trial (558 → 662 MB over 24 trials) with no Python
    object left behind; trimming at each trial start kept it flat (533 → 545 MB over 40
    trials) for about 1 ms per trial. Other C libraries have no ``malloc_trim``: skip.
    """
    import ctypes

    global _malloc_trim
    if _malloc_trim is None:
        # The process's own symbols: glibc's malloc_trim on Linux, absent elsewhere.
        _malloc_trim = getattr(ctypes.CDLL(None), "malloc_trim", False)
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim: Any = None


def trial_shape(settings: TrialSettings, config: dict[str, Any]) -> tuple[TrialShape, frozenset[int]]:
    """The trial's iteration arithmetic, and the iterations at which ASHA decides on it."""
    shape = TrialShape(settings.dataset_size, int(config["batch_size"]), int(config["epochs"]), settings.drop_last)
    milestone_iterations = frozenset(
        i for i in (shape.first_iteration_reaching(m, settings.budget_unit) for m in settings.milestones)
        if i is not None
    )
    return shape, milestone_iterations


def add_pythonpath(settings: TrialSettings) -> None:
    for entry in settings.extra_pythonpath:
        if entry not in sys.path:
            sys.path.append(entry)


def make_trial_function(settings: TrialSettings) -> Callable[[dict[str, Any]], None]:
    if settings.workers > 1:
        from sweeps.ray_backend.distributed import make_distributed_trial_function

        return make_distributed_trial_function(settings)

    def run_trial(config: dict[str, Any]) -> None:
        import ray
        from ray import tune

        from sweeps.training.registry import resolve_trainable

        return_freed_memory()
        add_pythonpath(settings)
        resolved = resolve_trainable(settings.trainable, source="trial")
        shape, milestone_iterations = trial_shape(settings, config)
        gpu_ids = ray.get_gpu_ids()
        ctx = RayTrialContext(
            shape=shape,
            metric=settings.metric,
            args=dict(settings.trainable_args),
            seed=trial_seed(settings.seed, config),
            # Ray sets CUDA_VISIBLE_DEVICES to the GPU(s) it assigned, so they appear as cuda:0.
            device="cuda:0" if gpu_ids else "cpu",
            cpus=settings.cpus,
            report_iterations=milestone_iterations,
            milestone_iterations=milestone_iterations,
            checkpoint_every_epochs=settings.checkpoint_every_epochs,
            keep_model=settings.keep_model,
            node_id=ray.get_runtime_context().get_node_id(),
            delivered_through=settings.delivered.get(tune.get_context().get_trial_id(), -1),
            stop_file=settings.stop_file,
        )
        # A retry or a resumed trial restarts from its last checkpoint, which may be its
        # final iteration (its worker died right after reporting it): then it has nothing
        # left to report, and that is no breach of the contract.
        resumed = tune.get_checkpoint() is not None
        # What the trainable prints is kept in its trial folder too (sweeps.store.trial_output).
        with captured_output(trial_output_folder(settings, tune.get_context().get_trial_id())):
            try:
                returned = resolved.function(dict(config), ctx)
            except TrialDiverged:
                # The diverged result was reported already; ending normally lets the sweep go on.
                return
            except Exception:
                # What the trial reported before it raised still reaches MLflow and the journal.
                ctx.flush()
                raise
            ctx.flush()
            check_trial_ended_properly(ctx, returned, resumed)

    return run_trial


def trial_output_folder(settings: TrialSettings, trial_id: str) -> Path | None:
    """``<sweep>/trials/<trial id>/``, where the trial's output is kept.

    Not ``tune.get_context().get_trial_dir()``: that is a folder under Ray's session
    (``/tmp/ray/session_*/artifacts/...``, the driver's staging folder or the actor's working
    directory, depending on the trial), which the sweep's folder never sees. And not Ray's
    trial folder under ``<sweep>/ray/``: its name holds the config and a date, and it may not
    exist yet when the trial starts.
    """
    return Path(settings.trials_directory) / trial_id if settings.trials_directory else None


def check_trial_ended_properly(ctx: TrainContext, returned: Any, resumed: bool = False) -> None:
    """Turn a trainable that broke the contract by returning into one clear error.

    Ray Tune would otherwise abort the whole sweep with its own traceback (a trial that
    never reported its metric), or count a trial that ran out of data as pruned. A trial
    ``resumed`` from a checkpoint that reports nothing more had reported everything
    before it.
    """
    total = ctx.shape.total_iterations
    if resumed and ctx.last_reported_iteration == 0:
        return
    if ctx.last_reported_iteration == 0:
        what = "returned a value" if returned is not None else "returned"
        raise MetricNotReportedError(
            f"the trainable {what} without ever calling ctx.report, so the "
            f"sweep has no `{ctx.metric}` for it (a return value is not a report). Report as it "
            f"trains: `ctx.report(iteration=i, {ctx.metric}=...)` when `ctx.should_report(i)`, "
            "or use `sweeps.training.loop.fit`, which does."
        )
    last = ctx.last_reported_iteration
    cadence = last - ctx.previous_reported_iteration
    if last < total and total - last < cadence:
        # The loop most likely trained to the end on its own cadence and skipped the last
        # report: without it the trial would count as pruned, so say how to report it.
        raise TrialEndedEarlyError(
            f"the trainable reported last at iteration {last:,} of its {total:,} (every {cadence:,} "
            f"iterations), so its final iteration was never reported and the trial would count "
            "as stopped early. Report the final iteration too: "
            f"`if i % {cadence} == 0 or i == ctx.shape.total_iterations: ctx.report(...)`, or "
            "report when `ctx.should_report(i)`, which includes it."
        )
    if last < total:
        shape = ctx.shape
        raise TrialEndedEarlyError(
            f"the trainable returned after iteration {ctx.last_reported_iteration:,} "
            f"of the {total:,} its config implies (epochs={shape.epochs} × "
            f"{shape.iterations_per_epoch:,} iterations per epoch at batch_size={shape.batch_size}, "
            f"dataset_size={shape.dataset_size:,}, drop_last={shape.drop_last}). Either the "
            "trainable's `dataset_size` is not the size of the data it trains on, it runs fewer "
            "epochs than `config['epochs']`, or it drops the last partial batch without "
            "declaring drop_last=True. Fix the declaration, and report the final iteration."
        )
