"""Launching a sweep from the CLI: ``sweep run`` and ``sweep resume`` share these steps.

The runner is imported when a sweep is launched, not with the CLI: it brings Optuna
(about 0.4 s), which ``sweep plan``, ``list``, ``status`` and ``best`` never need.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

import typer

from sweeps.cli.console import StartLines, console
from sweeps.cli.outcome import report_outcome
from sweeps.errors import SweepError, SweepInterrupted
from sweeps.spec.loading import LoadedSpec
from sweeps.store.state import read_state, sweep_paths

if TYPE_CHECKING:
    from sweeps.backend import Backend
    from sweeps.runner.reconcile import Resumption
    from sweeps.runner.runner import RunOptions


#: Set once a sweep was launched in this process: :func:`end_process` then skips the
#: interpreter's exit handlers (Ray's `ray.shutdown()` among them).
_launched = False


def announce(
    loaded: LoadedSpec, address: str | None, as_json: bool, resumed: int | None = None
) -> StartLines:
    """Print the sweep's first line at once (stderr with ``--json``); the phases follow on the same stream.

    ``resumed``: the trials left to a resumed sweep (its first line says so).
    """
    lines = StartLines(stderr=as_json)
    spec = loaded.spec
    storage = str(sweep_paths(spec.storage, spec.name).directory)
    lines.first(
        spec.name, spec.num_samples if resumed is None else resumed, storage, address, resumed is not None
    )
    return lines


def ray_backend(loaded: LoadedSpec | None, address: str | None) -> Backend:
    """The CLI's backend: Ray, embedded (``address`` None) or the cluster at ``address``;
    an embedded Ray's workers import ``loaded``'s trainable as they start.

    Building it imports ``ray`` (about 0.4 s) but starts nothing: the runner starts it
    while the driver does its own start-up."""
    from sweeps.ray_backend import RayBackend

    if loaded is None:
        return RayBackend(address)
    return RayBackend(
        address, trainable=loaded.spec.trainable, workers_per_trial=loaded.spec.resources.workers
    )


def run_and_report(
    loaded: LoadedSpec, options: RunOptions, as_json: bool, lines: StartLines | None = None
) -> None:
    """Run (or resume) a sweep with the CLI's output settings, then report its outcome."""
    lines = lines or announce(loaded, options.address, as_json)
    from sweeps.runner.runner import run_sweep

    options.on_phase = lines

    global _launched
    _launched = True
    # The process ends right after the summary (end_process): the Ray it started dies with it.
    options.exit_after = True
    options.live = not as_json
    # In a log (a pipe, a file, `ray job logs`) the live view shows nothing until the end.
    options.progress_lines = not as_json and not _is_terminal(sys.stdout)
    # The summary and the exit code come before Ray's shut-down (about 1.4 s), not after it.
    scheduler = loaded.spec.scheduler.type
    stdout = sys.stdout
    told: list[int] = []  # the exit code the summary decided, once it is printed

    def on_summary(summary: Any) -> None:
        try:
            report_outcome(summary, loaded.spec.metric, as_json, scheduler, stdout)
        except typer.Exit as exc:
            told.append(exc.exit_code)
            raise
        told.append(0)

    options.on_summary = on_summary
    # `--json` keeps stdout to the one JSON line, so whatever else is printed while the sweep
    # runs goes to stderr: Ray prints the errors its cluster publishes (a worker that died, a
    # lost node's last log lines) to the driver's stdout, and they can come after the summary.
    # Ray's shut-down, which ends its printing thread, is inside run_sweep.
    diverted = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
    try:
        with diverted:
            run_sweep(loaded, options)
    except SweepInterrupted as exc:  # stopped at once; the message (how to resume) is printed
        # Here, not in main(): click turns any KeyboardInterrupt into a bare Abort (130).
        raise typer.Exit(told[0] if told else exc.exit_code) from None
    except KeyboardInterrupt:
        if not told:
            raise
        # Ctrl-C after the summary: the record is complete, and the exit is the summary's.
        raise typer.Exit(told[0]) from None
    finally:
        if told:  # from here to the exit, a signal could only turn the summary's code into 130
            ignore_stop_signals()


def end_process(code: int) -> None:
    """Exit with ``code``; after a sweep, without waiting for Ray's shut-down.

    Everything the sweep records is flushed and closed before its summary is printed (the
    journal, the study, the MLflow writer), so what is left at exit is Ray's own
    ``atexit`` shut-down: 0.4 s on 2 cores (1.1-1.4 s with the services the embedded Ray no
    longer starts) of stopping processes that must end anyway. Here they are killed: every
    process this driver started is the embedded Ray's (GCS, raylet, its agents, the
    workers), and nothing of the sweep's record lives in them. Left to the kernel's
    parent-death signal alone, the GCS and the raylet would go, but Ray's two agents would
    spend about 60 s trying to tell the dead GCS before they exit. A cluster's processes
    are not this driver's children and keep running, as they should.
    """
    if not _launched:
        sys.exit(code)
    ignore_stop_signals()  # the code is decided; a Ctrl-C in the scan below raised out of it
    import logging

    import psutil

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                child.kill()
    os._exit(code)


def ignore_stop_signals() -> None:
    """Ignore Ctrl-C and SIGTERM from here on: the sweep's record is complete and its exit code told."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):  # not the main thread: nothing to ignore there
            signal.signal(signum, signal.SIG_IGN)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def run_resumed(
    loaded: LoadedSpec, resumption: Resumption, address: str | None, as_json: bool, storage: str
) -> None:
    """Continue a reconciled sweep, saying first what the reconciliation found."""
    for note in resumption.notes:  # stderr, so `--json` keeps stdout to its one object
        console(stderr=True).print(f"[bold]resume:[/] {note}")
    stored_address = read_state(sweep_paths(loaded.spec.storage, loaded.spec.name)).get("address")
    address = address or stored_address
    lines = announce(loaded, address, as_json, resumed=resumption.remaining)
    from sweeps.runner.runner import RunOptions

    run_and_report(
        loaded, RunOptions(ray_backend(loaded, address), address=address, resume=resumption), as_json, lines
    )


def resume_existing(loaded: LoadedSpec, overwrite: bool, address: str | None, as_json: bool) -> bool:
    """``sweep run SPEC --resume``: continue the sweep if it exists; False if there is none."""
    from sweeps.runner.resume import prepare_resume

    if overwrite:
        raise SweepError(
            "--resume and --overwrite contradict each other: --resume continues the existing "
            "sweep, --overwrite deletes it. Pass one of them."
        )
    paths = sweep_paths(loaded.spec.storage, loaded.spec.name)
    if not paths.exists():
        return False
    loaded, resumption = prepare_resume(
        paths.storage, paths.name, given=loaded, backend=ray_backend(loaded, address)
    )
    run_resumed(loaded, resumption, address, as_json, str(paths.storage))
    return True
