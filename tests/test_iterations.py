"""The iteration arithmetic, checked against loops that count the optimizer steps they take."""

from __future__ import annotations

import pytest
import torch

from sweeps.iterations import TrialShape, iterations_per_epoch
from sweeps.training.context import LocalContext
from sweeps.training.loop import fit

SIZES = [1, 7, 64, 100, 1000, 1438, 10_000]
BATCH_SIZES = [1, 16, 64, 100, 128, 256]


def steps_taken_by_a_dataloader(dataset_size: int, batch_size: int, epochs: int, drop_last: bool) -> int:
    """A reference that shares no formula with the code: run torch's own DataLoader and count."""
    dataset = torch.utils.data.TensorDataset(torch.zeros(dataset_size, 1))
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, drop_last=drop_last)
    steps = 0
    for _ in range(epochs):
        for _batch in loader:
            steps += 1
    return steps


# With drop_last, a batch size above N gives no batch at all (the plan rejects it).
CASES = [
    (n, b, drop_last)
    for n in SIZES
    for b in BATCH_SIZES
    for drop_last in (False, True)
    if not (drop_last and b > n)
]


@pytest.mark.parametrize("dataset_size,batch_size,drop_last", CASES)
def test_total_iterations_match_a_counting_loop(dataset_size: int, batch_size: int, drop_last: bool) -> None:
    shape = TrialShape(dataset_size, batch_size, epochs=3, drop_last=drop_last)
    assert shape.total_iterations == steps_taken_by_a_dataloader(dataset_size, batch_size, 3, drop_last)


def test_the_documented_examples() -> None:
    assert iterations_per_epoch(10_000, 100) == 100
    assert TrialShape(10_000, 100, 5).total_iterations == 500
    assert iterations_per_epoch(10_000, 64) == 157
    assert iterations_per_epoch(10_000, 64, drop_last=True) == 156


@pytest.mark.parametrize("drop_last", [False, True])
def test_samples_seen_match_the_batches_a_loader_yields(drop_last: bool) -> None:
    shape = TrialShape(1000, 64, epochs=2, drop_last=drop_last)
    dataset = torch.utils.data.TensorDataset(torch.zeros(1000, 1))
    loader = torch.utils.data.DataLoader(dataset, batch_size=64, drop_last=drop_last)
    seen, iteration = 0, 0
    for _ in range(2):
        for (batch,) in loader:
            seen += len(batch)
            iteration += 1
            assert shape.samples_at(iteration) == seen
            assert shape.epoch_at(iteration) == pytest.approx(iteration / shape.iterations_per_epoch)


@pytest.mark.parametrize("unit", ["iterations", "samples", "epochs"])
def test_first_iteration_reaching_is_the_first_crossing(unit: str) -> None:
    shape = TrialShape(1438, 32, epochs=4)
    for budget in [1, 5, 0.5, 1.5, 45, 46, 1000, 1438, 2876]:
        at = shape.first_iteration_reaching(budget, unit)
        if at is None:
            assert shape.total_budget(unit) < budget
            continue
        assert shape.budget_at(at, unit) >= budget
        assert at == 1 or shape.budget_at(at - 1, unit) < budget


@pytest.mark.parametrize(
    "dataset_size,batch_size,drop_last", [(1000, 64, False), (1000, 64, True), (50, 16, False)]
)
def test_fit_takes_exactly_total_iterations_steps(
    dataset_size: int, batch_size: int, drop_last: bool
) -> None:
    """The real training loop, counted through the optimizer's own step counter."""
    torch.manual_seed(0)
    x = torch.randn(dataset_size, 3)
    y = (x[:, 0] > 0).long()
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    shape = TrialShape(dataset_size, batch_size, epochs=3, drop_last=drop_last)
    ctx = LocalContext(shape, metric="acc")
    fit(ctx, model, optimizer, torch.nn.functional.cross_entropy, (x, y), lambda: {"acc": 0.5})
    adam_steps = int(optimizer.state[model.weight]["step"])
    assert adam_steps == shape.total_iterations
    assert ctx.results[-1]["iteration"] == shape.total_iterations
    assert ctx.results[-1]["samples_seen"] == shape.samples_at(shape.total_iterations)
