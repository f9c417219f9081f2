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

Data parallelism (``ctx.world_size > 1``, one call of ``fit`` on each worker): the model is
wrapped by ``ctx.prepare_model`` (DDP averages the workers' gradients in ``backward``),
every worker shuffles with the same seed and takes its share of each global batch
(``ctx.shard``), so iteration i is one update on the same ``batch_size`` samples as in a
single process, and the workers together see every sample once per epoch. Rank 0 alone
evaluates, reports and checkpoints; the others only train.
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
    is reported as ``train_loss`` (rank 0's share of the batches, when data-parallel).
    ``loss_fn`` must average over the batch (PyTorch's default ``reduction="mean"``): a
    worker whose share of a short last batch differs from the others' has its loss weighted
    so that DDP's average of the workers' gradients is the gradient of the global batch.
    """
    shape = ctx.shape
    ctx.check_dataset_size(_dataset_length(train_data))
    iteration = _restore(ctx, model, optimizer)
    device = torch.device(ctx.device)
    model.to(device)
    ctx.set_model(model)  # the module itself: what `tracking.log_model` logs as an MLflow model
    # The wrapper trains; `model` itself (the same parameters) is what `evaluate` and the
    # checkpoint see, so rank 0 evaluates without a collective the other ranks would wait on.
    trained = ctx.prepare_model(model)
    batches = _batches_per_epoch(train_data, shape.batch_size, shape.drop_last, device, ctx)
    losses = _LossMeter(device)
    for epoch in range(iteration // shape.iterations_per_epoch, shape.epochs):
        skip = iteration - epoch * shape.iterations_per_epoch
        # A per-epoch generator makes the shuffle a function of (seed, epoch) alone, so a
        # trial resumed mid-epoch sees exactly the batches it would have seen.
        generator = torch.Generator().manual_seed(ctx.seed * 1_000_003 + epoch)
        model.train()
        for index, (inputs, targets, weight) in enumerate(batches(generator)):
            if index < skip:
                continue
            optimizer.zero_grad(set_to_none=True)
            outputs = trained(inputs)
            # A worker with no sample of a short last batch still takes part in DDP's
            # all-reduce, with a zero gradient.
            loss = loss_fn(outputs, targets) if len(inputs) else outputs.sum() * 0.0
            (loss * weight if weight != 1.0 else loss).backward()
            optimizer.step()
            iteration += 1
            losses.add(loss)
            if not ctx.should_report(iteration):
                continue
            train_loss = losses.take_mean()
            # Only rank 0 reports (and evaluates, and checkpoints): the ranks hold the same weights.
            if ctx.rank == 0:
                _report(ctx, model, optimizer, evaluate, iteration, train_loss)


def _restore(ctx: TrainContext, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """Load the trial's last checkpoint into ``model`` and ``optimizer``; the iteration it
    holds (0 without one)."""
    state = ctx.load_checkpoint()
    if state is None:
        return 0
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    return int(state["iteration"])


class _LossMeter:
    """The mean training loss since the last report.

    Summed as a tensor and read once per report: `.item()` on every step would force a
    device synchronisation per iteration.
    """

    def __init__(self, device: torch.device) -> None:
        self._sum = torch.zeros((), device=device)
        self._count = 0

    def add(self, loss: torch.Tensor) -> None:
        self._sum += loss.detach()
        self._count += 1

    def take_mean(self) -> torch.Tensor:
        """The mean since the last call (a 0-d tensor, not yet read), and start again."""
        mean = self._sum / self._count  # a new tensor: zeroing the sum leaves it as it is
        self._sum.zero_()
        self._count = 0
        return mean


def _report(
    ctx: TrainContext,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    evaluate: Evaluate,
    iteration: int,
    train_loss: torch.Tensor,
) -> None:
    """Evaluate, checkpoint when due, and report (rank 0, at a report point)."""
    model.eval()
    with torch.no_grad():
        metrics = evaluate()
    model.train()
    if ctx.should_checkpoint(iteration):
        ctx.save_checkpoint(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "iteration": iteration,
                "epoch": iteration / ctx.shape.iterations_per_epoch,
                "torch_rng": torch.get_rng_state(),
            }
        )
    ctx.report(iteration=iteration, train_loss=train_loss.item(), **metrics)


def _dataset_length(train_data: tuple[torch.Tensor, torch.Tensor] | torch.utils.data.Dataset[Any]) -> int:
    inputs = train_data[0] if isinstance(train_data, tuple) else train_data
    return len(inputs)  # type: ignore[arg-type]


def _batches_per_epoch(
    train_data: tuple[torch.Tensor, torch.Tensor] | torch.utils.data.Dataset[Any],
    batch_size: int,
    drop_last: bool,
    device: torch.device,
    ctx: TrainContext,
) -> Callable[[torch.Generator], Any]:
    """Each epoch's batches as ``(inputs, targets, weight)``: this worker's share of every
    global batch, and the weight of its mean loss (1.0 unless a short last batch is split
    unevenly: ``share * world_size / global batch``)."""
    world = ctx.world_size

    def weight(share: int, batch: int) -> float:
        return share * world / batch if world > 1 else 1.0

    if isinstance(train_data, tuple):
        inputs, targets = (tensor.to(device) for tensor in train_data)
        size = len(inputs)
        stop = size - size % batch_size if drop_last else size

        def sliced(generator: torch.Generator) -> Any:
            order = torch.randperm(size, generator=generator).to(device)
            for start in range(0, stop, batch_size):
                batch = order[start : start + batch_size]
                index = ctx.shard(batch)
                yield inputs[index], targets[index], weight(len(index), len(batch))

        return sliced

    if world == 1:

        def loaded(generator: torch.Generator) -> Any:
            loader = torch.utils.data.DataLoader(
                train_data, batch_size=batch_size, shuffle=True, drop_last=drop_last, generator=generator
            )
            for inputs, targets in loader:
                yield inputs.to(device), targets.to(device), 1.0

        return loaded

    size = _dataset_length(train_data)
    stop = size - size % batch_size if drop_last else size

    def sharded(generator: torch.Generator) -> Any:
        order = torch.randperm(size, generator=generator)
        global_batches = [order[start : start + batch_size] for start in range(0, stop, batch_size)]
        shares = [ctx.shard(batch).tolist() for batch in global_batches]
        loader = torch.utils.data.DataLoader(train_data, batch_sampler=shares)
        for (inputs, targets), share, batch in zip(loader, shares, global_batches, strict=False):
            yield inputs.to(device), targets.to(device), weight(len(share), len(batch))

    return sharded
