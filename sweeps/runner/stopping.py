"""Stopping a sweep on purpose: Ctrl-C or SIGTERM once (graceful), twice (at once), `sweep stop`.

SIGTERM is how Slurm, Kubernetes, ``ray job stop``, systemd and ``timeout`` stop a
program, so it is treated as Ctrl-C is, and the process exits with 143 (128 + 15)
instead of 130. A backend may install a SIGTERM handler of its own as it starts (Ray's C++
core worker does in ``ray.init``: it prints a stack dump and aborts, exit 134, state
``crashed``): :func:`interruptible_start_up` replaces it as the start-up ends, before
anything else.

A graceful stop, from Ctrl-C, SIGTERM or ``sweep stop NAME`` in another terminal (which
writes ``<storage>/<name>/stop-requested``), goes in two steps:

1. the stop file tells every running trial to save a checkpoint at its next iteration
   and report it (:class:`~sweeps.ray_backend.trial.RayTrialContext` polls the file; on a
   cluster without shared storage trials keep their last epoch checkpoint instead);
2. once the backend has registered such a checkpoint of each running trial (or after
   :data:`GRACE_SECONDS`), :class:`GracefulStop` raises SIGUSR1 in the driver, which is
   Ray Tune's own graceful interruption: it snapshots the experiment with the trials
   still RUNNING (so ``sweep resume`` restarts them from those checkpoints) and stops
   their workers. The runner then marks their MLflow runs KILLED.

While it waits, the terminal says every few seconds which trials it waits for and how
long it will wait. A second Ctrl-C or SIGTERM raises :class:`~sweeps.errors.SweepInterrupted`
at once: no final snapshot, but the study, the journal and Ray's last snapshot are
enough to resume.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sweeps.errors import SweepInterrupted
from sweeps.runner.ledger import TrialLedger
from sweeps.store.lifecycle import SweepState, transition
from sweeps.store.state import SweepPaths, utc_now
from sweeps.store.stop_request import read_stop_reason, write_stop_request

#: Longest wait for running trials to report their stop checkpoint (a trial in the
#: middle of a long evaluation); after it they restart from their last checkpoint.
#: Slurm (KillWait) and Kubernetes (terminationGracePeriodSeconds) send SIGKILL 30 s
#: after SIGTERM by default; give them more to let the stop finish (README).
GRACE_SECONDS = 30.0
_POLL_SECONDS = 0.5
#: How often a graceful stop says what it is still waiting for.
_WAIT_NOTE_SECONDS = 5.0
#: Exit codes of a stopped sweep, by what stopped it: 128 + the signal number, as a shell
#: reports a process ended by that signal (`sweep stop` and Ctrl-C: 130).
SIGTERM_REASON = "SIGTERM"
_EXIT_CODES = {SIGTERM_REASON: 128 + signal.SIGTERM}
#: SIGTERMs that arrived between the start-up's end and :func:`interruptible` (see interruptible_start_up).
_early_sigterm = threading.Event()


def exit_code(reason: str | None) -> int:
    """The exit code of a sweep stopped for ``reason`` (143 for SIGTERM, else 130)."""
    return _EXIT_CODES.get(reason or "", 130)


def resume_command(paths: SweepPaths) -> str:
    return f"sweep resume {paths.name} --storage {paths.storage}"


class GracefulStop:
    """A stop rule (:class:`~sweeps.backend.StopRule`): polls for a stop request, and
    interrupts the backend once every running trial has checkpointed."""

    def __init__(self, ledger: TrialLedger, paths: SweepPaths, grace_seconds: float = GRACE_SECONDS) -> None:
        self._ledger = ledger
        self._file = paths.stop_request_file
        self.grace_seconds = grace_seconds
        self.reason: str | None = None
        self.interrupted = False
        #: Set by a second Ctrl-C: raise KeyboardInterrupt in Tune's loop at its next step.
        self.at_once = False
        self._requested_at = 0.0
        #: Trial id → results naming a checkpoint so far, and those counts when the stop was
        #: requested. A trial is ready once the backend has *registered* more checkpoints
        #: than it had reported then: the stop's own checkpoint (or a later one) is then what
        #: it restarts from. Neither a result naming a checkpoint (Ray Tune registers it only
        #: after a round trip to the trial's actor, and a snapshot taken before that restarts
        #: the trial from the checkpoint before: measured, iteration 23 instead of the stop
        #: at 26) nor the late registration of a checkpoint reported before the stop will do.
        self._reported_checkpoints: dict[str, int] = {}
        self._reported_at_request: dict[str, int] = {}
        self._next_poll = 0.0
        self._next_wait_note = 0.0
        #: trial id → monotonic time of its last result, to say how long a trial has been silent.
        self._heard: dict[str, float] = {}

    def request(self, reason: str) -> None:
        if self.reason is None:
            self.reason, self._requested_at = reason, time.monotonic()
            self._reported_at_request = dict(self._reported_checkpoints)
            self._next_wait_note = self._requested_at + _WAIT_NOTE_SECONDS
            try:
                if not self._file.exists():
                    write_stop_request(self._file, reason)
            except OSError:
                pass  # trials then restart from their last epoch checkpoint

    def request_without_checkpoints(self, reason: str) -> None:
        """Stop at the next step without asking the trials for a stop checkpoint (the disk is
        full: it would fail): they restart from their last one, as after the grace runs out."""
        if self.reason is None:
            self.reason, self._requested_at = reason, time.monotonic()
            self._reported_at_request = dict(self._reported_checkpoints)
            self.grace_seconds = 0.0

    def observe(self, trial_id: str, result: dict[str, Any]) -> None:
        self._heard[trial_id] = time.monotonic()
        if result.get("checkpoint_dir_name"):
            self._reported_checkpoints[trial_id] = self._reported_checkpoints.get(trial_id, 0) + 1

    def _checkpointed_since_request(self) -> set[str]:
        before = self._reported_at_request
        return {t for t, registered in self._ledger.checkpoints.items() if registered > before.get(t, 0)}

    def allows_new_trials(self) -> bool:
        # Trials may start while a stop waits for the running ones to checkpoint: the stop
        # ends them with the rest, and a resumed sweep restarts them.
        return True

    def stop_all(self) -> bool:
        if self.at_once:
            raise KeyboardInterrupt
        now = time.monotonic()
        if self.reason is None and now >= self._next_poll:
            self._next_poll = now + _POLL_SECONDS
            if self._file.exists():
                self.request(read_stop_reason(self._file))
        if self.reason is None or self.interrupted:
            return False
        running = {r.trial_id for r in self._ledger.trials.values() if r.outcome is None}
        checkpointed = self._checkpointed_since_request()
        if running <= checkpointed or now - self._requested_at >= self.grace_seconds:
            self.interrupted = True
            # Tune's own handler (installed for SIGUSR1 while `fit()` runs) ends the run
            # after a last experiment snapshot, leaving unfinished trials resumable.
            os.kill(os.getpid(), signal.SIGUSR1)
        elif now >= self._next_wait_note:
            self._next_wait_note = now + _WAIT_NOTE_SECONDS
            sys.stderr.write(self.waiting_note(sorted(running - checkpointed), now) + "\n")
            sys.stderr.flush()
        return False

    def waiting_note(self, waiting: list[str], now: float) -> str:
        """What the stop waits for: which trials, where they are, and how long it will wait."""
        shown = []
        for trial_id in waiting[:6]:
            record = self._ledger.trials.get(trial_id)
            heard = self._heard.get(trial_id)
            where = f"iteration {record.iterations}" if record and record.last_result else "no report yet"
            silent = f", last report {now - heard:.0f} s ago" if heard is not None else ""
            shown.append(f"{trial_id} ({where}{silent})")
        more = f" and {len(waiting) - 6} more" if len(waiting) > 6 else ""
        left = max(0.0, self.grace_seconds - (now - self._requested_at))
        return (
            f"Stopping ({self.reason}): waiting for {len(waiting)} running trial(s) to save a "
            f"checkpoint: {', '.join(shown)}{more}. Stopping without them in {left:.0f} s "
            "(they then restart from their last checkpoint)."
        )


class StartUpSignals:
    """Ctrl-C or SIGTERM received while the sweep starts, acted on at the next :meth:`check`."""

    def __init__(self, paths: SweepPaths, resumed: bool) -> None:
        self.paths = paths
        self.resumed = resumed
        self.received: list[str] = []

    def check(self) -> None:
        """Raise :class:`SweepInterrupted` (printing its message) if a signal came."""
        if not self.received:
            return
        name = self.received[0]
        again = (
            f"Resume it again with `{resume_command(self.paths)}`."
            if self.resumed
            else "Nothing ran; the same command starts it again."
        )
        message = f"Sweep `{self.paths.name}` stopped while starting ({name}). {again}"
        # Printed here, as interruptible does: click turns any KeyboardInterrupt into a bare Abort.
        sys.stderr.write(f"\n{message}\n")
        raise SweepInterrupted(message, exit_code(name))


@contextmanager
def interruptible_start_up(paths: SweepPaths, resumed: bool) -> Iterator[StartUpSignals]:
    """Ctrl-C or SIGTERM while the sweep starts (Ray, the trainable, the folder) stops it at once.

    Nothing has run yet, so there is nothing to stop gracefully: the signal is noted and
    :meth:`StartUpSignals.check`, called between the start's steps, raises
    :class:`SweepInterrupted` (exit 130 or 143), which unwinds the start: the runner shuts
    down the Ray it began and removes a new sweep's folder, so the same command starts it
    again. Noted rather than raised from the handler: an exception raised in the middle of
    importing torch or Ray Tune, while Ray starts on another thread, once left the driver
    hanging (a SIGTERM in the test suite). From ``ray.init``'s core worker until the
    start-up's end (at most the rest of the driver's own start-up, usually nothing: Ray is
    up last), a SIGTERM meets Ray's handler instead, which ends the driver (143) as
    ``kill -9`` would (docs/reliability.md).

    A start-up that succeeds ends by taking SIGTERM over (:func:`_take_over_sigterm`);
    one that fails restores the handlers it found.
    """
    signals = StartUpSignals(paths, resumed)
    if threading.current_thread() is not threading.main_thread():
        yield signals
        return

    def on_signal(signum: int, frame: Any) -> None:
        signals.received.append("Ctrl-C" if signum == signal.SIGINT else SIGTERM_REASON)

    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    for number in previous:
        signal.signal(number, on_signal)
    try:
        yield signals
        signals.check()
    except BaseException:
        for number, handler in previous.items():
            signal.signal(number, handler)
        raise
    signal.signal(signal.SIGINT, previous[signal.SIGINT])
    _take_over_sigterm()


def _take_over_sigterm() -> None:
    """Replace the SIGTERM handler the backend's start left with one that only takes note.

    Ray's C++ core worker installs a failure-signal handler for SIGTERM in ``ray.init`` that
    dumps a stack trace and aborts the driver (measured on Ray 2.60: "*** SIGTERM received
    at ...", exit 134). ``signal.signal`` replaces it at the OS level; a SIGTERM that
    arrives before :func:`interruptible` is entered (while tracking starts and the backend
    builds its run) is acted on when it is.
    """
    _early_sigterm.clear()
    signal.signal(signal.SIGTERM, lambda signum, frame: _early_sigterm.set())


@contextmanager
def interruptible(graceful: GracefulStop, paths: SweepPaths) -> Iterator[None]:
    """Ctrl-C or SIGTERM once asks ``graceful`` to stop; twice raises :class:`SweepInterrupted`."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous_env = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
    # Tune's own SIGINT handler would stop at once, before trials checkpoint.
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    previous = signal.getsignal(signal.SIGINT)
    previous_term = signal.getsignal(signal.SIGTERM)
    received: list[str] = []

    def on_signal(signum: int, frame: Any) -> None:
        name = "Ctrl-C" if signum == signal.SIGINT else SIGTERM_REASON
        received.append(name)
        if graceful.reason is None:
            graceful.request(name)
            again = "Press Ctrl-C again" if name == "Ctrl-C" else "Send SIGTERM again (or press Ctrl-C)"
            sys.stderr.write(
                f"\nStopping ({name}): running trials save a checkpoint first, for at most "
                f"{graceful.grace_seconds:g} s. {again} to stop at once.\n"
            )
            sys.stderr.flush()
            return
        # Raising here could land in a finalizer (where Python ignores it); Tune's loop calls
        # the stopper every step (at most 0.1 s apart), so the KeyboardInterrupt starts there.
        graceful.at_once = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if _early_sigterm.is_set():
        _early_sigterm.clear()
        on_signal(signal.SIGTERM, None)
    try:
        yield
    except KeyboardInterrupt:
        transition(paths, SweepState.INTERRUPTED, stopped_at=utc_now())
        message = (
            f"Sweep `{paths.name}` stopped at once. Trials that were running restart from their "
            f"last checkpoint when you resume it: {resume_command(paths)}"
        )
        # Printed here: click turns any KeyboardInterrupt into a bare Abort on its way out.
        sys.stderr.write(f"\n{message}\n")
        code = exit_code(SIGTERM_REASON) if SIGTERM_REASON in received else exit_code("Ctrl-C")
        raise SweepInterrupted(message, code) from None
    finally:
        signal.signal(signal.SIGINT, previous)
        # Ray is shut down by now; Ray's Python handler (SystemExit 15) or our early one
        # would only hide a SIGTERM, so the default (end the process, 143) comes back.
        signal.signal(signal.SIGTERM, signal.SIG_DFL if _is_ours_or_rays(previous_term) else previous_term)
        if previous_env is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = previous_env


def _is_ours_or_rays(handler: Any) -> bool:
    module = getattr(handler, "__module__", "") or ""
    return module == __name__ or module.startswith("ray.")
