"""The iteration arithmetic at the heart of the product's vocabulary.

- An *epoch* is one full pass over the training set of N samples.
- An *iteration* is one optimizer update on one batch (forward, backward, step).
- Iterations per epoch = ceil(N / batch_size), or floor(N / batch_size) with drop_last.
- Total iterations = epochs × iterations per epoch.

Example: 10,000 samples with batch size 100 give 100 iterations per epoch, and 5 epochs
give 500. Batch size 64 gives 157 iterations per epoch, or 156 with drop_last.

ASHA can count its budget in iterations, samples seen or (fractional) epochs; this
module converts between the three so that reports land exactly on rung milestones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

BudgetUnit = Literal["iterations", "samples", "epochs"]
#: The key under which each budget unit appears in a trial's reported result.
BUDGET_RESULT_KEY: dict[str, str] = {
    "iterations": "iteration",
    "samples": "samples_seen",
    "epochs": "epoch",
}


def iterations_per_epoch(dataset_size: int, batch_size: int, drop_last: bool = False) -> int:
    if dataset_size < 1 or batch_size < 1:
        raise ValueError(f"dataset_size ({dataset_size}) and batch_size ({batch_size}) must be >= 1")
    if drop_last:
        return dataset_size // batch_size
    return math.ceil(dataset_size / batch_size)


@dataclass(frozen=True)
class TrialShape:
    """The iteration figures of one configuration: dataset size, batch size and epochs."""

    dataset_size: int
    batch_size: int
    epochs: int
    drop_last: bool = False

    @property
    def iterations_per_epoch(self) -> int:
        return iterations_per_epoch(self.dataset_size, self.batch_size, self.drop_last)

    @property
    def total_iterations(self) -> int:
        return self.epochs * self.iterations_per_epoch

    @property
    def samples_per_epoch(self) -> int:
        # With drop_last the final partial batch is never seen.
        return self.iterations_per_epoch * self.batch_size if self.drop_last else self.dataset_size

    def samples_at(self, iteration: int) -> int:
        """Samples seen after ``iteration`` optimizer steps (the last batch of an epoch may be short)."""
        full_epochs, within = divmod(iteration, self.iterations_per_epoch)
        return full_epochs * self.samples_per_epoch + within * self.batch_size

    def epoch_at(self, iteration: int) -> float:
        """Epochs completed after ``iteration`` steps, fractional within an epoch."""
        return iteration / self.iterations_per_epoch

    def budget_at(self, iteration: int, unit: str) -> float:
        if unit == "iterations":
            return iteration
        if unit == "samples":
            return self.samples_at(iteration)
        if unit == "epochs":
            return self.epoch_at(iteration)
        raise ValueError(f"unknown budget unit {unit!r}")

    def total_budget(self, unit: str) -> float:
        return self.budget_at(self.total_iterations, unit)

    def first_iteration_reaching(self, budget: float, unit: str) -> int | None:
        """The first iteration whose budget is >= ``budget``, or None if the trial never gets there.

        A binary search over the very function that produces the reported values, so the
        comparison is the one ASHA makes (including float rounding for epochs).
        """
        low, high = 0, self.total_iterations
        if self.budget_at(high, unit) < budget:
            return None
        while low < high:
            middle = (low + high) // 2
            if self.budget_at(middle, unit) >= budget:
                high = middle
            else:
                low = middle + 1
        return max(low, 1)
