"""The stop on a disk error (sweeps/runner/disk_watch.py), fast: no Ray, real reserve files, a
real SIGUSR1."""

from __future__ import annotations

import errno
import signal
import threading
from pathlib import Path

import optuna
from sqlalchemy.exc import OperationalError

from sweeps.backend import TrialError, TrialInfo
from sweeps.runner.disk_watch import DISK_REASON, DiskWatch, disk_full_message, where_raised
from sweeps.runner.ledger import TrialLedger
from sweeps.runner.stopping import GracefulStop
from sweeps.store.disk_errors import RESERVE_FILE, STATE_RESERVE_FILE, sweep_reserves
from sweeps.store.state import sweep_paths
from tests.runner.test_stopping import interrupts, running  # noqa: F401 - the fixture

TRACEBACK = """Traceback (most recent call last):
  File ".../ray/train/_internal/storage.py", line 568, in persist_current_checkpoint
OSError: [Errno 28] Error writing bytes to file. Detail: [errno 28] No space left on device
"""


def watched(tmp_path: Path) -> tuple[DiskWatch, GracefulStop, TrialLedger]:
    paths = sweep_paths(tmp_path, "s")
    paths.directory.mkdir(parents=True)
    for reserve in sweep_reserves(paths.directory):
        reserve.hold()
    ledger = TrialLedger("val_accuracy", "max")
    graceful = GracefulStop(ledger, paths)
    return DiskWatch(paths, graceful), graceful, ledger


def test_a_trials_failed_checkpoint_write_stops_the_sweep_at_once_without_stop_checkpoints(
    tmp_path: Path,
    interrupts: list[int],  # noqa: F811 - the fixture
) -> None:
    disk, graceful, ledger = watched(tmp_path)
    (trial,) = running(ledger, "t1")
    running(ledger, "t2")
    assert disk.allows_new_trials() and disk.stop_all() is False and interrupts == []
    disk.trial_raised(
        trial, TrialError("Traceback ...\nRuntimeError: CUDA out of memory\n")
    )  # not a disk error
    assert disk.problem is None
    disk.trial_raised(trial, TrialError(TRACEBACK))  # its first failure, before Ray retries it
    assert disk.problem is not None and "No space left on device" in disk.problem.error
    assert "trial t1's worker" in disk.problem.where
    # The stop's reserve is back at once; sweep.json's waits for the state to be written.
    names = {p.name for p in (tmp_path / "s").iterdir()}
    assert RESERVE_FILE not in names and STATE_RESERVE_FILE in names
    assert not disk.allows_new_trials()
    assert disk.stop_all() is False  # it asks the graceful stop, which the backend asks next
    assert graceful.reason == DISK_REASON and graceful.grace_seconds == 0.0
    assert not (tmp_path / "s" / "stop-requested").exists()  # no trial is asked for a stop checkpoint
    assert graceful.stop_all() is False and graceful.interrupted and interrupts == [signal.SIGUSR1]
    disk.give_back_reserve()
    assert not list((tmp_path / "s").glob(".space-reserve*"))


def test_the_first_error_is_the_one_told_whichever_thread_notes_it(tmp_path: Path) -> None:
    disk, _, _ = watched(tmp_path)
    mlflow = threading.Thread(
        target=disk.note_exception,
        args=("the MLflow store", OperationalError("INSERT", {}, Exception("database or disk is full"))),
    )
    mlflow.start()
    mlflow.join()
    disk.trial_failed(TrialInfo("t1", {}), TrialError(TRACEBACK))
    assert disk.problem is not None and disk.problem.where == "the MLflow store"
    assert not disk.note_exception("elsewhere", ValueError("not the disk"))


def test_where_an_error_out_of_the_run_was_raised(tmp_path: Path) -> None:
    paths = sweep_paths(tmp_path, "s")
    assert (
        where_raised(OSError(errno.ENOSPC, "No space left on device", "/x/results.jsonl"), paths)
        == "/x/results.jsonl"
    )
    try:
        try:
            raise OperationalError("COMMIT", {}, Exception("database or disk is full"))
        except OperationalError as exc:
            raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from exc
    except optuna.exceptions.StorageInternalError as raised:
        assert where_raised(raised, paths) == f"the Optuna study {paths.study_file}"
    assert where_raised(RuntimeError("Tune"), paths) == f"Ray Tune's experiment folder {paths.ray_directory}"


def test_the_paragraph_names_the_path_the_error_the_space_used_and_the_resume_command(tmp_path: Path) -> None:
    disk, _, _ = watched(tmp_path)
    disk.trial_raised(TrialInfo("t1", {}), TrialError(TRACEBACK))
    assert disk.problem is not None
    message = disk_full_message(disk.paths, disk.problem, state_written=True)
    assert message.startswith(
        "Sweep `s` stopped: a disk it writes to is full or cannot be written (OSError: [Errno 28]"
    )
    assert (
        f"The sweep has written 64.0 KiB under {tmp_path / 's'}" in message
    )  # sweep.json's reserve, still held
    assert "Its state is `stopped`" in message and f"`sweep resume s --storage {tmp_path}`" in message
    assert "\n" not in message
    unwritten = disk_full_message(disk.paths, disk.problem, state_written=False)
    assert "could not be updated either, so the sweep reads `crashed`" in unwritten
