"""Stopping a sweep on purpose: Ctrl-C once (graceful), Ctrl-C twice (at once), `sweep stop`.

A graceful stop, from Ctrl-C or from ``sweep stop NAME`` in another terminal (which
writes ``<storage>/<name>/stop-requested``), goes in two steps:

1. the stop file tells every running trial to save a checkpoint at its next iteration
   and report it (:class:`~sweeps.runner.trial.RayTrialContext` polls the file; on a
   cluster without shared storage trials keep their last epoch checkpoint instead);
2. once each running trial has reported such a checkpoint (or after
   :data:`GRACE_SECONDS`), :class:`GracefulStop` raises SIGUSR1 in the driver, which is
   Ray Tune's own graceful interruption: it snapshots the experiment with the trials
   still RUNNING (so ``sweep resume`` restarts them from those checkpoints) and stops
   their workers. The runner then marks their MLflow runs KILLED.

A second Ctrl-C raises :class:`~sweeps.errors.SweepInterrupted` at once: no final
snapshot, but the study, the journal and Ray's last snapshot are enough to resume.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from ray import tune

from sweeps.errors import SweepInterrupted
from sweeps.runner.ledger import TrialLedger
from sweeps.runner.state import SweepPaths, update_state

STOP_FILE = "stop-requested"
#: Longest wait for running trials to report their stop checkpoint (a trial in the
#: middle of a long evaluation); after it they restart from their last checkpoint.
GRACE_SECONDS = 20.0
_POLL_SECONDS = 0.5


def stop_file(paths: SweepPaths) -> Path:
    return paths.directory / STOP_FILE


def request_stop(paths: SweepPaths, reason: str) -> None:
    """Ask the sweep's driver (any host sharing the storage) to stop gracefully."""
    stop_file(paths).write_text(json.dumps({"reason": reason, "at": time.time(), "pid": os.getpid()}))


def clear_stop_request(paths: SweepPaths) -> None:
    stop_file(paths).unlink(missing_ok=True)


def resume_command(paths: SweepPaths) -> str:
    return f"sweep resume {paths.name} --storage {paths.storage}"


class GracefulStop(tune.Stopper):
    """Polls for a stop request; when every running trial has checkpointed, interrupts Tune."""

    def __init__(self, ledger: TrialLedger, paths: SweepPaths, grace_seconds: float = GRACE_SECONDS) -> None:
        self._ledger = ledger
        self._file = stop_file(paths)
        self._grace = grace_seconds
        self.reason: str | None = None
        self.interrupted = False
        #: Set by a second Ctrl-C: raise KeyboardInterrupt in Tune's loop at its next step.
        self.at_once = False
        self._requested_at = 0.0
        self._checkpointed: set[str] = set()
        self._next_poll = 0.0

    def __getstate__(self) -> dict[str, Any]:
        return {}  # Ray pickles stoppers into its snapshot; a resumed sweep builds its own

    def request(self, reason: str) -> None:
        if self.reason is None:
            self.reason, self._requested_at = reason, time.monotonic()
            try:
                if not self._file.exists():
                    self._file.write_text(json.dumps({"reason": reason, "at": time.time(), "pid": os.getpid()}))
            except OSError:
                pass  # trials then restart from their last epoch checkpoint

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        if self.reason is not None and result.get("checkpoint_dir_name"):
            self._checkpointed.add(trial_id)
        return False

    def stop_all(self) -> bool:
        if self.at_once:
            raise KeyboardInterrupt
        now = time.monotonic()
        if self.reason is None and now >= self._next_poll:
            self._next_poll = now + _POLL_SECONDS
            if self._file.exists():
                self.request(_read_reason(self._file))
        if self.reason is None or self.interrupted:
            return False
        running = {r.trial_id for r in self._ledger.trials.values() if r.outcome is None}
        if running <= self._checkpointed or now - self._requested_at > self._grace:
            self.interrupted = True
            # Tune's own handler (installed for SIGUSR1 while `fit()` runs) ends the run
            # after a last experiment snapshot, leaving unfinished trials resumable.
            os.kill(os.getpid(), signal.SIGUSR1)
        return False


def _read_reason(path: Path) -> str:
    try:
        return str(json.loads(path.read_text()).get("reason") or "a stop request")
    except (OSError, ValueError, AttributeError):
        return "a stop request"


@contextmanager
def interruptible(graceful: GracefulStop, paths: SweepPaths) -> Iterator[None]:
    """Ctrl-C once asks ``graceful`` to stop; twice raises :class:`SweepInterrupted`."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous_env = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
    # Tune's own SIGINT handler would stop at once, before trials checkpoint.
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum: int, frame: Any) -> None:
        if graceful.reason is None:
            graceful.request("Ctrl-C")
            sys.stderr.write(
                "\nStopping: running trials save a checkpoint first. Press Ctrl-C again to stop at once.\n"
            )
            return
        # Raising here could land in a finalizer (where Python ignores it); Tune's loop calls
        # the stopper every step (at most 0.1 s apart), so the KeyboardInterrupt starts there.
        graceful.at_once = True

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    except KeyboardInterrupt:
        update_state(paths, state="interrupted", stopped_at=_now())
        message = (
            f"Sweep `{paths.name}` stopped at once. Trials that were running restart from their "
            f"last checkpoint when you resume it: {resume_command(paths)}"
        )
        # Printed here: click turns any KeyboardInterrupt into a bare Abort on its way out.
        sys.stderr.write(f"\n{message}\n")
        raise SweepInterrupted(message) from None
    finally:
        signal.signal(signal.SIGINT, previous)
        if previous_env is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = previous_env


def _now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
