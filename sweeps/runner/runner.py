"""The runner: the only module that talks to Ray Tune.

It turns a validated spec and its plan into a ``Tuner`` with the settings measured on
this kind of machine (see the comments), runs it, and returns a :class:`SweepSummary`.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import ray
from ray import tune

from sweeps.errors import ResourceError, SweepError, TrainableError
from sweeps.plan.planner import SweepPlan, plan_spec
from sweeps.runner.journal import JOURNAL_FILE, ResultJournal
from sweeps.runner.ledger import TrialLedger
from sweeps.runner.report_alignment import ReportAlignment
from sweeps.runner.resources import NodeShape, check_resources, cluster_shapes
from sweeps.runner.state import SweepPaths, sweep_paths, update_state, write_state
from sweeps.runner.stopping import GracefulStop, interruptible, stop_file, take_over_sigterm
from sweeps.runner.timeouts import TrialTimeouts
from sweeps.runner.trial import TrialSettings, make_trial_function
from sweeps.runner.trial_memory import ForgetFinishedTrialMetrics
from sweeps.spec.loading import LoadedSpec
from sweeps.spec.models import SweepSpec
from sweeps.training.registry import ResolvedTrainable


@dataclass
class RunOptions:
    address: str | None = None  # None: start an embedded local Ray
    live: bool = True
    # A plain progress line every PLAIN_EVERY_SECONDS and one per ended trial, on stdout
    # (for logs: the CLI sets it when stdout is not a terminal).
    progress_lines: bool = False
    overwrite: bool = False
    callbacks: list[Any] = field(default_factory=list)
    # Called with the summary once the sweep's record is complete and before the Ray this
    # sweep started shuts down (about 1.4 s on 2 cores): the CLI prints the summary and
    # decides its exit code there, so neither waits for `ray.shutdown()`.
    on_summary: Any = None
    # Continue this sweep (`sweep resume`): a sweeps.runner.resume.Resumption.
    resume: Any = None


@dataclass
class SweepSummary:
    name: str
    best: dict[str, Any] | None
    trials: dict[str, int]
    iterations_used: int
    iterations_worst_case: int
    storage: str
    wall_seconds: float
    aborted: str | None = None
    # Why the sweep stopped before its end (Ctrl-C, `sweep stop`); it can be resumed.
    stopped: str | None = None
    # Seconds spent starting (or joining) Ray. The wall ends when the summary is complete,
    # before the Ray this sweep started shuts down (RunOptions.on_summary), so
    # `wall_seconds - ray_start_seconds` is the sweep once Ray is up, the figure `make bench`
    # (B1, B2) compares with Ray Tune's `Tuner.fit()` and Optuna's `optimize`.
    ray_start_seconds: float = 0.0
    #: CPU seconds of the driver process (all its threads: Tune's loop, the callbacks, the
    #: MLflow writer) during `fit()`: what orchestrating the trials takes from the workers
    #: on a shared machine (`make bench`, B2R: per 1,000 results).
    driver_cpu_seconds: float = 0.0
    trial_records: list[dict[str, Any]] = field(default_factory=list)
    #: Things the user should fix even though the sweep ran (reports that miss ASHA's milestones).
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "best": self.best,
            "trials": self.trials,
            "iterations_used": self.iterations_used,
            "iterations_worst_case": self.iterations_worst_case,
            "storage": self.storage,
            "wall_seconds": round(self.wall_seconds, 2),
            "aborted": self.aborted,
            "stopped": self.stopped,
            "ray_start_seconds": round(self.ray_start_seconds, 2),
            "driver_cpu_seconds": round(self.driver_cpu_seconds, 2),
            "warnings": self.warnings,
        }


def run_sweep(loaded: LoadedSpec, options: RunOptions | None = None) -> SweepSummary:
    """Run the sweep of ``loaded`` to the end and return its summary."""
    options = options or RunOptions()
    spec = loaded.spec
    resolved, plan = plan_spec(loaded)
    paths = sweep_paths(spec.storage, spec.name)
    if spec.tracking.enabled:
        # An unreachable tracking server is an error before anything starts (exit 2).
        from sweeps.tracking.preflight import preflight

        preflight(spec, paths, loaded.source)
    if options.resume is None:
        _claim_sweep_directory(paths, loaded, options)
    else:
        from sweeps.runner.resume import reclaim_sweep_directory

        reclaim_sweep_directory(paths, loaded, options.address)

    started = time.monotonic()
    started_ray = _start_ray(options.address)
    take_over_sigterm()  # before anything else: Ray's core worker aborts on SIGTERM (stopping.py)
    ray_start_seconds = time.monotonic() - started
    # Ctrl-C handling lives from the start of `fit()` until the summary is written.
    with ExitStack() as signal_scope:
        if started_ray:  # last of all, however the sweep ends (see RunOptions.on_summary)
            signal_scope.callback(ray.shutdown)
        tracker = None
        try:
            # Before the parent run exists: a spec no node can hold leaves nothing in MLflow.
            try:
                concurrency = _check_resources(spec, loaded.source, cluster_shapes())
            except ResourceError:
                if options.resume is None:
                    # Nothing ran: remove the folder just claimed, so the fixed spec runs under
                    # the same name without `--overwrite`.
                    shutil.rmtree(paths.directory, ignore_errors=True)
                raise
            if spec.tracking.enabled:
                from sweeps.tracking.session import start_tracking

                if options.resume is not None:  # fill the steps a killed driver lost, close finished runs
                    from sweeps.tracking.recovery import recover_runs

                    recover_runs(loaded, plan, paths, options.resume)
                tracker = start_tracking(loaded, plan, paths)  # the parent run, before any trial
            _configure_tune_environment(concurrency)
            ledger = TrialLedger(metric=spec.metric, mode=spec.mode)
            if options.resume is not None:  # trials that finished before: the summary spans every run
                ledger.trials.update({r.trial_id: r for r in options.resume.records})
            stopper = _AbortStopper(ledger, spec)
            graceful = GracefulStop(ledger, paths)
            journal = ResultJournal(paths.directory / JOURNAL_FILE, options.resume.delivered if options.resume else None)
            view = _live_view(ledger, spec, options)
            alignment = ReportAlignment(plan.dataset_size, plan.drop_last, plan.milestones(), spec.budget_unit)
            # Timeouts first: it adds its reason to a failed trial's error before the others read it.
            timeouts = [TrialTimeouts(spec.failure.trial_timeout)] if spec.failure.trial_timeout else []
            callbacks = [*timeouts, journal, ledger, *([tracker] if tracker else []), *([view] if view else []), alignment,
                         *options.callbacks,
                         ForgetFinishedTrialMetrics(spec.metric)]  # last: the others see every metric
            tuner = _make_tuner(spec, plan, resolved, paths, concurrency, callbacks,
                                tune.stopper.CombinedStopper(stopper, graceful), options.resume)
            # Entered on the outer stack, not around `fit()` alone: a second Ctrl-C that
            # comes while the sweep's record is being finished must not raise mid-cleanup.
            signal_scope.enter_context(interruptible(graceful, paths))
            with view or nullcontext(), _quiet_tune_logs():
                cpu_started = time.process_time()
                tuner.fit()
                fit_cpu_seconds = time.process_time() - cpu_started
            journal.close()
            aborted = stopper.reason
            stopped = graceful.reason if graceful.interrupted else None
        finally:
            if tracker is not None and sys.exc_info()[0] is not None:
                # The sweep ended by an exception: no MLflow run may stay RUNNING.
                tracker.close(interrupted=isinstance(sys.exc_info()[1], KeyboardInterrupt))
        try:
            summary = _summarize(spec, ledger, paths, time.monotonic() - started, aborted)
            summary.ray_start_seconds = ray_start_seconds
            summary.driver_cpu_seconds = fit_cpu_seconds
            summary.stopped = stopped
            summary.warnings = [alignment.warning] if alignment.warning else []
            if tracker is not None and not stopped:
                tracker.finish(summary)
        finally:
            if tracker is not None:
                tracker.close(interrupted=bool(stopped))  # flushes; runs of stopped trials end KILLED
        if stopped:
            update_state(paths, state="stopped", summary=summary.to_json(), stopped_at=_now())
        else:
            update_state(paths, state="aborted" if aborted else "finished", summary=summary.to_json(),
                         finished_at=_now())
        if stopper.contract_broken:
            raise TrainableError(f"{loaded.source}: sweep `{spec.name}` stopped: {aborted}")
        if options.on_summary is not None:
            options.on_summary(summary)
        return summary


def _claim_sweep_directory(paths: SweepPaths, loaded: LoadedSpec, options: RunOptions) -> None:
    if paths.exists() and not options.overwrite:
        raise SweepError(
            f"{loaded.source}: a sweep named `{paths.name}` already exists under {paths.storage}. "
            f"Continue it with `sweep resume {paths.name} --storage {paths.storage}` (or this "
            "command with `--resume`), start it afresh with `--overwrite`, or choose another "
            "name with `--name`."
        )
    if paths.exists():
        import shutil

        shutil.rmtree(paths.directory)
    try:
        write_state(paths, {
            "name": paths.name,
            "spec_path": str(loaded.path.resolve()),
            "spec": loaded.raw,
            "overrides": list(loaded.overrides),
            "address": options.address,
            "state": "running",
            "num_samples": loaded.spec.num_samples,
            "started_at": _now(),
            "driver_pid": os.getpid(),
            "driver_host": socket.gethostname(),
        })
    except OSError as exc:
        raise SweepError(
            f"{loaded.source}: field `storage` is {loaded.spec.storage!r}, but the sweep's "
            f"folder {paths.directory} cannot be written ({exc.strerror}). Choose a writable "
            "folder with enough free space (`--storage PATH`)."
        ) from None


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
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _configure_tune_environment(concurrency: int) -> None:
    """Tune reads these from the environment when ``fit()`` starts."""
    # Ray keeps only one pending trial for non-random searchers by default, so workers
    # idle while the next trial is placed (measured: 8.8 s → 6.0 s on a 20-trial sweep).
    os.environ["TUNE_MAX_PENDING_TRIALS_PG"] = str(max(2, concurrency))
    # Our own live view and MLflow tracking replace Tune's console reporter and its
    # CSV/JSON/TensorBoard loggers, which would only cost driver time and clutter output.
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"


def _start_ray(address: str | None) -> bool:
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Workers must import trainables given as `module:function` from the user's folder.
    pythonpath = os.pathsep.join(p for p in [os.getcwd(), os.environ.get("PYTHONPATH", "")] if p)
    kwargs: dict[str, Any] = {
        "log_to_driver": False,
        "include_dashboard": False,
        "configure_logging": True,
        "logging_level": "ERROR",
        "runtime_env": {"env_vars": {"PYTHONPATH": pythonpath}},
    }
    if address is None:
        # The embedded Ray's processes inherit the driver's environment, so PYTHONPATH goes
        # there rather than in a runtime_env: a job with a runtime_env cannot use the worker
        # processes Ray prestarts at `ray.init`, and each trial actor then waits for a fresh
        # process set up by the runtime-env agent (measured: 2 actors ready in 2.1-2.4 s
        # with the runtime_env, 0.5-0.7 s without).
        del kwargs["runtime_env"]
        # Not kept: Ray's `preload_python_modules` setting, to start workers with torch and
        # the trainable imported. It saved 0.8 s of imports in each first trial, but the
        # prestarted workers' imports then competed for the 2 cores with Ray's and the
        # driver's own start-up, and the first trial started 0.6-2.0 s later (B2R timeline,
        # 3 seeds): a loss end to end.
        previous = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = pythonpath
        try:
            ray.init(**kwargs)
        finally:
            if previous is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = previous
    else:
        kwargs.pop("include_dashboard")
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise SweepError(
                f"--address {address}: cannot join the Ray cluster there ({exc}). Check that "
                "`ray status --address ...` works from this machine, or leave out --address "
                "to run on an embedded local Ray."
            ) from None
    return True


def _check_resources(spec: SweepSpec, source: str, shapes: list[NodeShape]) -> int:
    """How many trials can run at once; refuse a spec no node can ever hold (see resources.py)."""
    return check_resources(spec, source, shapes)


class _SilentReporter(tune.ProgressReporter):
    """Tune's progress reporter that never reports (the live view and MLflow do)."""

    def should_report(self, trials: list[Any], done: bool = False) -> bool:
        return False

    def report(self, trials: list[Any], done: bool, *sys_info: Any) -> None:
        pass


class _AbortStopper(tune.Stopper):
    """Stops the whole sweep when a trial proves the spec wrong, or too many trials fail."""

    def __init__(self, ledger: TrialLedger, spec: SweepSpec) -> None:
        self._ledger = ledger
        self._max_failed = spec.failure.max_failed_fraction * spec.num_samples
        self.reason: str | None = None
        #: Whether the reason is a trainable's broken contract (exit 2), not failed trials (exit 1).
        self.contract_broken = False
        self._errors_checked = -1  # the first call scans: a resumed ledger may hold failures

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        if self.reason:
            return True
        # Tune calls this at every step of its loop; only a trial error can change the
        # answer, so the scan of every trial (O(trials) per step) runs only after one.
        if self._ledger.errors_seen == self._errors_checked:
            return False
        self._errors_checked = self._ledger.errors_seen
        for record in self._ledger.trials.values():
            contract_error = _contract_error(record.error) if record.outcome == "failed" else None
            if contract_error:
                self.reason = f"the trainable broke its contract in trial {record.trial_id}: {contract_error}"
                self.contract_broken = True
                return True
        failed = self._ledger.counts()["failed"]
        if failed > self._max_failed:
            self.reason = (
                f"{failed} trials failed, more than failure.max_failed_fraction allows "
                f"({self._max_failed:g}); see `sweep status` for their errors"
            )
            return True
        return False


#: Errors that prove the trainable or its declaration wrong: every trial would hit them,
#: so the first one ends the sweep (exit 2) instead of failing trial after trial.
_CONTRACT_ERRORS = ("MetricNotReportedError", "DatasetSizeError", "TrialEndedEarlyError")


def _contract_error(error: str | None) -> str | None:
    """The message of a contract error in a trial's traceback text, or None."""
    if not error:
        return None
    for line in reversed(error.strip().splitlines()):
        for name in _CONTRACT_ERRORS:
            if f"{name}: " in line:
                return line.split(f"{name}: ", 1)[1]
    return None


def _make_tuner(
    spec: SweepSpec, plan: SweepPlan, resolved: ResolvedTrainable, paths: SweepPaths,
    concurrency: int, callbacks: list[Any], stopper: Any, resume: Any = None,
) -> Any:
    import optuna

    from sweeps.runner.study_storage import open_study_storage
    from sweeps.search.scheduler import make_scheduler
    from sweeps.search.searcher import TruthfulOptunaSearch
    from sweeps.search.space import fixed_values, make_sampler, optuna_distributions

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    searcher = TruthfulOptunaSearch(
        space=optuna_distributions(spec),
        metric=spec.metric,
        mode=spec.mode,
        sampler=make_sampler(spec, resume.trials_so_far if resume is not None else 0),
        study_name=spec.name,
        storage=open_study_storage(paths.optuna_url),  # WAL: see study_storage.py
        budget_unit=spec.budget_unit,
        fixed=fixed_values(spec),
    )
    settings = TrialSettings(
        trainable=resolved.reference,
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
        delivered=dict(resume.delivered) if resume is not None else {},
        stop_file=str(stop_file(paths)),
    )
    trainable = tune.with_resources(
        make_trial_function(settings), {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu}
    )
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            metric=spec.metric,
            mode=spec.mode,
            search_alg=searcher,
            scheduler=make_scheduler(spec, plan),
            num_samples=resume.remaining if resume is not None else spec.num_samples,
            max_concurrent_trials=concurrency,
            # Reusing actors skips a fresh worker process (and a torch import) per trial:
            # measured 77 s → 8.8 s on a 20-trial digits sweep on 2 CPUs.
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name="ray",
            storage_path=str(paths.directory),
            callbacks=callbacks,
            stop=stopper,
            failure_config=tune.FailureConfig(max_failures=spec.failure.max_retries),
            verbose=0,
            # In Jupyter, Tune's default reporter clears the cell's output (our live view
            # included) and draws its own table; our live view is the only progress shown.
            progress_reporter=_SilentReporter(),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        ),
    )
    if resume is not None:
        from sweeps.runner.resume import continue_tuner

        tuner = continue_tuner(tuner, paths, trainable, resume, spec)
    return tuner


def _live_view(ledger: TrialLedger, spec: SweepSpec, options: RunOptions) -> Any:
    if not options.live:
        return None
    from sweeps.runner.progress import LiveView

    return LiveView(ledger, spec.name, spec.num_samples, lines=sys.stdout if options.progress_lines else None)


def _summarize(spec: SweepSpec, ledger: TrialLedger, paths: SweepPaths, wall: float, aborted: str | None) -> SweepSummary:
    best = ledger.best()
    records = list(ledger.trials.values())
    counts = ledger.counts()
    return SweepSummary(
        name=spec.name,
        best=None if best is None or best.last_result is None else {
            "trial_id": best.trial_id,
            "config": best.config,
            "value": best.last_result[spec.metric],
            "iterations": best.iterations,
        },
        trials={k: counts[k] for k in ("completed", "pruned", "diverged", "failed")},
        iterations_used=sum(r.iterations for r in records),
        iterations_worst_case=sum(int(r.last_result["total_iterations"]) for r in records if r.last_result),
        storage=str(paths.directory),
        wall_seconds=wall,
        aborted=aborted,
        trial_records=[
            {"trial_id": r.trial_id, "config": r.config, "outcome": r.outcome, "iterations": r.iterations}
            for r in records
        ],
    )


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
