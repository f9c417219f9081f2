"""The runner: one sweep from a validated spec to its summary, on a backend.

It claims the sweep's folder, starts the backend it is given (:mod:`sweeps.ray_backend`
from the CLI, :mod:`sweeps.backend.simulated` in fast tests), checks what the compute can
hold, builds the sweep's record keepers (the journal, the ledger, MLflow, the live view)
and stop rules, runs the job, and finishes the record however the run ended. It knows
nothing of Ray.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from sweeps.backend import Backend, StopRule, SweepJob, SweepListener
from sweeps.backend.resources import check_resources
from sweeps.errors import ResourceError, SweepError, TrainableError
from sweeps.plan.planner import SweepPlan, plan_spec
from sweeps.runner.disk_watch import DISK_REASON, disk_full_message, where_raised
from sweeps.runner.reconcile import Resumption
from sweeps.runner.recorders import SweepRecorders
from sweeps.runner.resume import reclaim_sweep_directory
from sweeps.runner.stopping import interruptible, interruptible_start_up
from sweeps.runner.summary import SweepSummary, summarize
from sweeps.runner.timeline import Timeline
from sweeps.spec.loading import LoadedSpec
from sweeps.store.disk_errors import (
    RESERVE_BYTES,
    STATE_RESERVE_BYTES,
    StorageFullError,
    disk_error_of,
    human_bytes,
    sweep_reserves,
)
from sweeps.store.lifecycle import SweepState, transition
from sweeps.store.space import space_warning
from sweeps.store.state import SweepPaths, sweep_paths, utc_now
from sweeps.tracking.preflight import preflight
from sweeps.training.registry import ResolvedTrainable


@dataclass
class RunOptions:
    #: Where the trials run (the CLI gives a :class:`~sweeps.ray_backend.RayBackend`).
    backend: Backend
    #: The cluster the backend joins (recorded in sweep.json, so a resume finds it); None: local.
    address: str | None = None
    live: bool = True
    # A plain progress line every PLAIN_EVERY_SECONDS and one per ended trial, on stdout
    # (for logs: the CLI sets it when stdout is not a terminal).
    progress_lines: bool = False
    overwrite: bool = False
    #: More listeners of the sweep's trial events, after the sweep's own.
    listeners: list[SweepListener] = field(default_factory=list)
    # Called with the summary once the sweep's record is complete and before the backend
    # this sweep started shuts down (Ray: about 1.4 s on 2 cores): the CLI prints the summary
    # and decides its exit code there, so neither waits for the shut-down.
    on_summary: Any = None
    #: The caller ends the process right after the summary (the CLI): the backend is not shut
    #: down (Ray: 1.1-1.4 s on 2 cores; its processes die with the driver, their parent-death signal).
    exit_after: bool = False
    # Continue this sweep (`sweep resume`).
    resume: Resumption | None = None
    #: Told each start-up phase as it begins ("starting Ray (local, 2 CPUs)", ...): the CLI
    #: prints them, so a slow start is not taken for a hang.
    on_phase: Callable[[str], None] | None = None


def run_sweep(loaded: LoadedSpec, options: RunOptions) -> SweepSummary:
    """Run the sweep of ``loaded`` on ``options.backend`` to the end and return its summary."""
    started, timeline = time.monotonic(), Timeline()
    paths = sweep_paths(loaded.spec.storage, loaded.spec.name)
    backend, started_backend, resolved, plan = _start(loaded, paths, options, timeline)
    start_seconds = time.monotonic() - started
    # Ctrl-C handling lives from the start of the run until the summary is written.
    with ExitStack() as signal_scope:
        if started_backend and not options.exit_after:  # last of all, however the sweep ends
            signal_scope.callback(backend.shutdown)
        sweep = SweepRecorders(
            loaded,
            plan,
            paths,
            options.resume,
            live=options.live,
            progress_lines=options.progress_lines,
            files=backend.trial_files(paths),
        )
        try:
            concurrency = _concurrency(loaded, paths, backend, options)
            with timeline.step("MLflow parent run"):
                sweep.start_tracking()
            job = _job(loaded, plan, resolved, paths, concurrency, options.resume)
            _tell(options, f"first trials starting, {concurrency} at a time")
            # Entered on the outer stack, not around the run alone: a second Ctrl-C that
            # comes while the sweep's record is being finished must not raise mid-cleanup.
            signal_scope.enter_context(interruptible(sweep.graceful, paths))
            with sweep.view or nullcontext():
                cpu_started = time.process_time()
                with timeline.step("trials"):
                    _run_job(backend, job, sweep, options, paths)
                fit_cpu_seconds = time.process_time() - cpu_started
            sweep.journal.close()
        finally:
            if (
                sys.exc_info()[0] is not None
            ):  # the sweep ended by an exception: no MLflow run may stay RUNNING
                sweep.close_tracking_after(sys.exc_info()[1])
        try:
            summary = summarize(
                loaded.spec, sweep.ledger, paths, time.monotonic() - started, sweep.abort.reason
            )
            summary.start_seconds, summary.driver_cpu_seconds = start_seconds, fit_cpu_seconds
            summary.stopped = sweep.graceful.reason if sweep.graceful.interrupted else None
            summary.limit = sweep.limits.reason
            summary.warnings = [sweep.alignment.warning] if sweep.alignment.warning else []
            summary.timeline = timeline.to_json()
            if sweep.disk.problem is not None:  # stopped, not aborted: it resumes once there is space
                summary.stopped, summary.aborted = DISK_REASON, None
        except BaseException:
            sweep.close_tracking_after(None)
            raise
        _finish_record(sweep, summary, paths)
        if sweep.abort.contract_broken:
            raise TrainableError(f"{loaded.source}: sweep `{loaded.spec.name}` stopped: {summary.aborted}")
        if options.on_summary is not None:
            options.on_summary(summary)
        return summary


def _run_job(
    backend: Backend, job: SweepJob, sweep: SweepRecorders, options: RunOptions, paths: SweepPaths
) -> None:
    """Run the job; a disk error raised out of it (Optuna's study, the backend's own record) ends
    it as a disk error noted during the run does: stopped, and resumable."""
    # The disk first: it asks the graceful stop, next, to stop at once.
    rules: list[StopRule] = [sweep.disk, sweep.abort, sweep.graceful, sweep.limits]
    try:
        backend.run(job, sweep.listeners(options.listeners), rules)
    except Exception as exc:  # anything but a disk error is raised again at once
        if not sweep.disk.note_exception(where_raised(exc, paths), exc):
            raise


def _finish_record(sweep: SweepRecorders, summary: SweepSummary, paths: SweepPaths) -> None:
    """Finish the sweep's record. After a disk error (met while the trials ran, or by these
    last writes themselves) it is recorded `stopped`, and the user gets one paragraph (exit 2)."""
    sweep.finish_tracking(summary)  # the MLflow writer notes a full store as it writes
    if sweep.disk.problem is not None:
        summary.stopped, summary.aborted = DISK_REASON, None
        sweep.disk.give_back_reserve()
    try:
        sweep.record_end(summary)
        state_written = True
    except OSError as exc:
        if not sweep.disk.note_exception(str(paths.state_file), exc):
            raise
        summary.stopped, summary.aborted = DISK_REASON, None
        sweep.disk.give_back_reserve()  # the room to write it once more, as stopped
        state_written = _try(lambda: sweep.record_end(summary))
    sweep.disk.give_back_reserve()
    problem = sweep.disk.problem
    if problem is not None:
        raise StorageFullError(disk_full_message(paths, problem, state_written))


def _try(write: Any) -> bool:
    try:
        write()
        return True
    except OSError as exc:
        if disk_error_of(exc) is None:
            raise
        return False


def _start(
    loaded: LoadedSpec, paths: SweepPaths, options: RunOptions, timeline: Timeline
) -> tuple[Backend, bool, ResolvedTrainable, SweepPlan]:
    """Start the backend while the driver does its own start-up; True: this run started it."""
    # What can refuse the sweep at once comes before the backend starts: a name already
    # taken, an unreachable tracking server (whose check also begins opening MLflow on a thread).
    _check_claim(paths, loaded, options)
    backend = options.backend
    _tell(options, backend.starting())
    with timeline.step("backend start begun"):
        backend.begin_start()
    # The backend starts (Ray: its processes, on the other core) while this thread loads
    # the trainable (torch), claims the folder and sets up the backend (Ray Tune's import).
    timeline.begin("backend start (overlapped)")
    claimed = False
    try:
        with interruptible_start_up(paths, resumed=options.resume is not None) as signals:
            with timeline.step("spec and trainable"):
                _tell(
                    options,
                    f"loading the trainable {_short_reference(loaded.spec.trainable)} "
                    "while the backend starts",
                )
                resolved, plan = plan_spec(loaded)
                signals.check()
                _claim(paths, loaded, options)
                claimed = True
                _hold_space(paths, loaded, backend)
                signals.check()
            with timeline.step("backend set-up, then the wait for it"):
                _tell(options, "setting up the backend, then waiting for it to start")
                started_backend = backend.start()
    except BaseException:
        backend.shutdown()  # a backend begun for nothing (a bad trainable, Ctrl-C) ends with the error
        if claimed:
            _remove_unrun_sweep(paths, options)
        raise
    timeline.end("backend start (overlapped)")
    return backend, started_backend, resolved, plan


def _short_reference(reference: str) -> str:
    """``path/to/file.py:train`` as ``file.py:train`` (a start-up line is no place for a long path)."""
    return os.path.basename(reference)


def _tell(options: RunOptions, phase: str) -> None:
    if options.on_phase is not None:
        options.on_phase(phase)


def _check_claim(paths: SweepPaths, loaded: LoadedSpec, options: RunOptions) -> None:
    if loaded.spec.tracking.enabled:
        # An unreachable tracking server is an error before anything starts (exit 2).
        preflight(loaded.spec, paths, loaded.source)
    if options.resume is None and paths.exists() and not options.overwrite:
        raise SweepError(
            f"{loaded.source}: a sweep named `{paths.name}` already exists under {paths.storage}. "
            f"Continue it with `sweep resume {paths.name} --storage {paths.storage}` (or this "
            "command with `--resume`), start it afresh with `--overwrite`, or choose another "
            "name with `--name`."
        )


def _claim(paths: SweepPaths, loaded: LoadedSpec, options: RunOptions) -> None:
    if options.resume is None:
        _claim_sweep_directory(paths, loaded, options)
    else:
        reclaim_sweep_directory(paths, loaded, options.address)


def _hold_space(paths: SweepPaths, loaded: LoadedSpec, backend: Backend) -> None:
    """Claim the room to record a stop on a full disk (sweeps.store.disk_errors), and warn
    when the storage has less free space than the sweep's checkpoints are expected to take."""
    try:
        for reserve in sweep_reserves(paths.directory):
            reserve.hold()
    except OSError as exc:
        raise SweepError(
            f"{loaded.source}: field `storage` is {loaded.spec.storage!r}, but the sweep's folder "
            f"{paths.directory} cannot be written ({exc.strerror}: not even "
            f"{human_bytes(RESERVE_BYTES + STATE_RESERVE_BYTES)} could be claimed). Choose a "
            "writable folder with enough free space (`--storage PATH`), or free some space there."
        ) from None
    warning = space_warning(loaded.spec, paths.storage, backend.trial_files(paths))
    if warning:
        Console(stderr=True, soft_wrap=True).print(f"[bold yellow]warning:[/] {warning}", highlight=False)


def _concurrency(loaded: LoadedSpec, paths: SweepPaths, backend: Backend, options: RunOptions) -> int:
    """How many trials run at once; before the parent run exists, so that a spec no node
    can hold leaves nothing in MLflow."""
    try:
        return check_resources(loaded.spec, loaded.source, backend.node_shapes())
    except ResourceError:
        _remove_unrun_sweep(paths, options)
        raise


def _remove_unrun_sweep(paths: SweepPaths, options: RunOptions) -> None:
    """Nothing ran: remove a new sweep's folder just claimed, so the same command (or the
    fixed spec) runs under the same name without `--overwrite`. A resumed sweep keeps its own."""
    if options.resume is None:
        shutil.rmtree(paths.directory, ignore_errors=True)


def _job(
    loaded: LoadedSpec,
    plan: SweepPlan,
    resolved: ResolvedTrainable,
    paths: SweepPaths,
    concurrency: int,
    resume: Resumption | None,
) -> SweepJob:
    spec = loaded.spec
    if resume is None:
        return SweepJob(spec, plan, resolved, paths, concurrency, trials_to_create=spec.num_samples)
    return SweepJob(
        spec,
        plan,
        resolved,
        paths,
        concurrency,
        trials_to_create=resume.remaining,
        trials_so_far=resume.trials_so_far,
        resume=resume.state,
    )


def _claim_sweep_directory(paths: SweepPaths, loaded: LoadedSpec, options: RunOptions) -> None:
    if paths.exists():
        shutil.rmtree(paths.directory)
    try:
        transition(
            paths,
            SweepState.RUNNING,
            name=paths.name,
            spec_path=str(loaded.path.resolve()),
            spec=loaded.raw,
            overrides=list(loaded.overrides),
            address=options.address,
            num_samples=loaded.spec.num_samples,
            started_at=utc_now(),
            driver_pid=os.getpid(),
            driver_host=socket.gethostname(),
        )
    except OSError as exc:
        raise SweepError(
            f"{loaded.source}: field `storage` is {loaded.spec.storage!r}, but the sweep's "
            f"folder {paths.directory} cannot be written ({exc.strerror}). Choose a writable "
            "folder with enough free space (`--storage PATH`)."
        ) from None
