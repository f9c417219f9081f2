"""Linear regression of the digit's value on scikit-learn's digits, trained with plain SGD.

A learning rate of 10 makes its mean squared error grow geometrically until it overflows
to inf and NaN within a few iterations: a real diverging PyTorch trial. (The built-in
`digits_mlp` uses Adam, whose steps stay bounded by the learning rate, and a
cross-entropy classifier whose loss stays finite: at 10 it trains at chance level.)
"""

from __future__ import annotations

from typing import Any

import torch

from sweeps.training.context import TrainContext
from sweeps.training.loop import fit
from sweeps.training.registry import trainable
from trainables.digits_mlp import TRAINING_SIZE, load_data


@trainable(dataset_size=TRAINING_SIZE)
def train(config: dict[str, Any], ctx: TrainContext) -> None:
    torch.set_num_threads(ctx.num_threads)
    torch.manual_seed(ctx.seed)
    x_train, y_train, x_val, y_val = load_data()
    model = torch.nn.Linear(x_train.shape[1], 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=float(config["learning_rate"]))

    def loss_fn(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.mse_loss(outputs.squeeze(1), targets.float())

    def evaluate() -> dict[str, float]:
        return {"val_mse": loss_fn(model(x_val), y_val).item()}

    fit(ctx, model, optimizer, loss_fn, (x_train, y_train), evaluate)
