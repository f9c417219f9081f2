"""B5's training workload: the built-in ``synthetic_mlp`` trainable, driven in process.

A two-hidden-layer MLP (Adam) on 2,000 seeded synthetic samples of 5 classes and 20
features (400 more for validation), batch size 64 for 4 epochs: 32 iterations an epoch,
``max_t`` = 128 iterations, a short trial. The space spans what makes configs differ
widely and shows early: the learning rate over five decades (1e-5 to 1, log; too low
barely moves in 128 iterations, too high diverges or stalls), the width of both hidden
layers (4 to 128, log) and the weight decay (1e-6 to 0.1, log). Validation accuracy is
maximised. Every contender trains the same network on the same batches with the seed the
sweep would give the trial (:func:`benchmarks.workloads.context_for`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna

from benchmarks.workloads import context_for
from sweeps.training.context import TrainContext

N = 2_000
BATCH_SIZE = 64
EPOCHS = 4
ARGS = {"n_samples": N, "n_features": 20, "n_classes": 5, "hidden_sizes": [64, 64], "data_seed": 0}


class _Reporting(TrainContext):
    def __init__(self, report: Callable[[int, float], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.forward = report

    def _emit(self, result: dict[str, Any], checkpoint: Any) -> None:
        self.forward(int(result["iteration"]), float(result["val_accuracy"]))


@dataclass(frozen=True)
class MLPProblem:
    name: str = "synthetic MLP, max_t 128"
    max_t: int = EPOCHS * -(-N // BATCH_SIZE)
    mode: str = "max"

    def space(self) -> dict[str, optuna.distributions.BaseDistribution]:
        return {
            "learning_rate": optuna.distributions.FloatDistribution(1e-5, 1.0, log=True),
            "hidden_size": optuna.distributions.IntDistribution(4, 128, log=True),
            "weight_decay": optuna.distributions.FloatDistribution(1e-6, 0.1, log=True),
        }

    def run(self, config: dict[str, Any], steps: list[int], report: Callable[[int, float], None]) -> None:
        from trainables.synthetic_mlp import train

        full = {**config, "batch_size": BATCH_SIZE, "epochs": EPOCHS}
        ctx = context_for(
            _Reporting,
            full,
            dataset_size=N,
            metric="val_accuracy",
            milestones=[float(s) for s in steps],
            budget_unit="iterations",
            seed=0,
            args=ARGS,
            report=report,
        )
        train(full, ctx)
