"""A torch-free trainable that hangs after its first report, as a deadlocked trainable does.

Each trial reports at its first report iteration, then sleeps in a loop (never reporting,
never checkpointing) until the file ``trainable_args.release_file`` exists; then it
carries on like a healthy trainable and completes. ``attempts_dir`` receives one line
per attempt of each trial, to count retries.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any

from sweeps.training.context import TrainContext
from sweeps.training.registry import trainable

DATASET_SIZE = 1000


@trainable(dataset_size=DATASET_SIZE)
def train(config: dict[str, Any], ctx: TrainContext) -> None:
    release = str(ctx.args["release_file"])
    if ctx.args.get("attempts_dir"):
        key = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]
        with open(os.path.join(ctx.args["attempts_dir"], key), "a") as stream:
            stream.write("attempt\n")
    rate = float(config["learning_rate"])
    state = ctx.load_checkpoint() or {"iteration": 0}
    reported = False
    for iteration in range(int(state["iteration"]) + 1, ctx.shape.total_iterations + 1):
        if reported:
            while not os.path.exists(release):  # the hang: alive, silent
                time.sleep(0.1)
        if not ctx.should_report(iteration):
            continue
        if ctx.should_checkpoint(iteration):
            ctx.save_checkpoint({"iteration": iteration})
        value = 1.0 - 1.0 / (1.0 + iteration * rate)
        ctx.report(iteration=iteration, val_accuracy=value, val_loss=1.0 - value)
        reported = True
