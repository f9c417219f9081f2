"""The one console every message of the CLI goes through, and the lines a sweep's start prints.

Rich wraps text at word boundaries to the console's width: the terminal's, or 80 columns
when the output is a pipe or a file (or ``COLUMNS``). A message printed with
``soft_wrap=True`` is not wrapped by rich but by the terminal, which cuts words in two at
the last column, so no message here uses it (``sweep status --wide`` sets a width instead).

The start of ``sweep run`` speaks at once: the first line (the sweep, its trials, the
storage, where it runs) comes before the heavy imports (torch, Ray, MLflow: 3-16 s on 2
busy cores), then one line per start-up phase as it begins. They are plain lines, flushed
one by one, so a log or a pipe shows them as they happen too.
"""

from __future__ import annotations

import sys
import time
from functools import cache
from typing import Any

from rich.console import Console

from sweeps.backend.resources import local_cpus


@cache
def _console(stderr: bool) -> Console:
    return Console(stderr=stderr, highlight=False)


def console(stderr: bool = False) -> Console:
    """The CLI's console on stdout (or stderr): word-wrapped at the terminal's width."""
    return _console(stderr)


def warn(message: str) -> None:
    """A warning on stderr, on its own line, wrapped between words."""
    console(stderr=True).print(f"[bold yellow]warning:[/] {message}")


def where_it_runs(address: str | None) -> str:
    return f"Ray cluster at {address}" if address else f"local Ray, {local_cpus()} CPUs"


class StartLines:
    """Prints the first line of a sweep and then each start-up phase, as it begins.

    ``stderr``: with ``--json`` stdout holds only the summary, so the lines go to stderr.
    Each line is flushed as it is written (rich flushes after every print).
    """

    def __init__(self, stderr: bool = False) -> None:
        self._console = console(stderr)
        self._started = time.monotonic()

    def first(self, name: str, trials: int, storage: str, address: str | None, resumed: bool = False) -> None:
        verb = "resuming" if resumed else "starting"
        self._console.print(f"[bold]Sweep {name}[/]: {verb} {trials} trials on {where_it_runs(address)}; "
                            f"results in {storage}", markup=True)

    def phase(self, text: str) -> None:
        self._console.print(f"  {text} (+{time.monotonic() - self._started:.1f} s)", markup=False)

    def __call__(self, text: str) -> None:
        self.phase(text)


def print_lines(*lines: Any, stderr: bool = False) -> None:
    """Each of ``lines`` through the console (markup allowed), wrapped between words."""
    for line in lines:
        console(stderr).print(line)


def stream_is_terminal(stream: Any = None) -> bool:
    try:
        return bool((stream or sys.stdout).isatty())
    except (AttributeError, ValueError):
        return False
