"""The canonical training loop, written in the product's vocabulary.

For each epoch: shuffle; for each batch: one iteration (forward, backward, step); report
on the context's schedule (rung milestones, epoch ends, the final iteration). Most
trainables are then a model, a dataset and a loss::

    fit(ctx, model, optimizer, loss_fn, (X_train, y_train), evaluate=lambda: {...})

Two data paths:

- in-memory tensors ``(X, y)``: the fast path. Batches are cut by index slicing, with no
  per-sample collation (a ``DataLoader`` over a ``TensorDataset`` was 15× slower on a
  2-core machine, pytorch PR #10260);
- any ``torch.utils.data.Dataset``: the general path, through a ``DataLoader``, for data
  that does not fit in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from sweeps.training.context import TrainContext

Evaluate = Callable[[], dict[str, float]]


def fit(
    ctx: TrainContext,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    train_data: tuple[torch.Tensor, torch.Tensor] | torch.utils.data.Dataset[Any],
    evaluate: Evaluate,
) -> None:
    """Train for ``ctx.shape.epochs`` epochs, resuming from the trial's last checkpoint if any.

    ``evaluate`` is called only when the context asks for a report, so its cost does not
    scale with the number of iterations. The mean training loss since the previous report
    is reported as ``train_loss``.
    """
    shape = ctx.shape
    ctx.check_dataset_size(_dataset_length(train_data))
    state = ctx.load_checkpoint()
    iteration = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        iteration = int(state["iteration"])
    device = torch.device(ctx.device)
    model.to(device)
    batches = _batches_per_epoch(train_data, shape.batch_size, shape.drop_last, device)
    # Summed as a tensor and read once per report: `.item()` on every step would force a
    # device synchronisation per iteration.
    loss_sum = torch.zeros((), device=device)
    losses_since_report = 0
    for epoch in range(iteration // shape.iterations_per_epoch, shape.epochs):
        skip = iteration - epoch * shape.iterations_per_epoch
        # A per-epoch generator makes the shuffle a function of (seed, epoch) alone, so a
        # trial resumed mid-epoch sees exactly the batches it would have seen.
        generator = torch.Generator().manual_seed(ctx.seed * 1_000_003 + epoch)
        model.train()
        for index, (inputs, targets) in enumerate(batches(generator)):
            if index < skip:
                continue
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(inputs), targets)
            loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
            optimizer.step()
            iteration += 1
            loss_sum += loss.detach()
            losses_since_report += 1
            if not ctx.should_report(iteration):
                continue
            model.eval()
            with torch.no_grad():
                metrics = evaluate()
            model.train()
            train_loss = (loss_sum / losses_since_report).item()
            loss_sum.zero_()
            losses_since_report = 0
            if ctx.should_checkpoint(iteration):
                ctx.save_checkpoint(
                    {
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "iteration": iteration,
                        "epoch": iteration / shape.iterations_per_epoch,
                        "torch_rng": torch.get_rng_state(),
                    }
                )
            ctx.report(iteration=iteration, train_loss=train_loss, **metrics)


def _dataset_length(train_data: tuple[torch.Tensor, torch.Tensor] | torch.utils.data.Dataset[Any]) -> int:
    inputs = train_data[0] if isinstance(train_data, tuple) else train_data
    return len(inputs)  # type: ignore[arg-type]


def _batches_per_epoch(
    train_data: tuple[torch.Tensor, torch.Tensor] | torch.utils.data.Dataset[Any],
    batch_size: int,
    drop_last: bool,
    device: torch.device,
) -> Callable[[torch.Generator], Any]:
    if isinstance(train_data, tuple):
        inputs, targets = (tensor.to(device) for tensor in train_data)
        size = len(inputs)
        stop = size - size % batch_size if drop_last else size

        def sliced(generator: torch.Generator) -> Any:
            order = torch.randperm(size, generator=generator).to(device)
            for start in range(0, stop, batch_size):
                index = order[start : start + batch_size]
                yield inputs[index], targets[index]

        return sliced

    def loaded(generator: torch.Generator) -> Any:
        loader = torch.utils.data.DataLoader(
            train_data, batch_size=batch_size, shuffle=True, drop_last=drop_last, generator=generator
        )
        for inputs, targets in loader:
            yield inputs.to(device), targets.to(device)

    return loaded
