"""Stop the sweep at the first disk error on its own storage, as a graceful stop does.

The errors are recognised by :mod:`sweeps.store.disk_errors` wherever they come from: the
journal (:class:`~sweeps.runner.recorders.JournalListener`), the MLflow writer's thread,
a trial whose checkpoint write failed (its traceback, at its first failure, before Ray
retries it), or an exception out of the backend's run (Optuna's ``StorageInternalError``,
Ray's own snapshot). The first one noted:

1. gives back the stop's :class:`~sweeps.store.disk_errors.SpaceReserve` at once (from
   whichever thread noted it), so that the stop itself can still be recorded on a full
   disk (``sweep.json``'s own reserve goes back right before it is written);
2. starts no new trial, and stops the running ones through
   :meth:`~sweeps.runner.stopping.GracefulStop.request_without_checkpoints`: Ray's own
   graceful interruption, trials left resumable from their last checkpoint (a stop
   checkpoint would only hit the full disk again);
3. ends the run with ``sweep.json`` ``stopped`` and one paragraph (:func:`disk_full_message`):
   where, what, the space the sweep has used and the resume command, exit code 2.
"""

from __future__ import annotations

from typing import Any

from sweeps.backend import SweepListener, TrialError, TrialInfo
from sweeps.runner.stopping import GracefulStop, resume_command
from sweeps.store.disk_errors import (
    DiskProblem,
    DiskProblems,
    disk_error_in_text,
    free_bytes,
    human_bytes,
    sweep_reserves,
    used_bytes,
)
from sweeps.store.state import SweepPaths

#: The stop's reason, as a graceful stop records it (``summary.stopped``).
DISK_REASON = "storage full or not writable"


class DiskWatch(SweepListener):
    """A listener (trials' errors) and a stop rule (:class:`~sweeps.backend.StopRule`)."""

    def __init__(self, paths: SweepPaths, graceful: GracefulStop) -> None:
        self.paths = paths
        self._stop_reserve, self._state_reserve = sweep_reserves(paths.directory)
        # The stop's reserve goes back at once, from whichever thread met the error: the
        # MLflow writer's retries and Ray's last snapshot need the room. sweep.json's waits.
        self.problems = DiskProblems(on_first=lambda problem: self._stop_reserve.release())
        self._graceful = graceful
        self._stopping = False

    @property
    def problem(self) -> DiskProblem | None:
        return self.problems.first

    # -- where the errors come from ------------------------------------------------------------

    def trial_raised(self, trial: TrialInfo, error: TrialError) -> None:
        found = disk_error_in_text(error.text)
        if found is not None:
            # Most often its checkpoint, which Ray copies under the sweep's Ray folder; a
            # trainable's own writes elsewhere (a full /tmp) end here too, and stop it alike.
            self.problems.note(
                f"trial {trial.trial_id}'s worker, saving its checkpoint or its own files", found
            )

    def trial_failed(self, trial: TrialInfo, error: TrialError) -> None:
        self.trial_raised(trial, error)

    def note_exception(self, where: str, error: BaseException | None) -> bool:
        """Note ``error`` if it is a disk error (from any thread); True if it was one."""
        return self.problems.note_exception(where, error)

    # -- the stop rule -----------------------------------------------------------------------------

    def observe(self, trial_id: str, result: dict[str, Any]) -> None:
        pass

    def allows_new_trials(self) -> bool:
        return self.problem is None

    def stop_all(self) -> bool:
        if self.problem is not None and not self._stopping:
            self._stopping = True
            self._graceful.request_without_checkpoints(DISK_REASON)
        return False  # the graceful stop, asked next, interrupts the backend

    def give_back_reserve(self) -> None:
        """Give back both reserves: the sweep's state is written next (or the sweep is done)."""
        self._stop_reserve.release()
        self._state_reserve.release()


def where_raised(error: BaseException, paths: SweepPaths) -> str:
    """Which of the sweep's records ``error``, raised out of the backend's run, was writing."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.filename:
            return str(current.filename)
        if type(current).__module__.split(".")[0] in ("optuna", "sqlalchemy", "sqlite3"):
            return f"the Optuna study {paths.study_file}"
        current = current.__cause__ or current.__context__
    return f"Ray Tune's experiment folder {paths.ray_directory}"


def disk_full_message(paths: SweepPaths, problem: DiskProblem, state_written: bool) -> str:
    """The one paragraph a user reads when the sweep stopped on a disk error."""
    used = used_bytes(paths.directory)
    free = free_bytes(paths.directory)
    where_free = f", {human_bytes(free)} free there now" if free is not None else ""
    state = (
        "Its state is `stopped`"
        if state_written
        else f"{paths.state_file} could not be updated either, so the sweep reads `crashed`"
    )
    return (
        f"Sweep `{paths.name}` stopped: a disk it writes to is full or cannot be written "
        f"({problem.error}; met in {problem.where}). The sweep has written {human_bytes(used)} "
        f"under {paths.directory}{where_free}. "
        f"{state}, and nothing it recorded is lost: trials that were running restart from their "
        f"last checkpoint. Free some space (or lower `checkpoint.keep`), then continue it with "
        f"`{resume_command(paths)}`."
    )
