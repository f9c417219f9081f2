"""A digits MLP trained with plain SGD through ``fit``, which writes down what each rank did.

``trainable_args``:

- ``probe_dir``: each rank writes ``<seed>-rank<r>.json`` there (its rank, world size, pid,
  device and the sample indices of every batch it took); rank 0 also writes
  ``<seed>-weights.pt``, the weights after training. ``seed`` is the trial's seed.
- ``rank1_dies_at``: on its first attempt, rank 1's process exits (as if its node died) when
  it takes its share of that iteration's batch; ``<probe_dir>/died`` marks that it did.
- ``rank1_holds_at``: like ``rank1_dies_at``, but rank 1 writes its node id to
  ``<probe_dir>/held`` and waits there (its node is about to be killed by the test).
- ``iteration_seconds``: each rank sleeps this long per batch, so a stop or a kill can land
  mid-trial.
- ``later_is_worse``: trials are numbered as they start (in ``probe_dir``) and report
  ``val_accuracy = 1 / number``, so ASHA stops every trial after the first at its first rung.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import torch

from sweeps.training.context import TrainContext
from sweeps.training.loop import fit
from sweeps.training.registry import trainable
from trainables._mlp import make_mlp
from trainables.digits_mlp import TRAINING_SIZE, load_data


@trainable(dataset_size=TRAINING_SIZE)
def train(config: dict[str, Any], ctx: TrainContext) -> None:
    torch.set_num_threads(ctx.num_threads)
    torch.manual_seed(ctx.seed)
    probe_dir = Path(ctx.args["probe_dir"])
    print(f"ddp probe: rank {ctx.rank} of {ctx.world_size}")  # kept per rank in the trial's folder
    x_train, y_train, x_val, y_val = load_data()
    model = make_mlp(x_train.shape[1], 10, [32], 0.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=float(config["learning_rate"]))
    loss_fn = torch.nn.CrossEntropyLoss()
    number = _start_number(probe_dir) if ctx.args.get("later_is_worse") and ctx.rank == 0 else 1
    batches: list[list[int]] = []
    shard = ctx.shard

    die_at = ctx.args.get("rank1_dies_at")
    hold_at = ctx.args.get("rank1_holds_at")
    pause = float(ctx.args.get("iteration_seconds", 0))
    node = _node_id()

    def recording_shard(indices: Any) -> Any:
        share = shard(indices)
        batches.append([int(i) for i in share])
        if pause:
            time.sleep(pause)
        if ctx.rank == 1 and len(batches) == die_at and not (probe_dir / "died").exists():
            (probe_dir / "died").write_text(str(os.getpid()))
            os._exit(1)
        if ctx.rank == 1 and len(batches) == hold_at and not (probe_dir / "held").exists():
            _write(probe_dir / "held", {"node": node, "pid": os.getpid()})
            time.sleep(600)  # until the test kills this node
        return share

    ctx.shard = recording_shard  # type: ignore[method-assign]
    record = {
        "rank": ctx.rank,
        "world_size": ctx.world_size,
        "pid": os.getpid(),
        "device": ctx.device,
        "node": node,
        "backend": _process_group_backend(),
        "config": config,
        "batches": batches,
        "started": time.time(),
        "ended": None,
    }
    _write(probe_dir / f"{ctx.seed}-rank{ctx.rank}.json", record)  # the pid, before training
    load_checkpoint = ctx.load_checkpoint

    def recording_load() -> dict[str, Any] | None:
        state = load_checkpoint()
        record["resumed_from"] = int(state["iteration"]) if state else 0  # the iteration it restarts at
        _write(probe_dir / f"{ctx.seed}-rank{ctx.rank}.json", record)
        return state

    ctx.load_checkpoint = recording_load  # type: ignore[method-assign]

    inputs, labels = x_val.to(ctx.device), y_val.to(ctx.device)  # fit moves the model to ctx.device

    def evaluate() -> dict[str, float]:
        accuracy = (model(inputs).argmax(dim=1) == labels).float().mean().item()
        return {"val_accuracy": accuracy / number}

    fit(ctx, model, optimizer, loss_fn, (x_train, y_train), evaluate)
    record["ended"] = time.time()
    _write(probe_dir / f"{ctx.seed}-rank{ctx.rank}.json", record)
    if ctx.rank == 0:
        torch.save(model.state_dict(), probe_dir / f"{ctx.seed}-weights.pt")


def _node_id() -> str:
    """The Ray node this worker runs on ('' outside Ray)."""
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""


def _process_group_backend() -> str:
    """The process group's backend (gloo, nccl), '' for a single process."""
    distributed = torch.distributed
    return (
        str(distributed.get_backend()) if distributed.is_available() and distributed.is_initialized() else ""
    )


def _start_number(probe_dir: Path) -> int:
    number = 1
    while True:
        try:
            os.close(os.open(probe_dir / f"started-{number}", os.O_CREAT | os.O_EXCL))
            return number
        except FileExistsError:
            number += 1


def _write(path: Path, record: dict[str, Any]) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(record))
    partial.replace(path)
