"""Ray Tune for one job: the ``Tuner`` built from a :class:`~sweeps.backend.SweepJob`, and its run.

The settings here were measured on a 2-core machine (see the comments); the sweep's
record keepers arrive as listeners and its stop reasons as stop rules, bridged into Tune
by :mod:`sweeps.ray_backend.bridge`. Imported when the first job runs, not with the
backend: importing Ray Tune takes about 1.2 s, which the driver spends while Ray starts.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import optuna
from ray import tune
from ray.tune.schedulers import TrialScheduler

from sweeps.backend import StopRule, SweepJob, SweepListener
from sweeps.ray_backend.bridge import ListenerBridge, StopBridge
from sweeps.ray_backend.embedded import trial_actors_on_prestarted_workers
from sweeps.ray_backend.restore import continue_tuner
from sweeps.ray_backend.scheduler import AshaScheduler, make_scheduler
from sweeps.ray_backend.searcher import TruthfulSearcher
from sweeps.ray_backend.timeouts import TrialTimeouts
from sweeps.ray_backend.train_runs import EndTrainRuns
from sweeps.ray_backend.trial import TrialSettings, make_trial_function
from sweeps.ray_backend.trial_memory import ForgetFinishedTrialMetrics
from sweeps.search.truthful_study import open_truthful_study
from sweeps.spec.models import SweepSpec


def run_job(
    job: SweepJob, listeners: list[SweepListener], rules: list[StopRule], extra_callbacks: list[Any]
) -> None:
    """Run ``job`` on Tune to its end (the :meth:`RayBackend.run` of :mod:`sweeps.ray_backend.backend`)."""
    _configure_tune_environment(job.concurrency)
    timeouts = TrialTimeouts(job.spec.failure.trial_timeout) if job.spec.failure.trial_timeout else None
    scheduler = make_scheduler(job.spec, job.plan)
    callbacks = [
        # First: it adds its reason to a failed trial's error file before the listeners read it.
        *([timeouts] if timeouts else []),
        # The scheduler's notes (a trial's bracket, why it was stopped) reach the listeners.
        (
            bridge := ListenerBridge(
                listeners, scheduler.notes if isinstance(scheduler, AshaScheduler) else None
            )
        ),
        # Frees a distributed trial's workers as it ends, before the next trial is placed.
        *([EndTrainRuns(train_storage(job))] if job.spec.resources.workers > 1 else []),
        *extra_callbacks,
        ForgetFinishedTrialMetrics(job.spec.metric),  # last: the others see every metric
    ]

    def error_of(trial_id: str) -> str | None:
        # Tune tells the searcher before any callback, so before the timeout's reason is written.
        return (timeouts.reason_for(trial_id) if timeouts else None) or bridge.error_of(trial_id)

    tuner = make_tuner(job, callbacks, StopBridge(rules), rules, scheduler, error_of=error_of)
    # A distributed trial's actor only starts its Ray Train run: it keeps Tune's own way.
    on_prestarted = trial_actors_on_prestarted_workers() if job.spec.resources.workers == 1 else nullcontext()
    with _quiet_tune_logs(), on_prestarted:
        try:
            tuner.fit()
        except BaseException:
            # The run ended by an exception (a full disk under the study, Ctrl-C twice): the
            # runner reports it once. The running trials' futures are dropped unread, and Ray
            # would print each one's error again ("Unhandled error ...", a traceback each) as
            # they are collected, up to the driver's exit. Ray reads this at each collection.
            os.environ.setdefault("RAY_IGNORE_UNHANDLED_ERRORS", "1")
            raise


def make_tuner(
    job: SweepJob,
    callbacks: list[Any],
    stopper: tune.Stopper,
    rules: list[StopRule] | None = None,
    scheduler: TrialScheduler | None = None,
    error_of: Callable[[str], str | None] | None = None,
) -> Any:
    """The ``Tuner`` of ``job``: a fresh one, or Ray's snapshot continued (``job.resume``).

    ``scheduler`` is the one whose notes the listener bridge shows (made here if not given);
    ``error_of`` gives the searcher a failed trial's error text."""
    spec, plan, paths = job.spec, job.plan, job.paths
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_truthful_study(spec, paths, job.trials_so_far, plan.milestones())
    searcher = TruthfulSearcher(study, spec.metric, spec.mode, rules, error_of)
    scheduler = scheduler if scheduler is not None else make_scheduler(spec, plan)
    if isinstance(scheduler, AshaScheduler):
        scheduler.recorder = study  # each trial's bracket and why it stopped, in the study
    settings = trial_settings(job)
    trainable = tune.with_resources(make_trial_function(settings), trial_resources(spec))
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            metric=spec.metric,
            mode=spec.mode,
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=job.trials_to_create,
            max_concurrent_trials=job.concurrency,
            # Reusing actors skips a fresh worker process (and a torch import) per trial:
            # measured 77 s → 8.8 s on a 20-trial digits sweep on 2 CPUs. Not for distributed
            # trials: Ray must kill a stopped one's actor, which ends its Train run with it.
            reuse_actors=spec.resources.workers == 1,
        ),
        run_config=tune.RunConfig(
            name=paths.ray_directory.name,
            storage_path=str(paths.directory),
            callbacks=callbacks,
            stop=stopper,
            failure_config=tune.FailureConfig(max_failures=spec.failure.max_retries),
            verbose=0,
            # In Jupyter, Tune's default reporter clears the cell's output (our live view
            # included) and draws its own table; our live view is the only progress shown.
            progress_reporter=_SilentReporter(),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=spec.checkpoint.keep),
        ),
    )
    if job.resume is not None:
        tuner = continue_tuner(tuner, job, job.resume, trainable)
    return tuner


def trial_settings(job: SweepJob) -> TrialSettings:
    """What each trial's worker is told of the sweep (it reads neither the spec nor the plan)."""
    spec, plan, paths = job.spec, job.plan, job.paths
    return TrialSettings(
        trainable=job.trainable.reference,
        trainable_args=dict(spec.trainable_args),
        metric=spec.metric,
        seed=spec.seed,
        dataset_size=plan.dataset_size,
        drop_last=plan.drop_last,
        budget_unit=spec.budget_unit,
        milestones=tuple(plan.milestones()),
        checkpoint_every_epochs=spec.checkpoint.every_epochs,
        cpus=spec.resources.cpu,
        extra_pythonpath=(os.getcwd(),),
        delivered=dict(job.resume.delivered) if job.resume else {},
        stop_file=str(paths.stop_request_file),
        workers=spec.resources.workers,
        gpus=spec.resources.gpu,
        train_storage=train_storage(job),
        keep_model=spec.tracking.enabled and spec.tracking.log_model,
        trials_directory=str(paths.trials_directory),
        objectives=spec.reported_objectives,
        constraint_metrics=spec.constraint_metrics,
    )


def train_storage(job: SweepJob) -> str:
    """Where a distributed trial's Ray Train runs keep their state."""
    return str(job.paths.directory / "train")


def trial_resources(spec: SweepSpec) -> dict[str, float]:
    """What the Tune trial itself holds: all of a single-worker trial, next to nothing for a
    distributed one, whose Ray Train workers hold its resources (distributed.py)."""
    if spec.resources.workers == 1:
        return {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu}
    return {"cpu": 0, "memory": 1}


def _configure_tune_environment(concurrency: int) -> None:
    """Tune reads these from the environment when ``fit()`` starts."""
    # Ray keeps only one pending trial for non-random searchers by default, so workers
    # idle while the next trial is placed (measured: 8.8 s → 6.0 s on a 20-trial sweep).
    os.environ["TUNE_MAX_PENDING_TRIALS_PG"] = str(max(2, concurrency))
    # Our own live view and MLflow tracking replace Tune's console reporter and its
    # CSV/JSON/TensorBoard loggers, which would only cost driver time and clutter output.
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"


@contextmanager
def _quiet_tune_logs() -> Iterator[None]:
    """Keep Tune's per-trial tracebacks off the terminal while the sweep runs.

    A failed trial is expected news in a sweep: it is counted in the live view, its
    traceback is kept with the trial (MLflow artifact, `sweep status`), and the sweep
    carries on. Printed to the terminal it would bury the live view.
    """
    loggers = [logging.getLogger(name) for name in ("ray.tune", "ray.air", "ray.train")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=False):
            logger.setLevel(level)


class _SilentReporter(tune.ProgressReporter):
    """Tune's progress reporter that never reports (the live view and MLflow do)."""

    def should_report(self, trials: list[Any], done: bool = False) -> bool:
        return False

    def report(self, trials: list[Any], done: bool, *sys_info: Any) -> None:
        pass
