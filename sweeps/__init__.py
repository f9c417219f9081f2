"""sweeps: launch a hyperparameter sweep from one YAML file, on a laptop or a Ray cluster.

The public way in for a trainable's author::

    from sweeps import fit, trainable

Flow: spec → plan (iteration arithmetic, :mod:`sweeps.iterations`) → runner (one sweep
on a :class:`~sweeps.backend.Backend`: its listeners record it in the store, MLflow and
the live view) → CLI. The search (Optuna's truthful study, ASHA's rungs) runs inside the
backend; :mod:`sweeps.ray_backend` is the one seam to Ray. README's Layout lists the layers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sweeps.errors import SweepError
from sweeps.training.registry import trainable

if TYPE_CHECKING:
    from sweeps.training.loop import fit

__version__ = "0.1.0"
__all__ = ["SweepError", "__version__", "fit", "trainable"]


def __getattr__(name: str) -> Any:
    # `fit` needs torch (seconds to import); every `sweeps.*` import runs this file, and the
    # CLI prints its first line before importing torch. So `fit` loads on first use.
    if name == "fit":
        from sweeps.training.loop import fit

        return fit
    raise AttributeError(f"module 'sweeps' has no attribute {name!r}")
