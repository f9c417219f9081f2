"""The built-in ``synthetic_mlp``, plus a journal of what each trial did, for the multi-node test.

Every start (with the node it runs on and the iteration it resumed from), every report
(with whether it carried a checkpoint) and the end are appended as JSON lines to
``<trainable_args.journal>/<ray trial id>.jsonl``, on the filesystem all nodes of the
loopback cluster share. The training itself, its checkpoints and its resume are the
built-in trainable's, untouched.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from sweeps.training.context import TrainContext
from sweeps.training.registry import trainable
from trainables.synthetic_mlp import train as synthetic_train
from trainables.synthetic_mlp import training_size


@trainable(dataset_size=training_size, drop_last=False)
def train(config: dict[str, Any], ctx: TrainContext) -> None:
    """synthetic_mlp with a per-trial journal (see the module docstring)."""
    from ray import tune

    path = Path(ctx.args["journal"]) / f"{tune.get_context().get_trial_id()}.jsonl"

    def write(event: str, **fields: Any) -> None:
        line = json.dumps({"event": event, "time": time.time(), "pid": os.getpid(), **fields})
        with path.open("a") as stream:  # one short append per line: safe across processes
            stream.write(line + "\n")

    state = ctx.load_checkpoint()
    write(
        "start",
        node=getattr(ctx, "node_id", ""),
        resumed_from=None if state is None else int(state["iteration"]),
    )
    report = ctx.report

    def journaled_report(iteration: int, **metrics: Any) -> None:
        checkpointed = ctx._pending_checkpoint is not None
        report(iteration=iteration, **metrics)  # returns once Ray has stored the checkpoint
        write("report", iteration=iteration, checkpointed=checkpointed)

    ctx.report = journaled_report  # type: ignore[method-assign]
    synthetic_train(config, ctx)
    write("end")
