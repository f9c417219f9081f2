"""The machine's own limit on B2's speed-up: B2's training step alone, then two side by side.

No orchestrator is involved: each copy is a bare process running the B2 model's training
step (digits MLP with B2's hidden sizes, Adam, batch size 64, one torch thread) for a
fixed time.
If two copies each train as fast as one alone, two workers can at best halve a serial
sweep's wall time. On machines whose cores share caches, memory bandwidth or a power
budget, each copy is slower side by side, and

    speed-up ceiling = 2 × (samples/s of one copy side by side ÷ samples/s alone)

bounds what any orchestrator with two workers can reach against one serial process
training the same samples, before any overhead.
"""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

SECONDS = 4.0
BATCH_SIZE = 64


def _train_for(hidden: list[int], seconds: float, results: Any) -> None:
    import torch

    from trainables._mlp import make_mlp
    from trainables.digits_mlp import load_data

    torch.set_num_threads(1)
    inputs, targets, _, _ = load_data()
    torch.manual_seed(0)
    model = make_mlp(inputs.shape[1], 10, hidden, 0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(0)

    def step() -> None:
        index = torch.randint(0, len(inputs), (BATCH_SIZE,), generator=generator)
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(inputs[index]), targets[index]).backward()
        optimizer.step()

    for _ in range(50):  # lazy initialisation and caches, not measured
        step()
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        step()
        steps += 1
    results.put(steps * BATCH_SIZE / (time.perf_counter() - started))


def samples_per_second(copies: int, hidden: list[int], seconds: float = SECONDS) -> list[float]:
    """Each copy's samples/s when ``copies`` copies of the MLP with ``hidden`` layers train
    at the same time."""
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no state shared with the harness
    results = context.Queue()
    processes = [context.Process(target=_train_for, args=(hidden, seconds, results)) for _ in range(copies)]
    for process in processes:
        process.start()
    rates = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join()
    return rates


def measure(workers: int, hidden: list[int]) -> dict[str, float]:
    alone = samples_per_second(1, hidden)[0]
    side_by_side = samples_per_second(workers, hidden)
    each = sum(side_by_side) / len(side_by_side)
    return {"alone": alone, "side_by_side": each, "ceiling": workers * each / alone}
