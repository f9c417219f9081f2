"""A torch-free trainable whose ``trainable_args.behaviour`` decides how its trials behave.

- ``ok``: a smooth curve that grows with the learning rate (completed, or pruned by ASHA);
- ``raise_above``: trials with ``learning_rate`` above ``threshold`` raise at iteration 3;
- ``drop_metric``: reports the sweep's metric at first, then stops reporting it;
- ``string_metric``: reports the sweep's metric as a string.

``iteration_seconds`` slows each iteration so a test can stop a sweep while trials run;
``attempts_dir`` receives one line per attempt of each trial (to count retries). The
trainable checkpoints whenever the context asks and resumes from its checkpoint.
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
    behaviour = ctx.args.get("behaviour", "ok")
    rate = float(config["learning_rate"])
    pause = float(ctx.args.get("iteration_seconds", 0.0))
    if ctx.args.get("attempts_dir"):
        key = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]
        with open(os.path.join(ctx.args["attempts_dir"], key), "a") as stream:
            stream.write("attempt\n")
    state = ctx.load_checkpoint() or {"iteration": 0}
    for iteration in range(int(state["iteration"]) + 1, ctx.shape.total_iterations + 1):
        time.sleep(pause)
        if behaviour == "raise_above" and rate > float(ctx.args["threshold"]) and iteration == 3:
            raise RuntimeError(f"learning rate {rate} is too high for this test trainable")
        if not ctx.should_report(iteration):
            continue
        value = 1.0 - 1.0 / (1.0 + iteration * rate)
        if ctx.should_checkpoint(iteration):
            ctx.save_checkpoint({"iteration": iteration})
        if behaviour == "drop_metric" and iteration > ctx.shape.iterations_per_epoch:
            ctx.report(iteration=iteration, val_loss=1.0 - value)
        elif behaviour == "string_metric":
            ctx.report(iteration=iteration, val_accuracy=f"{value:.3f}")
        else:
            ctx.report(iteration=iteration, val_accuracy=value, val_loss=1.0 - value)
