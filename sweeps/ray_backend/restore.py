"""Continue a sweep on Ray: Ray's corrected snapshot, driven by this run's searcher and scheduler.

:mod:`sweeps.ray_backend.resume` has already corrected Ray's experiment snapshot against
the study and the journal, as :mod:`sweeps.runner.reconcile` decided; here the tuner restored
from it gets the searcher, scheduler, callbacks and stoppers built for this run, and
ASHA's rungs are replayed from the journal, each trial in the bracket recorded for it
(:meth:`sweeps.search.asha.AshaBrackets.replay`).
"""

from __future__ import annotations

from typing import Any

from ray import tune

from sweeps.backend import SweepJob
from sweeps.backend.resume import ResumeState
from sweeps.ray_backend.scheduler import AshaScheduler
from sweeps.ray_backend.snapshot import clear_driver_staging, guard_against_silent_restart


def continue_tuner(fresh: Any, job: SweepJob, resume: ResumeState, trainable: Any) -> Any:
    """The tuner that continues the sweep: Ray's corrected snapshot with today's settings.

    ``fresh`` is the tuner built for this run (searcher attached to the study, scheduler,
    callbacks, stoppers); Ray's restored tuner would carry pickled copies of the first
    run's, so it gets the fresh ones.
    """
    spec = job.spec
    # compat: tuner-internals
    internal = fresh._local_tuner
    scheduler = internal._tune_config.scheduler
    if isinstance(scheduler, AshaScheduler):  # Ray does not save a scheduler: the journal holds its rungs
        scheduler.rungs.replay(resume.journal, spec.metric, spec.budget_unit, resume.brackets)
    if not resume.restore:
        return fresh if job.trials_to_create > 0 else _NothingToRun()
    guard_against_silent_restart()
    clear_driver_staging(job.paths.ray_directory)
    restored = tune.Tuner.restore(
        str(job.paths.ray_directory),
        trainable=trainable,
        resume_unfinished=True,
        resume_errored=False,
        restart_errored=False,
    )
    # `_local_tuner` is None only under Ray Client, which a sweep's driver does not use.
    restored_internal = restored._local_tuner
    assert restored_internal is not None
    restored_internal._tune_config = internal._tune_config
    restored_internal._run_config = internal._run_config
    return restored


class _NothingToRun:
    """Every trial already exists (and the ones that ran were lost with the driver)."""

    def fit(self) -> None:
        return None
