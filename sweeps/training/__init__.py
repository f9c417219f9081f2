"""The trainable contract: a plain function ``train(config, ctx)`` that knows nothing of Ray."""

from sweeps.training.context import LocalContext, TrainContext, TrialDiverged
from sweeps.training.registry import (
    BUILTIN_TRAINABLES,
    ResolvedTrainable,
    TrainableDeclaration,
    resolve_trainable,
    trainable,
)

__all__ = [
    "BUILTIN_TRAINABLES",
    "LocalContext",
    "ResolvedTrainable",
    "TrainContext",
    "TrainableDeclaration",
    "TrialDiverged",
    "resolve_trainable",
    "trainable",
]
