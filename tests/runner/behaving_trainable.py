"""A torch-free trainable whose ``trainable_args.behaviour`` decides how its trials behave.

- ``ok``: a smooth curve that grows with the learning rate (completed, or pruned by ASHA);
- ``raise_above``: trials with ``learning_rate`` above ``threshold`` raise at iteration 3;
- ``out_of_memory``: trials with ``batch_size`` of ``oom_batch_size`` or more raise
  ``RuntimeError: CUDA out of memory...`` at iteration 2 (what a GPU too small does);
- ``drop_metric``: reports the sweep's metric at first, then stops reporting it;
- ``string_metric``: reports the sweep's metric as a string;
- ``no_report`` / ``return_value``: returns without reporting (the second returns a dict);
- ``no_iteration``: calls ``ctx.report`` without ``iteration=``;
- ``tensor_metric``: reports its metrics as 0-d torch tensors;
- ``skip_final``: with ``report_every``, never reports the final iteration;
- ``short_data``: a loop over 3/4 of the declared data, ending before ``total_iterations``.

``report_every`` makes it a hand-written loop that reports on its own cadence (every N
iterations and at the last one) instead of at ``ctx.should_report``; ``die_once_at`` kills
the worker process (``os._exit``) at that iteration on a trial's first attempt (with
``attempts_dir``), so Ray retries it from its last checkpoint.

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
#: What PyTorch raises when a batch does not fit in the GPU's memory (its first line).
OUT_OF_MEMORY = (
    "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 15.78 GiB total capacity; "
    "13.20 GiB already allocated; 1.05 GiB free; 13.50 GiB reserved in total by PyTorch)"
)


@trainable(dataset_size=DATASET_SIZE)
def train(config: dict[str, Any], ctx: TrainContext) -> None:
    behaviour = ctx.args.get("behaviour", "ok")
    rate = float(config["learning_rate"])
    pause = float(ctx.args.get("iteration_seconds", 0.0))
    if ctx.args.get("attempts_dir"):
        key = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]
        path = os.path.join(ctx.args["attempts_dir"], key)
        with open(path, "a") as stream:
            stream.write("attempt\n")
        with open(path) as stream:
            attempts = len(stream.readlines())
    if behaviour == "no_report":
        return None
    if behaviour == "return_value":
        return {ctx.metric: 0.9}  # type: ignore[return-value]  # what a Ray Tune user might try
    first_attempt = attempts == 1 if ctx.args.get("attempts_dir") else False
    report_every = ctx.args.get("report_every")
    state = ctx.load_checkpoint() or {"iteration": 0}
    total = ctx.shape.total_iterations
    if behaviour == "short_data":  # a loop over 3/4 of the declared data: it ends early
        total = total * 3 // 4
    for iteration in range(int(state["iteration"]) + 1, total + 1):
        time.sleep(pause)
        if (
            behaviour == "out_of_memory"
            and config["batch_size"] >= int(ctx.args["oom_batch_size"])
            and iteration == 2
        ):
            raise RuntimeError(OUT_OF_MEMORY)
        if behaviour == "raise_above" and rate > float(ctx.args["threshold"]) and iteration == 3:
            raise RuntimeError(f"learning rate {rate} is too high for this test trainable")
        if first_attempt and iteration == ctx.args.get("die_once_at"):
            os._exit(1)
        if report_every:
            due = iteration % int(report_every) == 0 or (iteration == total and behaviour != "skip_final")
        else:
            due = ctx.should_report(iteration)
        if not due:
            continue
        value = 1.0 - 1.0 / (1.0 + iteration * rate)
        if ctx.should_checkpoint(iteration):
            ctx.save_checkpoint({"iteration": iteration})
        if behaviour == "drop_metric" and iteration > ctx.shape.iterations_per_epoch:
            ctx.report(iteration=iteration, val_loss=1.0 - value)
        elif behaviour == "string_metric":
            ctx.report(iteration=iteration, val_accuracy=f"{value:.3f}")
        elif behaviour == "no_iteration":
            ctx.report(val_accuracy=value)  # type: ignore[call-arg]
        elif behaviour == "tensor_metric":
            import torch

            ctx.report(
                iteration=iteration, val_accuracy=torch.tensor(value), val_loss=torch.tensor(1.0 - value)
            )
        else:
            ctx.report(iteration=iteration, val_accuracy=value, val_loss=1.0 - value)
