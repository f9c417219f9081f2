"""B6: one data-parallel trial at ``workers`` 1 and 2, against the same loop in plain torch.

Every contender trains the same MLP (64 → 256 → 256 → 2, SGD, one torch thread per
process) on the same seeded synthetic data (N = 20,480, batch 128, drop_last: exactly 160
iterations per epoch) with the same shuffles and the same contiguous per-rank shares of
each global batch:

- **sweeps, workers: 1**: `sweep run` of one trial, the single-actor path;
- **sweeps, workers: 2**: the same spec with `resources.workers: 2` (a Ray Train
  TorchTrainer of two gloo workers inside the Tune trial);
- **torch, 1 process** and **torch DDP, 2 processes**: the loop without Ray, the second
  with `torch.multiprocessing` and a gloo process group, as a user would write by hand.

Both 2-process contenders use one DDP communication hook that all-reduces each gradient
bucket synchronously and times it, so "all-reduce" is measured the same way in both (it
also removes DDP's overlap of communication with the backward pass, in both alike).
Figures, from rank 0: training samples per second (first to last iteration), seconds in
all-reduce per 1,000 iterations and their share of training time, start-up (the
contender's launch to its first iteration) and the end-to-end wall.

On 2 cores this measures overhead, not the speed-up a multi-GPU node gives; see
benchmarks/SCALING.md for the projection.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from benchmarks.harness import Scenario, python_module, ratio, run_process, sweep_command
from sweeps import trainable
from sweeps.training.context import TrainContext

N_SAMPLES, FEATURES, BATCH, EPOCHS, LEARNING_RATE = 20_480, 64, 128, 6, 0.05
SWEEPS_1, SWEEPS_2 = "sweeps, workers: 1", "sweeps, workers: 2"
TORCH_1, TORCH_2 = "torch, 1 process", "torch DDP, 2 processes"
SLUGS = {SWEEPS_1: "sweeps-1", SWEEPS_2: "sweeps-2", TORCH_1: "torch-1", TORCH_2: "torch-2"}


def make_data(seed: int = 0) -> tuple[Any, Any]:
    import torch

    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(N_SAMPLES, FEATURES, generator=generator)
    y = (x @ torch.randn(FEATURES, generator=generator) > 0).long()
    return x, y


def contiguous_share(indices: Any, rank: int, world_size: int) -> Any:
    """Rank ``rank``'s share of a global batch, as ``ctx.shard`` gives it (equal shares here)."""
    share = len(indices) // world_size
    return indices[rank * share : (rank + 1) * share]


def train_loop(
    rank: int,
    world_size: int,
    shard: Callable[[Any], Any],
    prepare: Callable[[Any], Any],
    report: Callable[[int, float], None],
    out: str | None,
) -> None:
    """The one loop every contender runs; rank 0 writes its timings to ``out``."""
    import torch

    entered = time.time()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x, y = make_data()
    model = prepare(
        torch.nn.Sequential(
            torch.nn.Linear(FEATURES, 256),
            torch.nn.ReLU(),
            torch.nn.Linear(256, 256),
            torch.nn.ReLU(),
            torch.nn.Linear(256, 2),
        )
    )
    allreduce = [0.0]
    if world_size > 1:
        model.register_comm_hook(None, _timed_allreduce(allreduce))
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    loss_fn = torch.nn.CrossEntropyLoss()
    per_epoch, iteration, first = N_SAMPLES // BATCH, 0, 0.0
    for epoch in range(EPOCHS):
        order = torch.randperm(N_SAMPLES, generator=torch.Generator().manual_seed(epoch))
        for step in range(per_epoch):
            if iteration == 0:
                first = time.time()
            index = shard(order[step * BATCH : (step + 1) * BATCH])
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[index]), y[index])
            loss.backward()
            optimizer.step()
            iteration += 1
        report(iteration, float(loss.detach()))
    last = time.time()
    if rank == 0 and out:
        Path(out).write_text(
            json.dumps(
                {
                    "entered": entered,
                    "first_iteration": first,
                    "last_iteration": last,
                    "iterations": iteration,
                    "allreduce_s": allreduce[0],
                }
            )
        )


def _timed_allreduce(clock: list[float]) -> Callable[[Any, Any], Any]:
    # Unannotated on purpose: DDP refuses a hook whose annotations are not its own types,
    # and under `from __future__ import annotations` they would be strings.
    def hook(state, bucket):  # type: ignore[no-untyped-def]
        import torch
        import torch.distributed as dist

        tensor = bucket.buffer()
        started = time.perf_counter()
        dist.all_reduce(tensor)
        clock[0] += time.perf_counter() - started
        tensor.div_(dist.get_world_size())
        future: Any = torch.futures.Future()
        future.set_result(tensor)
        return future

    return hook


@trainable(dataset_size=N_SAMPLES, drop_last=True)
def ddp_timed(config: dict[str, Any], ctx: TrainContext) -> None:
    """The B6 loop as a sweeps trainable (batch size, epochs and learning rate are B6's own)."""

    def report(iteration: int, loss: float) -> None:
        if ctx.rank == 0:  # the others' reports would be ignored (with a warning)
            ctx.report(iteration=iteration, train_loss=loss)

    train_loop(ctx.rank, ctx.world_size, ctx.shard, ctx.prepare_model, report, ctx.args.get("out"))


def _by_hand_worker(rank: int, world_size: int, port: int, out: str) -> None:
    import torch
    import torch.distributed as dist

    if world_size > 1:
        dist.init_process_group(
            "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size
        )

    def prepare(model: Any) -> Any:
        return torch.nn.parallel.DistributedDataParallel(model) if world_size > 1 else model

    train_loop(
        rank, world_size, lambda i: contiguous_share(i, rank, world_size), prepare, lambda *_: None, out
    )
    if world_size > 1:
        dist.barrier()  # neither rank tears gloo down while the other still uses it (SIGABRT otherwise)
        dist.destroy_process_group()


def by_hand(workers: int, out: str) -> None:
    """The plain-torch contenders: one process, or ``workers`` spawned processes on gloo."""
    if workers == 1:
        _by_hand_worker(0, 1, 0, out)
        return
    import torch.multiprocessing as mp

    with socket.socket() as probe:  # a free port for the process group's rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mp.spawn(_by_hand_worker, args=(workers, port, out), nprocs=workers, join=True)


def _sweep_spec(workdir: Path, workers: int, out: Path) -> Path:
    spec = {
        "name": f"b6-w{workers}",
        "trainable": "benchmarks.b6_distributed:ddp_timed",
        "trainable_args": {"out": str(out)},
        "metric": "train_loss",
        "mode": "min",
        "num_samples": 1,
        "seed": 0,
        "search_space": {"batch_size": BATCH, "epochs": EPOCHS, "learning_rate": LEARNING_RATE},
        "scheduler": {"type": "none"},
        "resources": {"cpu": 1, "gpu": 0, "workers": workers},
        "storage": str(workdir / "results"),
    }
    path = workdir / f"b6-w{workers}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _measure(contender: str, workdir: Path, rep: int) -> dict[str, float]:
    out = workdir / f"{SLUGS[contender]}-{rep}.json"
    workers = 2 if contender in (SWEEPS_2, TORCH_2) else 1
    if contender in (SWEEPS_1, SWEEPS_2):
        command = sweep_command("run", str(_sweep_spec(workdir, workers, out)), "--json", "--overwrite")
    else:
        command = python_module(
            "benchmarks.b6_distributed", "by-hand", "--workers", str(workers), "--out", str(out)
        )
    launched = time.time()
    process = run_process(command)
    timings = json.loads(out.read_text())
    training = timings["last_iteration"] - timings["first_iteration"]
    figures = {
        "samples_per_s": timings["iterations"] * BATCH / training,
        "startup_s": timings["first_iteration"] - launched,
        "wall_s": process.wall_s,
    }
    if workers > 1:  # one process has no all-reduce: its cells stay blank
        figures["allreduce_per_1000"] = timings["allreduce_s"] / timings["iterations"] * 1000
        figures["allreduce_share"] = timings["allreduce_s"] / training
    return figures


def run(reps: int, workdir: Path) -> Scenario:
    contenders = [SWEEPS_1, SWEEPS_2, TORCH_1, TORCH_2]
    scenario = Scenario(
        "B6",
        f"one trial, {EPOCHS} epochs × {N_SAMPLES // BATCH} iterations, data-parallel on 2 cores",
        contenders,
    )
    rows = {
        "samples_per_s": scenario.row("training samples/s (rank 0)", "{:,.0f}"),
        "allreduce_per_1000": scenario.row("all-reduce s per 1,000 iterations", "{:.2f}"),
        "allreduce_share": scenario.row("all-reduce share of training time", "{:.0%}"),
        "startup_s": scenario.row("start-up: launch to first iteration (s)", "{:.1f}"),
        "wall_s": scenario.row("end-to-end wall (s)", "{:.1f}"),
    }
    for rep in range(reps):
        # Alternating order, so slow drift on a shared machine hits every contender alike.
        for contender in contenders if rep % 2 == 0 else contenders[::-1]:
            for key, value in _measure(contender, workdir, rep).items():
                rows[key].add(contender, value)
    speed = ratio(rows["samples_per_s"].median(SWEEPS_2), rows["samples_per_s"].median(TORCH_2))
    scenario.check(rows["samples_per_s"].figure, "workers 2 at {:.0%} of torch DDP", speed, "", None)
    startup_1, startup_2 = rows["startup_s"].median(SWEEPS_1), rows["startup_s"].median(SWEEPS_2)
    if startup_1 is not None and startup_2 is not None:
        rows["startup_s"].ratio = f"workers 2: +{startup_2 - startup_1:.1f} s over workers 1"
    scenario.notes.append(
        "B6: the same loop, data and shuffles in every contender; all-reduce timed by one synchronous "
        "DDP communication hook in both 2-process contenders; MLflow tracking on for sweeps."
    )
    return scenario


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.b6_distributed")
    parser.add_argument("mode", choices=["by-hand"])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    by_hand(args.workers, args.out)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
