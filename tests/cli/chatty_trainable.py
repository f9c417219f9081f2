"""A torch-free trainable that prints as new users' loops do, and reports on its own cadence.

Each trial prints a line to stdout at its start and at each report, and logs a warning
to stderr through ``logging``. It reports every ``report_every`` iterations and at the last
one, not at ``ctx.should_report``, so ASHA's milestones are missed (the misaligned-report
warning), and it never saves a checkpoint (the "left no checkpoint" note), although
``checkpoint.every_epochs`` is 1.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from sweeps.training.context import TrainContext
from sweeps.training.registry import trainable

DATASET_SIZE = 1000


@trainable(dataset_size=DATASET_SIZE)
def train(config: dict[str, Any], ctx: TrainContext) -> None:
    rate = float(config["learning_rate"])
    every = int(ctx.args.get("report_every", 7))
    print(f"chatty: training with learning rate {rate}")
    logging.getLogger("chatty").warning("chatty: a warning on stderr")
    total = ctx.shape.total_iterations
    for iteration in range(1, total + 1):
        if iteration % every == 0 or iteration == total:
            value = 1.0 - 1.0 / (1.0 + iteration * rate)
            print(f"chatty: iteration {iteration} val_accuracy {value:.4f}")
            if iteration == total:  # before the report: Tune may end the trial at its last one
                print("chatty: the last report", file=sys.stderr)
            ctx.report(iteration=iteration, val_accuracy=value)
