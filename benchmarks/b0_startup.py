"""B0: what a sweep costs around its trials, start to exit (issue 21).

The trivial sweep: 2 trials of a trainable whose module imports torch, as every real one
does (:mod:`benchmarks.trivial_trainable`), reporting once, ``scheduler: none``, default
tracking (MLflow in SQLite), run as a user runs it (``sweep run SPEC --json`` in a fresh
process), against a process that only imports what any such tool imports
(``python -c "import torch, optuna, mlflow"``). The contenders alternate, repetition by
repetition, so drift hits both alike. Target: the sweep within 2.0x the bare imports.

Also printed, from the run of the median sweep: its timeline (``--json``'s ``timeline``:
each start-up step as an interval since the process started, overlapping where they
run in parallel), when the summary line reached the benchmark and when the process
ended, and the CPU seconds of every process of the sweep's tree by kind
(:mod:`benchmarks.process_cpu`).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from typing_extensions import Self

from benchmarks.harness import PYTHON, REPO, Scenario, ratio, sweep_command
from benchmarks.process_cpu import ProcessTreeSampler

SWEEP, BARE = "sweeps (`sweep run`, 2 trivial trials)", "bare imports (torch, optuna, mlflow)"
WARM = "sweeps on a warm local Ray (`ray start --head`, `--address`)"
TARGET = 2.0


def spec(storage: Path) -> dict[str, Any]:
    return {
        "name": "b0-trivial",
        "trainable": "benchmarks.trivial_trainable:trivial",
        "metric": "score",
        "mode": "max",
        "num_samples": 2,
        "seed": 0,
        "search_space": {
            "batch_size": 10,
            "epochs": 1,
            "learning_rate": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
        },
        "sampler": {"type": "random"},
        "scheduler": {"type": "none"},
        "storage": str(storage),
    }


class WarmHead:
    """``ray start --head --block`` on loopback, with its own token and temp dir, for the warm contender."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.token = root / "auth_token"
        self.token.write_text(secrets.token_hex(32))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.env = {
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(self.token),
            "RAY_USAGE_STATS_ENABLED": "0",
        }
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        log = self.root / "head.log"
        ray = str(Path(PYTHON).with_name("ray"))
        with log.open("wb") as stream:
            self.process = subprocess.Popen(
                [
                    ray,
                    "start",
                    "--head",
                    "--block",
                    f"--port={self.port}",
                    "--num-cpus=2",
                    "--num-gpus=0",
                    "--include-dashboard=false",
                    "--node-ip-address=127.0.0.1",
                    "--disable-usage-stats",
                    f"--temp-dir={self.root / 'ray'}",
                ],
                stdout=stream,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                start_new_session=True,
            )
        deadline = time.monotonic() + 90
        while "Ray runtime started." not in log.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"B0: `ray start --head` failed: {log.read_text(errors='replace')[-2000:]}"
                )
            time.sleep(0.2)
        return self

    def __exit__(self, *exc: object) -> None:
        # Everything the head started: its process group (a benchmark never runs `ray stop`).
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def run_sweep_once(workdir: Path, warm: WarmHead | None = None) -> dict[str, Any]:
    """One ``sweep run`` in a fresh process: wall, when its summary came, its timeline and CPU."""
    path = workdir / ("b0-warm.yaml" if warm else "b0.yaml")
    path.write_text(yaml.safe_dump(spec(workdir / "sweeps")))
    env = {"RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(REPO), **(warm.env if warm else {})}
    address = ["--address", f"127.0.0.1:{warm.port}"] if warm else []
    started = time.perf_counter()
    process = subprocess.Popen(
        sweep_command("run", str(path), "--json", "--overwrite", *address),
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sampler = ProcessTreeSampler([process.pid], driver=process.pid, interval=0.1).start()
    assert process.stdout is not None
    line = process.stdout.readline()
    summary_at = time.perf_counter() - started
    _, stderr = process.communicate(timeout=600)
    wall = time.perf_counter() - started
    usage = sampler.stop()
    if process.returncode != 0 or not line.startswith("{"):
        raise RuntimeError(f"B0: `sweep run` exited {process.returncode}: {stderr[-3000:]}")
    summary = json.loads(line)
    if sum(summary["trials"].values()) != 2:
        raise RuntimeError(f"B0: the sweep did not finish its 2 trials: {summary}")
    return {
        "wall_s": wall,
        "summary_at_s": summary_at,
        "timeline": summary["timeline"],
        "cpu": dict(usage.by_class),
        "cpu_total": usage.total(),
    }


def run_bare_once() -> float:
    started = time.perf_counter()
    subprocess.run([PYTHON, "-c", "import torch, optuna, mlflow"], check=True, cwd=REPO)
    return time.perf_counter() - started


def run(reps: int, workdir: Path) -> Scenario:
    scenario = Scenario("B0", "fixed cost: a trivial 2-trial sweep against bare imports", [SWEEP, BARE, WARM])
    sweeps: list[dict[str, Any]] = []
    for rep in range(reps):
        folder = workdir / f"rep{rep}"
        folder.mkdir()
        sweeps.append(run_sweep_once(folder))
        scenario.row("end-to-end wall s (process)").add(SWEEP, sweeps[-1]["wall_s"])
        scenario.row("end-to-end wall s (process)").add(BARE, run_bare_once())
        scenario.row("summary printed at s").add(SWEEP, sweeps[-1]["summary_at_s"])
        scenario.row("CPU s, all processes of the sweep").add(SWEEP, sweeps[-1]["cpu_total"])
    # The warm contender after the others: its head's idle processes must not weigh on them.
    with WarmHead(Path(tempfile.mkdtemp(prefix="swb0-", dir="/tmp"))) as warm:
        for rep in range(reps):
            folder = workdir / f"warm{rep}"
            folder.mkdir()
            measured = run_sweep_once(folder, warm)
            scenario.row("end-to-end wall s (process)").add(WARM, measured["wall_s"])
            scenario.row("summary printed at s").add(WARM, measured["summary_at_s"])
    wall = scenario.row("end-to-end wall s (process)")
    times = ratio(wall.median(SWEEP), wall.median(BARE))
    scenario.check(
        wall.figure,
        "sweep/bare {:.2f}×" + (f", warm/bare {ratio(wall.median(WARM), wall.median(BARE)) or 0:.2f}×"),
        times,
        f"≤ {TARGET:.1f}×",
        None if times is None else times <= TARGET,
    )
    typical = sorted(sweeps, key=lambda s: s["wall_s"])[len(sweeps) // 2]
    steps = "; ".join(f"{name} {a:.2f}→{b:.2f}" for name, (a, b) in typical["timeline"].items())
    scenario.notes.append(
        f"B0 timeline of the median sweep (s since its process started): {steps}; summary line read at "
        f"{typical['summary_at_s']:.2f}; process ended at {typical['wall_s']:.2f}."
    )
    cpu = ", ".join(
        f"{kind} {seconds:.2f}" for kind, seconds in sorted(typical["cpu"].items(), key=lambda kv: -kv[1])
    )
    scenario.notes.append(f"B0 CPU seconds of the median sweep's processes (sampled every 0.1 s): {cpu}.")
    spread = [round(s["wall_s"], 2) for s in sweeps]
    scenario.notes.append(
        f"B0 sweep walls of every repetition: {spread} (median {statistics.median(spread):.2f} s)."
    )
    return scenario
