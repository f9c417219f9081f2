"""sweeps: launch a hyperparameter sweep from one YAML file, on a laptop or a Ray cluster.

Flow: spec → plan (iteration arithmetic) → search (space, sampler, scheduler) →
runner (the only module that talks to Ray Tune) → tracking (MLflow) → CLI.
"""

from sweeps.errors import SweepError
from sweeps.training.registry import trainable

__version__ = "0.1.0"
__all__ = ["SweepError", "__version__", "trainable"]
