"""An MLP on scikit-learn's digits (1,797 images of 8×8 pixels, 10 classes), shipped offline.

Launch a sweep of it with::

    sweep run sweeps/examples/digits_mlp.yaml
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sweeps import trainable
from sweeps.training.context import TrainContext

DIGITS_SIZE = 1797
# A fixed fifth of the data is held out for validation, with its own seed, so every trial
# is compared on the same images whatever its `seed`.
VALIDATION_SIZE = round(DIGITS_SIZE * 0.2)
TRAINING_SIZE = DIGITS_SIZE - VALIDATION_SIZE  # N = 1,438
SPLIT_SEED = 0


@lru_cache(maxsize=1)
def load_data() -> tuple[Any, ...]:
    # Cached per worker process: with reused actors, later trials skip the load.
    from trainables._mlp import split

    images, labels = _read_digits()
    return split(images / 16.0, labels, VALIDATION_SIZE, SPLIT_SEED)


def _read_digits() -> tuple[Any, Any]:
    """scikit-learn's bundled digits file, read without importing scikit-learn.

    ``sklearn.datasets.load_digits`` reads the same file, but importing
    ``sklearn.datasets`` (and SciPy with it) took 1.8 s, paid by every new worker
    process before its first trial (`make bench`, B2); ``numpy.loadtxt`` takes 7 ms.
    """
    import importlib.util
    from pathlib import Path

    import numpy as np

    spec = importlib.util.find_spec("sklearn")  # locates the package without importing it
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec and spec.origin else None
    if path is None or not path.exists():
        from sklearn.datasets import load_digits

        digits = load_digits()
        return digits.data, digits.target
    table = np.loadtxt(path, delimiter=",")
    return table[:, :-1], table[:, -1].astype(np.int64)


@trainable(dataset_size=TRAINING_SIZE, drop_last=False)
def train(config: dict[str, Any], ctx: TrainContext) -> None:
    """MLP on sklearn digits (N = 1,438 training images)."""
    from trainables._mlp import train_classifier

    args = {"hidden_sizes": [128, 64], **ctx.args}
    train_classifier(config, ctx, load_data(), args)
