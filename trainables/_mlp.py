"""A small MLP classifier trained with :func:`sweeps.fit`, shared by built-ins.

Config keys (hyperparameters): ``batch_size``, ``epochs``, ``learning_rate`` and optionally
``weight_decay``, ``hidden_size`` and ``dropout``. ``trainable_args`` provide the fixed
settings (``hidden_sizes``), overridden by a searched ``hidden_size``. With
``trainable_args: {report_parameters: true}`` each report also holds ``parameters``, the
model's parameter count: an objective to minimise beside ``val_accuracy`` (docs/spec.md,
"Several objectives").
"""

from __future__ import annotations

from typing import Any

import torch

from sweeps import fit
from sweeps.training.context import TrainContext


def make_mlp(n_features: int, n_classes: int, hidden_sizes: list[int], dropout: float) -> torch.nn.Module:
    layers: list[torch.nn.Module] = []
    width = n_features
    for hidden in hidden_sizes:
        layers += [torch.nn.Linear(width, hidden), torch.nn.ReLU()]
        if dropout > 0:
            layers.append(torch.nn.Dropout(dropout))
        width = hidden
    layers.append(torch.nn.Linear(width, n_classes))
    return torch.nn.Sequential(*layers)


def train_classifier(
    config: dict[str, Any],
    ctx: TrainContext,
    data: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    args: dict[str, Any],
) -> None:
    """Train an MLP on ``(X_train, y_train, X_val, y_val)`` and report val_accuracy/val_loss."""
    torch.set_num_threads(ctx.num_threads)
    torch.manual_seed(ctx.seed)
    x_train, y_train, x_val, y_val = data
    hidden_sizes = list(args.get("hidden_sizes", [64]))
    if "hidden_size" in config:  # a searched width applies to every hidden layer
        hidden_sizes = [int(config["hidden_size"])] * len(hidden_sizes)
    model = make_mlp(
        x_train.shape[1], int(y_train.max()) + 1, hidden_sizes, float(config.get("dropout", 0.0))
    )
    optimizer = torch.optim.Adam(
        model.parameters(),
        lr=float(config["learning_rate"]),
        weight_decay=float(config.get("weight_decay", 0.0)),
    )
    loss_fn = torch.nn.CrossEntropyLoss()
    device = torch.device(ctx.device)
    x_val, y_val = x_val.to(device), y_val.to(device)

    size = (
        {"parameters": float(sum(p.numel() for p in model.parameters()))}
        if args.get("report_parameters")
        else {}
    )

    def evaluate() -> dict[str, float]:
        logits = model(x_val)
        return {
            "val_loss": loss_fn(logits, y_val).item(),
            "val_accuracy": (logits.argmax(dim=1) == y_val).float().mean().item(),
            **size,
        }

    fit(ctx, model, optimizer, loss_fn, (x_train, y_train), evaluate)


def split(
    x: Any, y: Any, n_val: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A fixed, seeded train/validation split, identical in every trial."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(x), generator=generator)
    x_all = torch.as_tensor(x, dtype=torch.float32)
    y_all = torch.as_tensor(y, dtype=torch.long)
    val, train = order[:n_val], order[n_val:]
    return x_all[train], y_all[train], x_all[val], y_all[val]
