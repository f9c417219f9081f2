"""An MLP on seeded synthetic classification data of an exact size.

``trainable_args.n_samples`` sets the training-set size N (default 10,000), so the
iteration arithmetic can be seen in real runs: with N = 10,000 and batch size 100, one
epoch is exactly 100 iterations. A further N/5 samples are generated for validation.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sweeps import trainable
from sweeps.training.context import TrainContext

DEFAULT_SIZE = 10_000


def training_size(args: dict[str, Any]) -> int:
    return int(args.get("n_samples", DEFAULT_SIZE))


@lru_cache(maxsize=4)
def load_data(n_samples: int, n_features: int, n_classes: int, data_seed: int) -> tuple[Any, ...]:
    from sklearn.datasets import make_classification

    from trainables._mlp import split

    n_val = max(1, n_samples // 5)
    x, y = make_classification(
        n_samples=n_samples + n_val,
        n_features=n_features,
        n_informative=max(2, n_features // 2),
        n_classes=n_classes,
        random_state=data_seed,
    )
    return split(x, y, n_val, data_seed)


@trainable(dataset_size=training_size, drop_last=False)
def train(config: dict[str, Any], ctx: TrainContext) -> None:
    """MLP on synthetic data; N = trainable_args.n_samples (default 10,000)."""
    from trainables._mlp import train_classifier

    args = {"hidden_sizes": [64], **ctx.args}
    data = load_data(
        training_size(args),
        int(args.get("n_features", 20)),
        int(args.get("n_classes", 2)),
        int(args.get("data_seed", 0)),
    )
    train_classifier(config, ctx, data, args)
