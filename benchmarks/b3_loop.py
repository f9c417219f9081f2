"""B3: training-loop throughput. ``sweeps.training.loop.fit`` against a hand-written minimal loop.

Both train the built-in digits MLP (64→128→64→10, Adam, cross-entropy) on the same
1,438 training images, one torch thread, for the same epochs at each batch size, and both
evaluate on the validation set at each epoch end (``fit`` reports there). The
hand-written loop is the limit: shuffle by index, slice, zero_grad, forward, backward,
step, nothing else. ``fit`` runs under a :class:`~sweeps.training.context.LocalContext`
without checkpoints, so the figure is the loop's own cost.

Figure: samples per CPU second of the training thread. With one torch thread all the work
runs on that thread, so on an idle machine this equals samples per wall second; on a
machine shared with other jobs it does not count the time the thread waited for a core.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.harness import Scenario

BATCH_SIZES = (16, 64, 256)
#: Samples trained per measurement (whole epochs), enough for about a second per run.
SAMPLES = 60_000
OURS, HAND = "sweeps `fit`", "hand-written loop"


def _setup(batch_size: int) -> tuple[Any, ...]:
    import torch

    from trainables._mlp import make_mlp
    from trainables.digits_mlp import load_data

    x_train, y_train, x_val, y_val = load_data()
    torch.manual_seed(0)
    model = make_mlp(x_train.shape[1], 10, [128, 64], 0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def evaluate() -> dict[str, float]:
        logits = model(x_val)
        return {"val_accuracy": (logits.argmax(dim=1) == y_val).float().mean().item()}

    return model, optimizer, loss_fn, (x_train, y_train), evaluate


def run_fit(batch_size: int, epochs: int) -> float:
    """Seconds ``fit`` takes for ``epochs`` epochs."""
    from sweeps import fit
    from sweeps.iterations import TrialShape
    from sweeps.training.context import LocalContext

    model, optimizer, loss_fn, data, evaluate = _setup(batch_size)
    ctx = LocalContext(
        TrialShape(len(data[0]), batch_size, epochs), metric="val_accuracy", seed=0, checkpoint_every_epochs=0
    )
    started = time.thread_time()
    fit(ctx, model, optimizer, loss_fn, data, evaluate)
    return time.thread_time() - started


def run_hand_written(batch_size: int, epochs: int) -> float:
    """Seconds the minimal loop takes for ``epochs`` epochs."""
    import torch

    model, optimizer, loss_fn, (inputs, targets), evaluate = _setup(batch_size)
    size = len(inputs)
    started = time.thread_time()
    for epoch in range(epochs):
        order = torch.randperm(size, generator=torch.Generator().manual_seed(epoch))
        model.train()
        for start in range(0, size, batch_size):
            index = order[start : start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(inputs[index]), targets[index])
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            evaluate()
    return time.thread_time() - started


def run(
    reps: int, workdir: Path, batch_sizes: tuple[int, ...] = BATCH_SIZES, samples: int = SAMPLES
) -> Scenario:
    import torch

    from trainables.digits_mlp import TRAINING_SIZE

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one trial, one core: what a sweep gives each trial
    scenario = Scenario("B3", "training-loop throughput, digits MLP, 1 thread", [OURS, HAND])
    try:
        epochs = max(1, samples // TRAINING_SIZE)
        contenders: dict[str, Callable[[int, int], float]] = {OURS: run_fit, HAND: run_hand_written}
        for batch_size in batch_sizes:
            run_fit(batch_size, 1)  # warm-up: allocator, kernels, data cache
            run_hand_written(batch_size, 1)
            row = scenario.row(f"samples/CPU-s, batch size {batch_size}", "{:,.0f}")
            for rep in range(reps):
                # Alternate which goes first, so slow drift on a shared machine hits both.
                order = [OURS, HAND] if rep % 2 == 0 else [HAND, OURS]
                for contender in order:
                    row.add(contender, epochs * TRAINING_SIZE / contenders[contender](batch_size, epochs))
            share = row.median(OURS) / row.median(HAND)  # type: ignore[operator]
            scenario.check(row.figure, "{:.0%} of hand-written", share, "≥ 90 %", share >= 0.9)
    finally:
        torch.set_num_threads(threads)
    scenario.notes.append(
        f"B3: {epochs} epochs of {TRAINING_SIZE:,} samples per measurement, evaluation on the "
        "validation set at each epoch end in both loops, contenders alternating."
    )
    return scenario
