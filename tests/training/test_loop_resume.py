"""A trial resumed from a checkpoint continues at the right iteration with the same batches.

This is what makes a retry after a lost node invisible in the results: the resumed run's
reports must equal the uninterrupted run's reports after the checkpoint, value for value.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from sweeps.iterations import TrialShape
from sweeps.training.context import LocalContext
from sweeps.training.loop import fit
from trainables.synthetic_mlp import train as synthetic_train

N = 1_000
CONFIG = {"batch_size": 100, "epochs": 3, "learning_rate": 0.01, "dropout": 0.2, "weight_decay": 1e-4}
ARGS = {"n_samples": N, "n_features": 8}
# Mid-epoch reports (5, 15, 25) as rung milestones would add them; epoch ends are 10, 20, 30.
MID_EPOCH = frozenset({5, 15, 25})


@dataclass
class CheckpointAtEveryReport(LocalContext):
    """Checkpoints at every report, so resuming mid-epoch can be tested too."""

    def should_checkpoint(self, iteration: int) -> bool:
        return True


def context(resume_from: dict[str, Any] | None = None, every_report: bool = False) -> LocalContext:
    kind = CheckpointAtEveryReport if every_report else LocalContext
    return kind(
        TrialShape(N, CONFIG["batch_size"], CONFIG["epochs"]),
        metric="val_accuracy",
        args=dict(ARGS),
        seed=1234,
        report_iterations=MID_EPOCH,
        resume_from=resume_from,
    )


def test_built_in_trainables_checkpoint_every_epoch_with_model_optimizer_iteration_and_rng() -> None:
    ctx = context()
    synthetic_train(dict(CONFIG), ctx)
    assert [iteration for iteration, _ in ctx.checkpoints] == [10, 20, 30]
    state = ctx.checkpoints[0][1]
    assert set(state) >= {"model", "optimizer", "iteration", "epoch", "torch_rng"}
    assert state["iteration"] == 10 and state["epoch"] == 1.0


@pytest.mark.parametrize("every_epochs", [0, 2])
def test_the_checkpoint_cadence_follows_every_epochs(every_epochs: int) -> None:
    ctx = context()
    ctx.checkpoint_every_epochs = every_epochs
    synthetic_train(dict(CONFIG), ctx)
    assert [iteration for iteration, _ in ctx.checkpoints] == ([] if every_epochs == 0 else [20])


@pytest.mark.parametrize("resume_at", [10, 15, 20, 25])
def test_a_resumed_trainable_reports_exactly_what_the_uninterrupted_one_did(resume_at: int) -> None:
    uninterrupted = context(every_report=True)
    synthetic_train(dict(CONFIG), uninterrupted)
    checkpoint = dict(uninterrupted.checkpoints)[resume_at]

    resumed = context(resume_from=checkpoint, every_report=True)
    synthetic_train(dict(CONFIG), resumed)

    expected = [r for r in uninterrupted.results if r["iteration"] > resume_at]
    assert [r["iteration"] for r in resumed.results] == [r["iteration"] for r in expected]
    # Same batches, same dropout masks, same optimizer moments: identical numbers.
    assert resumed.results == expected


def test_without_a_checkpoint_a_retry_starts_from_iteration_one() -> None:
    ctx = context(resume_from=None)
    synthetic_train(dict(CONFIG), ctx)
    assert [r["iteration"] for r in ctx.results] == [5, 10, 15, 20, 25, 30]


@pytest.mark.parametrize("resume_at", [10, 15])
def test_the_resumed_loop_sees_the_same_batches(resume_at: int) -> None:
    """Record which samples each iteration trains on, with and without the interruption."""
    x = torch.arange(N, dtype=torch.float32).unsqueeze(1)
    y = torch.zeros(N, dtype=torch.long)
    model = torch.nn.Linear(1, 2)

    def run(resume_from: dict[str, Any] | None) -> tuple[list[list[int]], LocalContext]:
        seen: list[list[int]] = []

        def loss_fn(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            return logits.sum() * 0.0

        class Recording(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inner = model

            def forward(self, inputs: torch.Tensor) -> torch.Tensor:
                seen.append(inputs.squeeze(1).long().tolist())
                return self.inner(inputs)

        ctx = context(resume_from=resume_from, every_report=True)
        recording = Recording()
        optimizer = torch.optim.SGD(recording.parameters(), lr=0.0)
        fit(ctx, recording, optimizer, loss_fn, (x, y), evaluate=lambda: {"val_accuracy": 0.0})
        return seen, ctx

    full, ctx = run(None)
    resumed, _ = run(dict(ctx.checkpoints)[resume_at])
    assert len(full) == 30
    assert resumed == full[resume_at:]
    assert sorted(functools.reduce(operator.iadd, full[:10], [])) == list(range(N)), (
        "one epoch sees every sample once"
    )
