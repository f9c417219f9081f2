"""What every worker of a trial shares: its settings, its context, and how it runs the trainable.

A trial runs on one worker (:mod:`sweeps.ray_backend.trial`) or on several, as a Ray Train
run (:mod:`sweeps.ray_backend.distributed`); both build their context here
(:func:`worker_context`), store checkpoints the same way (``state.pt`` in a folder handed to
Tune) and run the trainable through :func:`run_trainable`, which checks how it ended
(:mod:`sweeps.training.contract`). Both import this module; it imports neither.
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
from typing import Any, TypeVar

from sweeps.iterations import TrialShape
from sweeps.training.batching import ReportBatcher
from sweeps.training.context import TrainContext
from sweeps.training.contract import check_trial_ended_properly

#: The file a checkpoint folder holds: ``torch.save`` of the trainable's state.
STATE_FILE = "state.pt"


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
    #: With several objectives, every objective's metric, and the metrics `constraints`
    #: limit: each report must include them, as ``sweep check`` demands (TrainContext.report).
    objectives: tuple[str, ...] = ()
    constraint_metrics: tuple[str, ...] = ()


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
    #: The checkpoint the trial restarts from (Ray's ``Checkpoint``), or None.
    restored: Any = None
    #: Where new checkpoints are written before Tune takes them (None: this node's temp folder).
    staging: str | None = None
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

    def _store_checkpoint(self, state: dict[str, Any]) -> Any:
        import torch

        directory = tempfile.mkdtemp(prefix="sweeps-checkpoint-", dir=self.staging)
        torch.save(state, os.path.join(directory, STATE_FILE))
        return directory

    def load_checkpoint(self) -> dict[str, Any] | None:
        import torch

        if self.restored is None:
            return None
        with self.restored.as_directory() as directory:
            path = Path(directory) / STATE_FILE
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


def trial_shape(settings: TrialSettings, config: dict[str, Any]) -> tuple[TrialShape, frozenset[int]]:
    """The trial's iteration arithmetic, and the iterations at which ASHA decides on it."""
    shape = TrialShape(
        settings.dataset_size, int(config["batch_size"]), int(config["epochs"]), settings.drop_last
    )
    milestone_iterations = frozenset(
        i
        for i in (shape.first_iteration_reaching(m, settings.budget_unit) for m in settings.milestones)
        if i is not None
    )
    return shape, milestone_iterations


def add_pythonpath(settings: TrialSettings) -> None:
    for entry in settings.extra_pythonpath:
        if entry not in sys.path:
            sys.path.append(entry)


def trial_output_folder(settings: TrialSettings, trial_id: str) -> Path | None:
    """``<sweep>/trials/<trial id>/``, where the trial's output is kept.

    Not ``tune.get_context().get_trial_dir()``: that is a folder under Ray's session
    (``/tmp/ray/session_*/artifacts/...``, the driver's staging folder or the actor's working
    directory, depending on the trial), which the sweep's folder never sees. And not Ray's
    trial folder under ``<sweep>/ray/``: its name holds the config and a date, and it may not
    exist yet when the trial starts.
    """
    return Path(settings.trials_directory) / trial_id if settings.trials_directory else None


Context = TypeVar("Context", bound=RayTrialContext)


def worker_context(
    cls: type[Context],
    settings: TrialSettings,
    config: dict[str, Any],
    trial_id: str,
    *,
    device: str,
    node_id: str,
    restored: Any,
    **extra: Any,
) -> Context:
    """The context of one worker of trial ``trial_id`` (``extra``: what ``cls`` adds)."""
    shape, milestone_iterations = trial_shape(settings, config)
    return cls(
        shape=shape,
        metric=settings.metric,
        objectives=settings.objectives,
        constraint_metrics=settings.constraint_metrics,
        args=dict(settings.trainable_args),
        seed=trial_seed(settings.seed, config),
        device=device,
        cpus=settings.cpus,
        report_iterations=milestone_iterations,
        milestone_iterations=milestone_iterations,
        checkpoint_every_epochs=settings.checkpoint_every_epochs,
        keep_model=settings.keep_model,
        node_id=node_id,
        delivered_through=settings.delivered.get(trial_id, -1),
        stop_file=settings.stop_file,
        restored=restored,
        **extra,
    )


def run_trainable(
    function: Callable[..., Any], config: dict[str, Any], ctx: RayTrialContext, *, check: bool = True
) -> None:
    """Run the trainable on ``ctx`` and check how it ended (``check``: this worker's reports count).

    What it reported before it raised still reaches MLflow and the journal (it is flushed).
    :class:`~sweeps.training.context.TrialDiverged` goes to the caller, whose trial ends
    differently on one worker and on several. A trial restarted from a checkpoint may
    have been at its final iteration (its worker died right after reporting it): then it
    has nothing left to report, and that is no breach of the contract.
    """
    from sweeps.training.context import TrialDiverged

    try:
        returned = function(dict(config), ctx)
    except TrialDiverged:
        raise  # the diverged result was delivered already
    except Exception:
        ctx.flush()
        raise
    ctx.flush()
    if check:
        check_trial_ended_properly(ctx, returned, resumed=ctx.restored is not None)
