"""Where a sweep's CPU goes: every process of its tree, sampled while it runs (B0, B2R).

:class:`ProcessTreeSampler` polls a root process and all of its descendants with psutil
every ``interval`` seconds and keeps each process's last CPU times, so a process that ends
between two samples loses at most one interval of CPU (a short-lived helper that starts
and ends between two samples is missed altogether: the figures are a lower bound for
them). Each process is put in one class by its command line: the driver (the root), Ray's
daemons by name, Ray's worker processes (``ray::`` titles, ``default_worker.py``), or
"other". :func:`cpu_accounting` turns that into the table issue 21 asks for: the trials'
own threads (each trial's thread CPU, which the trainable measures itself with
``time.thread_time``), the driver, the workers' other threads, Ray's daemons, and idle.

Example::

    sampler = ProcessTreeSampler([process.pid], driver=process.pid).start()
    process.wait()
    usage = sampler.stop()
    print(cpu_accounting(usage, wall_s=..., trial_thread_s=..., cores=os.cpu_count()))
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import psutil

RAY_BINARIES = {"gcs_server": "GCS", "raylet": "raylet"}
#: Ray's Python daemons: a fragment of the command line or of the process title (the agents
#: retitle themselves ``ray::DashboardAgent``), tried in order.
RAY_DAEMONS = (
    ("DashboardAgent", "dashboard agent"),
    ("dashboard/agent.py", "dashboard agent"),
    ("RuntimeEnvAgent", "runtime-env agent"),
    ("runtime_env/agent", "runtime-env agent"),
    ("log_monitor.py", "log monitor"),
    ("monitor.py", "autoscaler monitor"),
    ("dashboard/dashboard.py", "dashboard"),
)


@dataclass
class TreeUsage:
    """CPU seconds (user + system) per class of process, at the last sample of each process."""

    by_class: dict[str, float] = field(default_factory=dict)
    processes: int = 0

    def total(self) -> float:
        return sum(self.by_class.values())

    def daemons(self) -> float:
        return sum(v for k, v in self.by_class.items() if k not in ("driver", "workers", "other"))


def classify(pid: int, driver: int | None, cmdline: list[str]) -> str:
    if pid == driver:
        return "driver"
    executable = cmdline[0].rsplit("/", 1)[-1] if cmdline else ""
    if executable in RAY_BINARIES:  # their arguments name the other daemons' scripts
        return RAY_BINARIES[executable]
    text = " ".join(cmdline)
    # A worker names the raylet among its arguments: recognised before the daemons.
    if "default_worker.py" in text or (text.startswith("ray::") and "Agent" not in text):
        return "workers"
    for fragment, name in RAY_DAEMONS:
        if fragment in text:
            return name
    return "other"


class ProcessTreeSampler:
    """Samples the CPU times of ``roots`` and all their descendants on a background thread.

    ``driver`` is the pid of the sweep's driver (one of the roots), or None for a peer
    whose root processes run their trials themselves."""

    def __init__(self, roots: list[int], driver: int | None = None, interval: float = 0.25) -> None:
        self.roots = list(roots)
        self.driver = driver
        self.interval = interval
        self._last: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="process-tree-sampler", daemon=True)

    def start(self) -> ProcessTreeSampler:
        self._thread.start()
        return self

    def stop(self) -> TreeUsage:
        self._stop.set()
        self._thread.join()
        usage = TreeUsage(processes=len(self._last))
        for kind, seconds in self._last.values():
            usage.by_class[kind] = usage.by_class.get(kind, 0.0) + seconds
        return usage

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        processes: list[psutil.Process] = []
        for pid in self.roots:
            try:
                root = psutil.Process(pid)
                processes += [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
        for process in processes:
            try:
                with process.oneshot():
                    times = process.cpu_times()
                    known = self._last.get(process.pid)
                    kind = known[0] if known else classify(process.pid, self.driver, process.cmdline())
            except psutil.Error:
                continue
            self._last[process.pid] = (kind, times.user + times.system)


def cpu_accounting(usage: TreeUsage, *, wall_s: float, trial_thread_s: float, cores: int) -> dict[str, float]:
    """CPU seconds by where they went; ``idle`` is the machine's capacity no process used."""
    capacity = wall_s * cores
    # A trial's thread runs inside a Ray worker process (sweeps) or inside a peer's own
    # process: what those processes spent besides the trials is "other threads".
    workers = usage.by_class.get("workers", 0.0) + usage.by_class.get("other", 0.0)
    other_threads = max(workers - trial_thread_s, 0.0)
    driver = usage.by_class.get("driver", 0.0)
    used = trial_thread_s + other_threads + driver + usage.daemons()
    return {
        "trials' threads": trial_thread_s,
        "driver": driver,
        "workers' other threads": other_threads,
        "Ray's daemons": usage.daemons(),
        "idle": max(capacity - used, 0.0),
        "capacity": capacity,
    }
