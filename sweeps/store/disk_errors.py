"""A full, read-only or failing disk under the sweep's own storage, recognised wherever it shows.

The sweep writes its journal, ``sweep.json``, the Optuna study and MLflow's SQLite store
from the driver, and its checkpoints from the trials' workers. When that storage fills
(``ENOSPC``), runs out of quota (``EDQUOT``), turns read-only (``EROFS``) or fails
(``EIO``), the error reaches the sweep in several shapes: an ``OSError`` from our own
writers; SQLAlchemy's ``OperationalError`` wrapping SQLite's "database or disk is full"
(MLflow), or Optuna's ``StorageInternalError`` raised from it; Ray Tune's ``TuneError``
around any of these; and, from a trial's checkpoint write in another process, only the
text of a traceback. Before this module, each surfaced on its own: hundreds of MLflow
retries, a 120 s wait and an Optuna traceback (exit 1, ``sweep.json`` left ``running``).

:func:`disk_error_of` and :func:`disk_error_in_text` recognise every shape at once;
:class:`DiskProblem` is the first one noted, which ends the sweep as a graceful stop does
(:mod:`sweeps.runner.disk_watch`); :class:`SpaceReserve` keeps a little space back so
that the stop itself (the MLflow runs' ends, Ray's last snapshot, ``sweep.json``) can
still be written on a full disk.
"""

from __future__ import annotations

import errno
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sweeps.errors import SweepError

#: The errors that mean the storage itself cannot take the sweep's writes.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})

#: SQLite's result codes for the same conditions (``sqlite3.Error.sqlite_errorcode``'s
#: primary code): SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL.
_SQLITE_CODES = {
    8: "attempt to write a readonly database",
    10: "disk I/O error",
    13: "database or disk is full",
}

#: How each shape reads as text: a traceback from a trial's worker is all the driver sees of
#: a failed checkpoint write. Matched case-insensitively (pyarrow writes "errno 28").
_TEXT_PATTERNS = re.compile(
    r"no space left on device|disk quota exceeded|read-only file system|input/output error"
    r"|database or disk is full|disk i/o error|attempt to write a readonly database"
    r"|errno[ =]?(?:28|122|30|5)\b",
    re.IGNORECASE,
)

#: The files kept back by :class:`SpaceReserve` in the sweep's folder, and their sizes: the
#: stop's room (MLflow's run ends and retried records, Ray's last experiment snapshot),
#: given back at the first disk error; and ``sweep.json``'s own, given back only right
#: before the sweep's state is written, so that nothing else can take it first (measured:
#: MLflow's retries once took the whole of a single reserve, and the state stayed `running`).
RESERVE_FILE = ".space-reserve"
RESERVE_BYTES = 512 * 1024
STATE_RESERVE_FILE = ".space-reserve-state"
STATE_RESERVE_BYTES = 64 * 1024


class StorageFullError(SweepError):
    """The sweep's storage is full, over quota, read-only or failing; the sweep was stopped."""


def disk_error_of(error: BaseException | None) -> str | None:
    """The first line of the disk error inside ``error`` (its causes and wrapped errors
    included), or None when it is not one."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in DISK_ERRNOS:
            where = f": {current.filename}" if current.filename else ""
            return f"[Errno {current.errno}] {current.strerror or os.strerror(current.errno)}{where}"
        code = getattr(current, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF in _SQLITE_CODES:
            return _SQLITE_CODES[code & 0xFF]
        if not isinstance(current, OSError) or current.errno is None:
            found = disk_error_in_text(_own_message(current))
            if found:
                return found
        # SQLAlchemy keeps the DB-API error in `.orig`; Optuna and Tune raise `from` it.
        pending.extend([getattr(current, "orig", None), current.__cause__, current.__context__])
    return None


def disk_error_in_text(text: str) -> str | None:
    """The line of ``text`` (a trial's traceback) that tells of a disk error, or None."""
    for line in reversed(text.splitlines()):
        if _TEXT_PATTERNS.search(line):
            return " ".join(line.split())[:300]
    return None


def _own_message(error: BaseException) -> str:
    # An exception's own message only: the chain is walked separately, and a long message
    # (Tune quotes a whole traceback) is read as text.
    try:
        return str(error)
    except Exception:  # noqa: BLE001 - a broken __str__ says nothing about the disk
        return ""


@dataclass(frozen=True)
class DiskProblem:
    """One disk error, where it was met (a path, or the store it hit) and what it said."""

    where: str
    error: str


class DiskProblems:
    """The first disk error the sweep met, noted from any thread (the MLflow writer's too)."""

    def __init__(self, on_first: Callable[[DiskProblem], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._on_first = on_first
        self.first: DiskProblem | None = None

    def note(self, where: str, error: str) -> bool:
        """Note a disk error; True when it is the first (the one the user is told)."""
        with self._lock:
            if self.first is not None:
                return False
            self.first = DiskProblem(where, error)
        if self._on_first is not None:
            self._on_first(self.first)
        return True

    def note_exception(self, where: str, error: BaseException | None) -> bool:
        """Note ``error`` if it is a disk error (True); False when it is some other error."""
        found = disk_error_of(error)
        if found is None:
            return False
        self.note(where, found)
        return True


def used_bytes(folder: Path) -> int:
    """Bytes the files under ``folder`` take (what the sweep has written), 0 if it is gone."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def free_bytes(folder: Path) -> int | None:
    """Bytes an unprivileged writer may still use under ``folder`` (or its nearest parent)."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        stats = os.statvfs(probe)
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize


def human_bytes(count: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:,.0f} {unit}" if unit == "bytes" else f"{count:,.1f} {unit}"
        count /= 1024
    return f"{count:,.1f} TiB"  # pragma: no cover - the loop returns at GiB


class SpaceReserve:
    """A file of ``size`` bytes in the sweep's folder, given back once the disk fills.

    Without it a full disk leaves no room to record the stop: ``sweep.json``'s atomic
    write needs a new file, MLflow must mark the runs KILLED, and Ray writes its last
    snapshot. The same storage's quota covers it, so it helps with ``EDQUOT`` as well.
    """

    def __init__(self, folder: Path, size: int = RESERVE_BYTES, name: str = RESERVE_FILE) -> None:
        self.path = folder / name
        self.size = size

    def hold(self) -> None:
        """Claim the space (raises OSError when the storage cannot give it)."""
        with open(self.path, "wb") as stream:
            try:
                os.posix_fallocate(stream.fileno(), 0, self.size)
            except OSError as exc:
                if exc.errno in DISK_ERRNOS:
                    raise
                stream.write(b"\0" * self.size)  # a file system without fallocate
            stream.flush()
            os.fsync(stream.fileno())

    def release(self) -> None:
        """Give the space back (idempotent, never raises)."""
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass


def sweep_reserves(folder: Path) -> tuple[SpaceReserve, SpaceReserve]:
    """The sweep's two reserves: (the stop's, ``sweep.json``'s)."""
    return SpaceReserve(folder), SpaceReserve(folder, STATE_RESERVE_BYTES, STATE_RESERVE_FILE)
