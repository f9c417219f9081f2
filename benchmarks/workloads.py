"""The work every contender runs, so a scenario compares orchestrators and not workloads.

- :func:`noop`: a trainable that does almost nothing but report (B1);
- :func:`timed_digits`: the built-in digits MLP, widened so one trial costs about 1–3 s on
  one core, that also records its own compute seconds (B2, B5);
- :class:`OptunaTrialContext` and :class:`TuneReportContext`: the same trainables driven by
  plain Optuna or by Ray Tune used directly, reporting at the same iterations as ours.

The contenders built on other libraries call our trainable through these thin contexts
instead of a rewrite of the model, so every contender trains the same network on the same
batches with the same seeds and reports at the same iterations.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from typing_extensions import Self

from sweeps import trainable
from sweeps.iterations import TrialShape
from sweeps.training.context import TrainContext

NOOP_SIZE = 10


@trainable(dataset_size=NOOP_SIZE)
def noop(config: dict[str, Any], ctx: TrainContext) -> None:
    """Does no training: reports once per epoch (batch size 10 makes one iteration an epoch)."""
    for iteration in range(1, ctx.shape.total_iterations + 1):
        if ctx.should_report(iteration):
            ctx.report(iteration=iteration, score=float(config["learning_rate"]) * iteration)


def _digits_size() -> int:
    from trainables.digits_mlp import TRAINING_SIZE

    return TRAINING_SIZE


@trainable(dataset_size=lambda args: _digits_size())
def timed_digits(config: dict[str, Any], ctx: TrainContext) -> None:
    """The built-in digits MLP, recording its compute seconds under ``ctx.args['timing_dir']``."""
    from trainables.digits_mlp import load_data, train

    # Once per process, and not compute: loading the data, and torch's first optimizer step
    # (about 1 s of lazy imports). A contender that starts a fresh process per trial pays
    # them as overhead, which is what they are.
    load_data()
    _warm_up_torch()
    with ComputeClock(ctx):
        train(config, ctx)


@lru_cache(maxsize=1)
def _warm_up_torch() -> None:
    import torch

    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    torch.nn.functional.cross_entropy(model(torch.zeros(2, 4)), torch.tensor([0, 1])).backward()
    optimizer.step()


class ComputeClock:
    """Counts a trial's compute seconds: its wall time inside the trainable, less the time
    it spent blocked in ``report`` or writing checkpoints.

    A Ray function trainable blocks inside ``report`` until the driver has processed the
    result and asks for the next one; that wait is orchestration, not compute. Checkpoints
    are not compute either (only sweeps writes them; the other contenders do not). The
    record ``<timing_dir>/<uuid>.json`` is rewritten at every report, and at the end: a
    trial that ASHA stops leaves its last report by an exception.
    """

    def __init__(self, ctx: TrainContext) -> None:
        self._ctx = ctx
        self._directory = ctx.args.get("timing_dir")
        self._path = os.path.join(self._directory, f"{uuid.uuid4().hex}.json") if self._directory else None
        self.compute = self.blocked = self.checkpointing = 0.0
        self.reports = 0
        self.last: dict[str, int] = {}  # iteration and samples of the last report
        self.started = time.time()
        self._resumed = time.perf_counter()
        self._report = ctx.report
        self._save = ctx.save_checkpoint

    def __enter__(self) -> Self:
        self.started = time.time()
        self._resumed = time.perf_counter()
        self._ctx.report = self._timed_report  # type: ignore[method-assign]
        self._ctx.save_checkpoint = self._timed_save  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        self.compute += time.perf_counter() - self._resumed
        self._resumed = time.perf_counter()
        self._write(ended=time.time())
        self._ctx.report = self._report  # type: ignore[method-assign]
        self._ctx.save_checkpoint = self._save  # type: ignore[method-assign]

    def _timed_report(self, iteration: int, **metrics: Any) -> None:
        paused = time.perf_counter()
        self.compute += paused - self._resumed
        self.reports += 1
        self.last = {"iteration": iteration, "samples": self._ctx.shape.samples_at(iteration)}
        self._write()
        try:
            self._report(iteration=iteration, **metrics)
        finally:
            self._resumed = time.perf_counter()
            self.blocked += self._resumed - paused

    def _timed_save(self, state: dict[str, Any]) -> None:
        paused = time.perf_counter()
        self.compute += paused - self._resumed
        try:
            self._save(state)
        finally:
            self._resumed = time.perf_counter()
            self.checkpointing += self._resumed - paused

    def _write(self, **extra: Any) -> None:
        if self._path is None:
            return
        record = {
            "compute_s": self.compute,
            "blocked_s": self.blocked,
            "checkpoint_s": self.checkpointing,
            "reports": self.reports,
            "pid": os.getpid(),
            "started": self.started,
            "at": time.time(),
            "rss_mb": _rss_mb(),
            **self.last,
            **extra,
        }
        with open(self._path, "w") as stream:
            json.dump(record, stream)


def _rss_mb() -> float:
    with open("/proc/self/statm") as stream:
        return int(stream.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def read_compute_seconds(timing_dir: str) -> list[dict[str, Any]]:
    """The records :class:`ComputeClock` left in ``timing_dir``, one per trial."""
    records = []
    for name in sorted(os.listdir(timing_dir)):
        if name.endswith(".json"):
            with open(os.path.join(timing_dir, name)) as stream:
                records.append(json.load(stream))
    return records


def report_iterations(shape: TrialShape, milestones: list[float], budget_unit: str) -> frozenset[int]:
    """The iterations at which our runner makes a trial report (rung milestones; the context
    adds epoch ends)."""
    found = {shape.first_iteration_reaching(m, budget_unit) for m in milestones}
    return frozenset(i for i in found if i is not None)


class OptunaTrialContext(TrainContext):
    """Drives a trainable from a plain Optuna objective: report → ``trial.report``/``should_prune``."""

    def __init__(self, trial: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.trial = trial
        self.last_result: dict[str, Any] = {}

    def _emit(self, result: dict[str, Any], checkpoint: Any) -> None:
        import optuna

        self.last_result = result
        if result["diverged"]:
            return
        self.trial.report(result[self.metric], step=int(result["iteration"]))
        if self.trial.should_prune():
            raise optuna.TrialPruned()


class TuneReportContext(TrainContext):
    """Drives a trainable from a Ray Tune function trainable written as a Ray user would."""

    def _emit(self, result: dict[str, Any], checkpoint: Any) -> None:
        from ray import tune

        tune.report(result)


def context_for(
    cls: Callable[..., TrainContext],
    config: dict[str, Any],
    *,
    dataset_size: int,
    metric: str,
    milestones: list[float],
    budget_unit: str,
    seed: int,
    args: dict[str, Any],
    **extra: Any,
) -> TrainContext:
    """A context shaped like the one our runner builds for ``config`` (same reports, same seed)."""
    from sweeps.ray_backend.worker import trial_seed

    shape = TrialShape(dataset_size, int(config["batch_size"]), int(config["epochs"]), False)
    return cls(
        shape=shape,
        metric=metric,
        args=dict(args),
        seed=trial_seed(seed, config),
        cpus=1,
        report_iterations=report_iterations(shape, milestones, budget_unit),
        checkpoint_every_epochs=0,
        **extra,
    )
