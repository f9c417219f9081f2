"""A small CNN on the digits images, written the way most users write one (B2R).

A hand-written loop, not :func:`sweeps.training.loop.fit`: it evaluates and calls
``ctx.report`` every ``report_every`` iterations (and at the final one), on its own
cadence rather than at ``ctx.should_report``. ``report_every: 0`` reports only when
``ctx.should_report(i)`` instead. ``evaluate_every`` (same rules; default: the report
cadence) evaluates on its own cadence, the latest accuracy going into every report: the
cost of reporting can then be measured with the evaluation held equal. It searches one
extra parameter, the conv ``width``.

Each trial records the CPU time of its own thread (``time.thread_time``: torch runs one
intra-op thread per trial, on the calling thread, so this is the trial's compute and
excludes any time it spent waiting for an orchestrator) under ``ctx.args['timing_dir']``.
The same function runs under sweeps, under plain Optuna
(:class:`benchmarks.workloads.OptunaTrialContext`) and under Optuna in several
processes, so every contender trains the same network.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any

from sweeps import trainable
from sweeps.training.context import TrainContext


def _digits_size() -> int:
    from trainables.digits_mlp import TRAINING_SIZE

    return TRAINING_SIZE


@trainable(dataset_size=lambda args: _digits_size())
def train(config: dict[str, Any], ctx: TrainContext) -> None:
    import torch

    from trainables.digits_mlp import load_data

    torch.set_num_threads(1)
    torch.manual_seed(ctx.seed)
    x_train, y_train, x_val, y_val = (torch.as_tensor(a) for a in load_data())
    x_train, x_val = x_train.float().reshape(-1, 1, 8, 8), x_val.float().reshape(-1, 1, 8, 8)
    y_train, y_val = y_train.long(), y_val.long()
    width = int(config.get("width", 16))
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, width, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(width, width, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(width * 16, 10),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=float(config["learning_rate"]))
    batch_size, total = ctx.shape.batch_size, ctx.shape.total_iterations
    report_every = int(ctx.args.get("report_every", 10))
    evaluate_every = int(ctx.args.get("evaluate_every", report_every))
    accuracy = 0.0
    clock = TrialClock(ctx.args.get("timing_dir"))
    generator = torch.Generator().manual_seed(ctx.seed)
    iteration = 0
    try:
        for _ in range(ctx.shape.epochs):
            order = torch.randperm(len(x_train), generator=generator)
            for start in range(0, len(x_train), batch_size):
                index = order[start : start + batch_size]
                optimizer.zero_grad(set_to_none=True)
                loss = torch.nn.functional.cross_entropy(model(x_train[index]), y_train[index])
                loss.backward()
                optimizer.step()
                iteration += 1
                if _due(iteration, evaluate_every, total, ctx):
                    with torch.no_grad():
                        accuracy = (model(x_val).argmax(1) == y_val).float().mean().item()
                if not _due(iteration, report_every, total, ctx):
                    continue
                clock.reported(iteration, batch_size)
                ctx.report(iteration=iteration, val_accuracy=accuracy, train_loss=loss.item())
    finally:
        clock.write(ended=True)


def _due(iteration: int, every: int, total: int, ctx: TrainContext) -> bool:
    """Every ``every`` iterations and at the last one; at ``ctx.should_report`` for 0."""
    return iteration % every == 0 or iteration == total if every else ctx.should_report(iteration)


class TrialClock:
    """The trial's own thread CPU seconds and what it trained, written at each report."""

    def __init__(self, directory: str | None) -> None:
        self._path = os.path.join(directory, f"{uuid.uuid4().hex}.json") if directory else None
        self._started = time.thread_time()
        self._began = time.time()
        self.iterations = self.samples = self.reports = 0

    def reported(self, iteration: int, batch_size: int) -> None:
        self.iterations, self.samples = iteration, iteration * batch_size
        self.reports += 1
        if self.reports % 10 == 0:  # a trial stopped by ASHA or Optuna leaves by an exception
            self.write()

    def write(self, ended: bool = False) -> None:
        if self._path is None:
            return
        with open(self._path, "w") as stream:
            json.dump(
                {
                    "cpu_s": time.thread_time() - self._started,
                    "iterations": self.iterations,
                    "samples": self.samples,
                    "reports": self.reports,
                    "ended": ended,
                    "pid": os.getpid(),
                    "began": self._began,
                    "at": time.time(),
                },
                stream,
            )


def read_clocks(directory: str) -> dict[str, float]:
    """Sums over the trials' records."""
    totals = {"cpu_s": 0.0, "iterations": 0.0, "samples": 0.0, "reports": 0.0, "trials": 0.0}
    for name in os.listdir(directory):
        with open(os.path.join(directory, name)) as stream:
            record = json.load(stream)
        for key in ("cpu_s", "iterations", "samples", "reports"):
            totals[key] += record[key]
        totals["trials"] += 1
    return totals
