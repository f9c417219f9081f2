"""The Ray backend: starts (or joins) Ray, runs a job's trials on Ray Tune, shuts down.

It implements :class:`sweeps.backend.Backend`. Building it imports nothing of Ray beyond
``ray`` itself (0.4 s): Ray starts on a thread of its own (:mod:`~sweeps.ray_backend.embedded`)
while the driver imports Ray Tune, torch and MLflow, which :mod:`~sweeps.ray_backend.tuner`
needs only when the job runs.
"""

from __future__ import annotations

from typing import Any

from sweeps.backend import StopRule, SweepJob, SweepListener
from sweeps.backend.resources import NodeShape, local_cpus
from sweeps.backend.resume import ResumePlan, ResumeState, SavedSweep
from sweeps.ray_backend.embedded import RayStarter, worker_preload_modules
from sweeps.ray_backend.formats import RayTrialFiles, ray_trial_files
from sweeps.store.state import SweepPaths


class RayBackend:
    """Runs a sweep's trials on Ray Tune: an embedded local Ray, or the cluster at ``address``."""

    def __init__(
        self,
        address: str | None = None,
        callbacks: list[Any] | None = None,
        trainable: str | None = None,
        workers_per_trial: int = 1,
    ) -> None:
        self.address = address
        #: The sweep's trainable (the spec's reference) and its workers per trial: an
        #: embedded Ray's workers import it as they start, unless trials are distributed.
        self.trainable = trainable
        self.workers_per_trial = workers_per_trial
        #: Ray Tune callbacks run after the sweep's own listeners (tests and benchmarks
        #: use them to watch Tune's trials directly).
        self.callbacks = list(callbacks or [])
        self._starter: RayStarter | None = None

    def begin_start(self) -> None:
        import ray

        # A Ray already up in this process (a notebook, the tests' session) is used as it is.
        if self._starter is None and not ray.is_initialized():
            self._starter = RayStarter(
                self.address, worker_preload_modules(self.trainable, self.workers_per_trial)
            ).begin()

    def start(self) -> bool:
        self.begin_start()
        # Ray Tune's import (about 1.2 s of this thread) while Ray's processes start.
        import sweeps.ray_backend.tuner  # noqa: F401

        if self._starter is None:
            return False
        self._starter.wait()
        return True

    def node_shapes(self) -> list[NodeShape]:
        from sweeps.ray_backend.cluster import cluster_shapes

        return cluster_shapes()

    def run(self, job: SweepJob, listeners: list[SweepListener], rules: list[StopRule]) -> None:
        from sweeps.ray_backend.tuner import run_job

        run_job(job, listeners, rules, self.callbacks)

    def shutdown(self) -> None:
        """Shut down the Ray this backend started (a Ray it found running is left alone)."""
        if self._starter is not None:
            self._starter.stop()
            self._starter = None

    def starting(self) -> str:
        if self.address:
            return f"joining the Ray cluster at {self.address}"
        return f"starting Ray (local, {local_cpus()} CPUs)"

    def saved_sweep(self, paths: SweepPaths) -> SavedSweep:
        """Ray's experiment snapshot of the sweep (:mod:`~sweeps.ray_backend.resume`)."""
        from sweeps.ray_backend import resume

        return resume.saved_sweep(paths)

    def prepare_resume(self, plan: ResumePlan) -> ResumeState:
        """Ray's snapshot corrected as ``plan`` says, for ``Tuner.restore``
        (:mod:`~sweeps.ray_backend.restore`)."""
        from sweeps.ray_backend import resume

        return resume.prepare_resume(plan)

    def trial_files(self, paths: SweepPaths) -> RayTrialFiles:
        """The sweep's trial folders under ``<sweep>/ray/`` (:mod:`~sweeps.ray_backend.formats`)."""
        return ray_trial_files(paths)


def start_ray(address: str | None) -> None:
    """Start the embedded Ray (``address`` None) or join a cluster, and wait until it is up."""
    RayStarter(address).begin().wait()
