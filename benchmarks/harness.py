"""What every scenario shares: repetitions and medians, contender subprocesses, RSS, the table.

A scenario module exposes ``run(reps, workdir) -> Scenario``. Its rows hold one value per
contender and repetition; the table shows medians and the ratios the targets are about.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.process_cpu import ProcessTreeSampler, TreeUsage

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


@dataclass
class Row:
    """One figure of a scenario: a value per contender per repetition, and maybe a target."""

    figure: str
    values: dict[str, list[float | None]] = field(default_factory=dict)
    fmt: str = "{:.2f}"
    ratio: str = ""  # filled by Scenario.check
    target: str = ""
    met: bool | None = None

    def add(self, contender: str, value: float | None) -> None:
        self.values.setdefault(contender, []).append(value)

    def median(self, contender: str) -> float | None:
        return median(self.values.get(contender, []))


@dataclass
class Scenario:
    id: str
    title: str
    contenders: list[str]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def row(self, figure: str, fmt: str = "{:.2f}") -> Row:
        for row in self.rows:
            if row.figure == figure:
                return row
        row = Row(figure, fmt=fmt)
        self.rows.append(row)
        return row

    def check(self, figure: str, ratio_text: str, ratio: float | None, target: str, met: bool | None) -> None:
        """Attach a ratio and a target (with whether it was met) to the row ``figure``."""
        row = self.row(figure)
        if ratio is None:
            row.ratio = "" if "{" in ratio_text else ratio_text  # nothing to compare
        else:
            row.ratio = ratio_text.format(ratio)
        row.target = target
        row.met = met


def median(values: Sequence[float | None]) -> float | None:
    """Median of the repetitions; a missing value (None: never reached) counts as +infinity."""
    if not values:
        return None
    finite = sorted(float("inf") if v is None else float(v) for v in values)
    result = statistics.median(finite)
    return None if result == float("inf") else result


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


@dataclass
class ProcessResult:
    wall_s: float
    peak_rss_mb: float
    returncode: int
    stdout: str
    stderr: str
    #: CPU seconds of the process's whole tree by kind (``run_process(sample_cpu=True)``).
    cpu: TreeUsage | None = None

    def last_json(self) -> dict[str, Any]:
        for line in reversed(self.stdout.strip().splitlines()):
            if line.startswith("{"):
                return json.loads(line)
        raise RuntimeError(f"no JSON result in output; stderr ends with:\n{self.stderr[-3000:]}")


def run_process(
    args: list[str], *, env: dict[str, str] | None = None, timeout: float = 1800, sample_cpu: bool = False
) -> ProcessResult:
    """Run a contender in its own process, polling its resident memory (VmRSS) as it runs.

    Each contender gets a fresh interpreter, so imports, memory and Ray start-up are
    measured from the same starting point and nothing leaks between contenders.
    """
    full_env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(REPO), **(env or {})}
    started = time.perf_counter()
    process = subprocess.Popen(
        args, cwd=REPO, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peak = [0.0]
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb(process.pid))
            done.wait(0.1)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    sampler = ProcessTreeSampler([process.pid], driver=process.pid).start() if sample_cpu else None
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
    done.set()
    poller.join()
    wall = time.perf_counter() - started
    usage = sampler.stop() if sampler is not None else None
    if process.returncode != 0:
        raise RuntimeError(
            f"`{' '.join(args)}` exited with {process.returncode}; stderr ends with:\n{stderr[-3000:]}"
        )
    return ProcessResult(wall, peak[0], process.returncode, stdout, stderr, usage)


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process in MiB (0 once it has gone)."""
    try:
        with open(f"/proc/{pid}/status") as stream:
            for line in stream:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


def python_module(module: str, *args: str) -> list[str]:
    return [PYTHON, "-m", module, *args]


def sweep_command(*args: str) -> list[str]:
    """The `sweep` console script of this interpreter's environment."""
    return [str(Path(PYTHON).with_name("sweep")), *args]


def write_json(path: str | os.PathLike[str], data: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(data))


def machine_description() -> str:
    cpus = os.cpu_count()
    memory = ""
    try:
        with open("/proc/meminfo") as stream:
            kib = int(stream.readline().split()[1])
        memory = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    model = ""
    try:
        with open("/proc/cpuinfo") as stream:
            for line in stream:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip() + ", "
                    break
    except OSError:
        pass
    return f"{model}{cpus} cores{memory}, Python {platform.python_version()}, {platform.system()}"


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
        return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"
    except OSError:
        return "unknown"


def render_table(scenarios: list[Scenario]) -> str:
    """One Markdown table: a header row per scenario naming its contenders, then its figures."""
    width = max((len(s.contenders) for s in scenarios), default=1)
    header = ["id", "figure", *[f"contender {i + 1}" for i in range(width)], "ratio", "target", "met"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for scenario in scenarios:
        names = [f"**{c}**" for c in scenario.contenders] + [""] * (width - len(scenario.contenders))
        lines.append(f"| {scenario.id} | *{scenario.title}* | " + " | ".join(names) + " | | | |")
        for row in scenario.rows:
            cells = []
            for contender in scenario.contenders:
                value = row.median(contender)
                if contender not in row.values:
                    cells.append("")
                elif value is None:
                    cells.append("not reached")
                else:
                    cells.append(row.fmt.format(value))
            cells += [""] * (width - len(scenario.contenders))
            met = {True: "yes", False: "**no**", None: ""}[row.met]
            lines.append(
                f"| {scenario.id} | {row.figure} | "
                + " | ".join(cells)
                + f" | {row.ratio} | {row.target} | {met} |"
            )
    return "\n".join(lines)


def to_json(scenarios: list[Scenario]) -> dict[str, Any]:
    return {
        "machine": machine_description(),
        "scenarios": [
            {
                "id": s.id,
                "title": s.title,
                "contenders": s.contenders,
                "notes": s.notes,
                "rows": [
                    {
                        "figure": r.figure,
                        "values": r.values,
                        "medians": {c: r.median(c) for c in r.values},
                        "ratio": r.ratio,
                        "target": r.target,
                        "met": r.met,
                    }
                    for r in s.rows
                ],
            }
            for s in scenarios
        ],
    }


def repeat(reps: int, once: Callable[[int], None]) -> None:
    """Call ``once(rep)`` ``reps`` times; contenders alternate inside ``once`` so drift hits all alike."""
    for rep in range(reps):
        once(rep)
