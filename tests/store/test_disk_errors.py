"""Recognising a full, read-only or failing disk in every shape it reaches the sweep
(sweeps/store/disk_errors.py).

The errors are real where the machine can make them without privileges: ``/dev/full``
answers every write with ENOSPC, and SQLite's ``max_page_count`` makes a database full.
Wrappers are raised as their libraries raise them (``raise ... from``).
"""

from __future__ import annotations

import errno
import sqlite3
import threading
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from sqlalchemy.exc import OperationalError

from sweeps.store.disk_errors import (
    DiskProblems,
    SpaceReserve,
    disk_error_in_text,
    disk_error_of,
    free_bytes,
    human_bytes,
    used_bytes,
)
from sweeps.store.journal import ResultJournal, read_journal

DEV_FULL = Path("/dev/full")
needs_dev_full = pytest.mark.skipif(not DEV_FULL.exists(), reason="no /dev/full on this system")


def enospc_from_dev_full() -> OSError:
    try:
        with open(DEV_FULL, "wb") as stream:
            stream.write(b"x")
    except OSError as exc:
        return exc
    raise AssertionError("/dev/full took a write")


def sqlite_full(tmp_path: Path) -> sqlite3.OperationalError:
    connection = sqlite3.connect(tmp_path / "small.db")
    connection.execute("PRAGMA max_page_count = 2")
    try:
        connection.execute("CREATE TABLE t (x BLOB)")
        for _ in range(10):
            connection.execute("INSERT INTO t VALUES (?)", (b"\0" * 4096,))
        connection.commit()
    except sqlite3.OperationalError as exc:
        return exc
    finally:
        connection.close()
    raise AssertionError("the database took every row")


def sqlalchemy_full(tmp_path: Path) -> OperationalError:
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("PRAGMA max_page_count = 2")
            connection.exec_driver_sql("CREATE TABLE t (x BLOB)")
            for _ in range(10):
                connection.exec_driver_sql("INSERT INTO t VALUES (?)", (b"\0" * 4096,))
    except OperationalError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError("the database took every row")


@needs_dev_full
def test_an_oserror_from_a_full_device_is_recognised() -> None:
    assert disk_error_of(enospc_from_dev_full()) == "[Errno 28] No space left on device"


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO])
def test_each_disk_errno_is_recognised(code: int) -> None:
    assert (
        disk_error_of(OSError(code, "what the kernel says", "/storage/x"))
        == f"[Errno {code}] what the kernel says: /storage/x"
    )


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOENT, "No such file or directory"),
        OSError(errno.EACCES, "Permission denied"),
        ValueError("no space left in the batch"),
        RuntimeError("CUDA out of memory"),
        None,
    ],
    ids=["ENOENT", "EACCES", "ValueError", "RuntimeError", "None"],
)
def test_other_errors_are_not_disk_errors(error: BaseException | None) -> None:
    assert disk_error_of(error) is None


def test_sqlite_full_is_recognised_bare_and_wrapped_by_sqlalchemy(tmp_path: Path) -> None:
    assert disk_error_of(sqlite_full(tmp_path)) == "database or disk is full"
    wrapped = sqlalchemy_full(tmp_path)
    assert "database or disk is full" in (disk_error_of(wrapped) or "")


def test_optunas_storage_error_raised_from_a_full_database_is_recognised(tmp_path: Path) -> None:
    cause = sqlalchemy_full(tmp_path)
    try:
        try:
            raise cause
        except OperationalError as exc:  # as optuna.storages._rdb does
            raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from exc
    except optuna.exceptions.StorageInternalError as raised:
        assert "database or disk is full" in (disk_error_of(raised) or "")


@needs_dev_full
def test_a_disk_error_inside_another_exception_is_found_through_its_causes() -> None:
    cause = enospc_from_dev_full()
    try:
        try:
            raise cause
        except OSError:
            raise RuntimeError("The Ray Tune run failed.")  # noqa: B904 - the implicit context only, as Tune's
    except RuntimeError as outer:
        assert (disk_error_of(outer) or "").startswith("[Errno 28]")


@pytest.mark.parametrize(
    "line",
    [
        "OSError: [Errno 28] Error writing bytes to file. Detail:  No space left on device",
        "OSError: [Errno 122] Disk quota exceeded: '/scratch/sweeps/tiny/ray'",
        "OSError: [Errno 30] Read-only file system: '/results/tiny'",
        "sqlite3.OperationalError: disk I/O error",
    ],
)
def test_a_trials_traceback_text_is_recognised_by_its_line(line: str) -> None:
    text = f'Traceback (most recent call last):\n  File "trial.py", line 3, in save\n{line}\n'
    assert disk_error_in_text(text) == " ".join(line.split())


def test_a_traceback_of_another_error_is_not_a_disk_error() -> None:
    assert (
        disk_error_in_text("Traceback ...\nRuntimeError: CUDA out of memory. Tried to allocate 2 GiB\n")
        is None
    )


def test_only_the_first_problem_is_kept_and_reported_once_from_any_thread() -> None:
    told = []
    problems = DiskProblems(on_first=told.append)
    threads = [
        threading.Thread(target=problems.note, args=(f"place {i}", "[Errno 28] full")) for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(told) == 1 and problems.first == told[0]
    assert not problems.note_exception("elsewhere", ValueError("not a disk error"))
    assert problems.first == told[0]


def test_the_reserve_claims_real_space_and_gives_it_back(tmp_path: Path) -> None:
    reserve = SpaceReserve(tmp_path, size=256 * 1024)
    reserve.hold()
    assert reserve.path.stat().st_size == 256 * 1024
    assert used_bytes(tmp_path) == 256 * 1024
    reserve.release()
    reserve.release()  # idempotent
    assert not reserve.path.exists() and used_bytes(tmp_path) == 0
    assert free_bytes(tmp_path / "not" / "yet") == free_bytes(tmp_path)


def test_sizes_read_in_binary_units() -> None:
    assert [human_bytes(n) for n in (512, 2048, 5 * 1024**2, 3 * 1024**3)] == [
        "512 bytes",
        "2.0 KiB",
        "5.0 MiB",
        "3.0 GiB",
    ]


@needs_dev_full
def test_a_journal_that_cannot_write_raises_and_drops_its_stream(tmp_path: Path) -> None:
    journal = ResultJournal(DEV_FULL)
    with pytest.raises(OSError) as info:
        journal.append("t1", {"iteration": 1, "val_accuracy": 0.5})
    assert info.value.errno == errno.ENOSPC
    journal.close()  # nothing buffered is left to fail at close


def test_a_journal_line_torn_by_a_full_disk_is_not_glued_to_the_next(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text('{"trial_id": "t1", "result": {"iteration": 1}}\n{"trial_id": "t1", "resu')
    journal = ResultJournal(path)
    journal.append("t1", {"iteration": 2, "val_accuracy": 0.7})
    journal.close()
    assert read_journal(path) == {"t1": [{"iteration": 1}, {"iteration": 2, "val_accuracy": 0.7}]}
