"""B0's trainable: a module like a user's, importing torch and sweeps and nothing of the benchmarks.

It reports once, at its only iteration (batch size 10 of N = 10, one epoch). The module is
kept apart from :mod:`benchmarks.b0_startup` so that the driver and the workers import what
a real trainable's module brings (torch), not the benchmark harness.
"""

from __future__ import annotations

from typing import Any

import torch  # noqa: F401 - every real trainable's module imports torch

from sweeps import trainable
from sweeps.training.context import TrainContext


@trainable(dataset_size=10)
def trivial(config: dict[str, Any], ctx: TrainContext) -> None:
    ctx.report(iteration=1, score=float(config["learning_rate"]))
