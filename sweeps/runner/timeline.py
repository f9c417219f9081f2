"""When the driver reached each stage of a sweep: the start-up steps, the trials, the record.

The start-up steps overlap (Ray starts on its own thread while the driver loads the
trainable and imports Ray Tune), so each is kept as an interval, in seconds since the
driver *process* started: ``--json`` prints them as ``timeline``, and ``make bench`` (B0)
shows them beside the process's own end, to tell which step the wall waits for.

Example::

    timeline = Timeline()
    with timeline.step("spec and trainable"):
        plan_spec(loaded)
    timeline.to_json()   # {"spec and trainable": [0.61, 0.63]}
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager


def _process_started_at() -> float:
    """The Unix time this process started (Linux: /proc; elsewhere: now, a lower bound)."""
    try:
        with open(f"/proc/{os.getpid()}/stat") as stream:
            # Field 22, after the command in parentheses (which may hold spaces): clock ticks since boot.
            ticks = int(stream.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as stream:
            uptime = float(stream.read().split()[0])
        return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.time()


class Timeline:
    """Named intervals, in seconds since the process started."""

    def __init__(self) -> None:
        self._origin = _process_started_at()
        self.steps: dict[str, list[float]] = {}

    def now(self) -> float:
        return time.time() - self._origin

    def begin(self, name: str) -> None:
        self.steps[name] = [self.now(), self.now()]

    def end(self, name: str) -> None:
        self.steps.setdefault(name, [self.now(), self.now()])[1] = self.now()

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.begin(name)
        try:
            yield
        finally:
            self.end(name)

    def to_json(self) -> dict[str, list[float]]:
        return {name: [round(a, 2), round(b, 2)] for name, (a, b) in self.steps.items()}
