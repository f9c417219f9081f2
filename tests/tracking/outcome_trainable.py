"""A torch-free test trainable whose learning rate decides how its trial ends.

- ``learning_rate >= 1``: raises at iteration 3, before any report → failed;
- ``0.1 <= learning_rate < 1``: its metrics turn NaN from iteration 10 → diverged;
- otherwise: a smooth curve → completed, or pruned by ASHA.

``trainable_args.iteration_seconds`` slows each iteration down, so a test can stop a
sweep while its trials run; the trainable checkpoints whenever the context asks.
"""

from __future__ import annotations

import time
from typing import Any

from sweeps.training.context import TrainContext
from sweeps.training.registry import trainable

DATASET_SIZE = 1000


@trainable(dataset_size=DATASET_SIZE)
def train(config: dict[str, Any], ctx: TrainContext) -> None:
    rate = float(config["learning_rate"])
    pause = float(ctx.args.get("iteration_seconds", 0.0))
    state = ctx.load_checkpoint() or {"iteration": 0}
    for iteration in range(int(state["iteration"]) + 1, ctx.shape.total_iterations + 1):
        time.sleep(pause)
        if rate >= 1.0 and iteration == 3:
            raise RuntimeError(f"learning rate {rate} blew up the test trainable")
        if ctx.should_report(iteration):
            value = 1.0 - 1.0 / (1.0 + iteration * rate)
            if 0.1 <= rate < 1.0 and iteration >= 10:
                value = float("nan")
            if ctx.should_checkpoint(iteration):
                ctx.save_checkpoint({"iteration": iteration})
            ctx.report(
                iteration=iteration, val_accuracy=value, val_loss=1.0 - value, train_loss=1.0 / iteration
            )
