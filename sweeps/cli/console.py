"""The one console every message of the CLI goes through, and the lines a sweep's start prints.

On a terminal, rich wraps each message between words at the terminal's width (80 columns
in a default terminal); a message printed with ``soft_wrap=True`` there would be cut by
the terminal itself, in the middle of a word. In a pipe or a file (a log, ``nohup``, CI)
each message stays one line, for ``grep`` and for the viewer to wrap; rich's default would
break it at 80 columns.

The start of ``sweep run`` speaks at once: the first line (the sweep, its trials, the
storage, where it runs) comes before the heavy imports (torch, Ray, MLflow: 3-16 s on 2
busy cores), then one line per start-up phase as it begins. They are plain lines, flushed
one by one (rich flushes after every print), so a log or a pipe shows them as they happen.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console

from sweeps.backend.resources import local_cpus


def console(stderr: bool = False) -> Console:
    """A console on the current stdout (or stderr): wrapped between words on a terminal,
    one line per message in a pipe or a file. Made per use: ``sys.stdout`` may have been
    redirected since (``--json`` sends everything but the summary to stderr)."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, highlight=False, soft_wrap=not stream_is_terminal(stream))


def warn(message: str) -> None:
    """A warning on stderr, on a line of its own (never after a table's last row)."""
    console(stderr=True).print(f"[bold yellow]warning:[/] {message}")


def where_it_runs(address: str | None) -> str:
    if address == "auto":
        return "the Ray cluster this machine belongs to (--address auto)"
    return f"the Ray cluster at {address}" if address else f"local Ray ({local_cpus()} CPUs)"


class StartLines:
    """Prints the first line of a sweep and then each start-up phase, as it begins.

    ``stderr``: with ``--json`` stdout holds only the summary, so the lines go there.
    """

    def __init__(self, stderr: bool = False) -> None:
        self._stderr = stderr
        self._started = time.monotonic()

    def first(self, name: str, trials: int, storage: str, address: str | None, resumed: bool = False) -> None:
        verb = "resuming with" if resumed else "starting"
        console(self._stderr).print(
            f"[bold]Sweep {name}[/]: {verb} {trials} trials on {where_it_runs(address)}; results in {storage}"
        )

    def phase(self, text: str) -> None:
        console(self._stderr).print(f"  {text} (+{time.monotonic() - self._started:.1f} s)", markup=False)

    def __call__(self, text: str) -> None:
        self.phase(text)


def stream_is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed stream, or one without isatty
        return False
