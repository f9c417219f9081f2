"""The one seam to Ray: every line of sweeps that imports ``ray`` is in this subpackage.

- :mod:`~sweeps.ray_backend.backend`: :class:`RayBackend` (:class:`sweeps.backend.Backend`):
  starts or joins Ray, builds the ``Tuner`` of a job, runs it;
- :mod:`~sweeps.ray_backend.bridge`: Tune's callback and stopper hooks turned into the
  sweep's listeners and stop rules;
- :mod:`~sweeps.ray_backend.trial`, :mod:`~sweeps.ray_backend.distributed` and
  :mod:`~sweeps.ray_backend.worker`: the function each trial runs in its Ray worker(s);
- :mod:`~sweeps.ray_backend.formats`: Ray's files and result keys (:func:`ray_trial_files`);
- :mod:`~sweeps.ray_backend.searcher` and :mod:`~sweeps.ray_backend.scheduler`: Optuna and
  ASHA as Tune's searcher and scheduler;
- :mod:`~sweeps.ray_backend.resume`, :mod:`~sweeps.ray_backend.snapshot` and
  :mod:`~sweeps.ray_backend.restore`: the Ray half of ``sweep resume`` behind
  ``Backend.saved_sweep`` and ``Backend.prepare_resume``: Ray's experiment snapshot read,
  corrected as the runner's reconcile decided, and continued;
- :mod:`~sweeps.ray_backend.cluster`, :mod:`~sweeps.ray_backend.timeouts` and
  :mod:`~sweeps.ray_backend.trial_memory`: node shapes, hung trials, and the driver's memory.

Ray itself is imported only when a backend is built, so ``sweep plan`` and ``sweep
status`` never pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sweeps.ray_backend.formats import RayTrialFiles, ray_trial_files

if TYPE_CHECKING:
    from sweeps.ray_backend.backend import RayBackend

__all__ = ["RayBackend", "RayTrialFiles", "ray_trial_files"]


def __getattr__(name: str) -> Any:
    # Importing Ray takes about a second; the CLI's read-only commands never need it.
    if name == "RayBackend":
        from sweeps.ray_backend.backend import RayBackend

        return RayBackend
    raise AttributeError(name)
