"""A trial's own output: what its trainable printed, kept in the trial's folder.

Ray keeps a worker's stdout and stderr in its session logs under the system's temp folder
(and the sweep's embedded Ray does not forward them to the driver), where no user finds
them. So while a trial runs, everything its thread writes to ``sys.stdout`` and
``sys.stderr`` (``print``, ``logging``'s handlers on stderr, warnings, tracebacks) also goes,
line-buffered, to ``stdout.txt`` and ``stderr.txt`` in the trial's folder
(``<storage>/<name>/trials/<trial id>/``): readable with ``sweep logs NAME TRIAL`` while
the trial runs, and attached to its MLflow run when it ends. A distributed trial's workers
other than rank 0 write ``stdout.rank<R>.txt`` and ``stderr.rank<R>.txt``.

Ray Tune's own ``RunConfig(log_to_file=...)`` was not used: it writes to the trial's
*working* directory, under ``/tmp/ray/session_*/artifacts/``, which reaches the sweep's
folder only through Ray's artifact sync, and it sees nothing of Ray Train's workers.
Not captured: output written to the file descriptors directly (a C extension, a
subprocess), threads the trainable starts, and a ``logging.StreamHandler`` made before
the trial started (it holds the stream it was given); those stay in Ray's logs.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

STREAMS = ("stdout", "stderr")


def output_file(folder: Path, stream: str, rank: int = 0) -> Path:
    """The file of ``stream`` (stdout or stderr) of rank ``rank`` in a trial's folder."""
    return folder / (f"{stream}.txt" if rank == 0 else f"{stream}.rank{rank}.txt")


def output_files(folder: Path) -> list[Path]:
    """The output files a trial left in ``folder``, rank 0's first, empty ones left out."""

    def order(path: Path) -> tuple[int, str, int]:  # stdout.txt, stderr.txt, stdout.rank1.txt, ...
        stream, _, rank = path.stem.partition(".rank")
        return (int(rank) if rank.isdigit() else 0, "0" if stream == "stdout" else stream, 0)

    return sorted((p for p in folder.glob("std*.txt") if p.stat().st_size > 0), key=order)


class _Router:
    """Stands for ``sys.stdout`` (or ``sys.stderr``) in a trial's process: writes to the stream
    it replaced and, from a thread that runs a trial, to that trial's file too.

    By thread, not by swapping ``sys.stdout`` per trial: trials may share a worker process
    (the embedded Ray places several trial actors' threads in one preloaded worker), and a
    swap would send one trial's lines to another's file.
    """

    def __init__(self, stream: Any, index: int) -> None:
        self._stream, self._index = stream, index

    def write(self, text: str) -> int:
        files = _capturing.get(threading.get_ident())
        if files is not None:
            with contextlib.suppress(ValueError, OSError):  # a closed file or a full disk: the stream goes on
                files[self._index].write(text)
        written = self._stream.write(text)  # Ray's worker streams return None
        return len(text) if written is None else int(written)

    def flush(self) -> None:
        files = _capturing.get(threading.get_ident())
        if files is not None:
            with contextlib.suppress(ValueError, OSError):
                files[self._index].flush()
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding...
        return getattr(self._stream, name)


#: Thread id → the (stdout, stderr) files of the trial that thread runs.
_capturing: dict[int, tuple[IO[str], IO[str]]] = {}
_install_lock = threading.Lock()


def _install_routers() -> None:
    with _install_lock:
        if not isinstance(sys.stdout, _Router):
            sys.stdout = _Router(sys.stdout, 0)
        if not isinstance(sys.stderr, _Router):
            sys.stderr = _Router(sys.stderr, 1)


@contextlib.contextmanager
def captured_output(folder: Path | str | None, rank: int = 0) -> Iterator[None]:
    """Copy what this thread writes to ``sys.stdout`` and ``sys.stderr`` to the trial's files.

    The files are appended to: a retried or resumed trial's output follows its earlier
    attempts'. ``folder`` None (no trial folder known): nothing is captured. Threads the
    trainable starts itself are not followed; their output stays in Ray's logs.
    """
    with contextlib.ExitStack() as files:
        opened: list[IO[str]] = []
        try:
            if folder is not None:
                Path(folder).mkdir(parents=True, exist_ok=True)
                opened = [
                    files.enter_context(
                        open(output_file(Path(folder), s, rank), "a", buffering=1, encoding="utf-8")
                    )
                    for s in STREAMS
                ]
        except OSError:  # a read-only or full storage must not fail the trial
            opened = []
        if not opened:
            yield
            return
        _install_routers()
        thread = threading.get_ident()
        _capturing[thread] = (opened[0], opened[1])
        try:
            yield
        finally:
            _capturing.pop(thread, None)


def last_lines(path: Path, count: int) -> list[str]:
    """The last ``count`` lines of ``path`` (read as UTF-8, undecodable bytes replaced)."""
    with open(path, encoding="utf-8", errors="replace") as stream:
        return [line.rstrip("\n") for line in deque(stream, maxlen=count)]
