"""A trial's own output: what its trainable printed, kept in the trial's folder.

Ray keeps a worker's stdout and stderr in its session logs under the system's temp folder
(and the sweep's embedded Ray does not forward them to the driver), where no user finds
them. So while a trial runs, everything written to ``sys.stdout`` and ``sys.stderr`` in
its process (``print``, ``logging`` handlers on stderr, warnings, tracebacks) also goes,
line-buffered, to ``stdout.txt`` and ``stderr.txt`` in the trial's folder
(``<storage>/<name>/ray/<trial folder>/``): readable with ``sweep logs NAME TRIAL`` while
the trial runs, and attached to its MLflow run when it ends. A distributed trial's workers
other than rank 0 write ``stdout.rank<R>.txt`` and ``stderr.rank<R>.txt``.

Ray Tune's own ``RunConfig(log_to_file=...)`` was not used: it writes to the trial's
*working* directory, under ``/tmp/ray/session_*/artifacts/``, which reaches the sweep's
folder only through Ray's artifact sync, and it sees nothing of Ray Train's workers.
Output written to the file descriptors directly (a C extension, a subprocess) bypasses
Python's streams and stays in Ray's logs.
"""

from __future__ import annotations

import contextlib
import sys
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
    found = [p for p in sorted(folder.glob("std*.txt")) if p.stat().st_size > 0]
    return sorted(found, key=lambda p: (p.name.count("."), p.name))


class _Tee:
    """Writes to the stream it replaces and to a file; anything else is the stream's."""

    def __init__(self, stream: Any, file: IO[str]) -> None:
        self._stream, self._file = stream, file

    def write(self, text: str) -> int:
        with contextlib.suppress(ValueError, OSError):  # a file closed or a disk full: the stream goes on
            self._file.write(text)
        return int(self._stream.write(text))

    def flush(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            self._file.flush()
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding...
        return getattr(self._stream, name)


@contextlib.contextmanager
def captured_output(folder: Path | str | None, rank: int = 0) -> Iterator[None]:
    """Copy this process's ``sys.stdout`` and ``sys.stderr`` to the trial's files while inside.

    The files are appended to: a retried or resumed trial's output follows its earlier
    attempts'. ``folder`` None (no trial folder known): nothing is captured.
    """
    with contextlib.ExitStack() as files:
        try:
            if folder is None:
                raise FileNotFoundError
            Path(folder).mkdir(parents=True, exist_ok=True)
            out, err = (files.enter_context(open(output_file(Path(folder), s, rank), "a", buffering=1,
                                                 encoding="utf-8")) for s in STREAMS)
        except OSError:  # no folder, or a read-only or full storage: that must not fail the trial
            out = err = None
        if out is None or err is None:
            yield
            return
        # Swapped by hand, not with contextlib.redirect_stdout: the trainable runs on a thread
        # of Ray's, and the swap must hold for the whole process while the trial runs.
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _Tee(saved[0], out), _Tee(saved[1], err)
        try:
            yield
        finally:
            sys.stdout, sys.stderr = saved


def last_lines(path: Path, count: int) -> list[str]:
    """The last ``count`` lines of ``path`` (read as UTF-8, undecodable bytes replaced)."""
    with open(path, encoding="utf-8", errors="replace") as stream:
        return [line.rstrip("\n") for line in deque(stream, maxlen=count)]
