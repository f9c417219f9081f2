"""sweeps: launch a hyperparameter sweep from one YAML file, on a laptop or a Ray cluster.

Flow: spec → plan (iteration arithmetic, :mod:`sweeps.iterations`) → runner (one sweep
on a :class:`~sweeps.backend.Backend`: its listeners record it in the store, MLflow and
the live view) → CLI. The search (Optuna's truthful study, ASHA's rungs) runs inside the
backend; :mod:`sweeps.ray_backend` is the one seam to Ray. README's Layout lists the layers.
"""

from sweeps.errors import SweepError
from sweeps.training.registry import trainable

__version__ = "0.1.0"
__all__ = ["SweepError", "__version__", "trainable"]
