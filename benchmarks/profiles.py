"""Profiles behind the README's account of the targets B1 and B2 miss (see benchmarks/SCALING.md).

``python -m benchmarks.profiles timeline`` runs B2's sweep once in this process and prints
when the driver reached each stage and when each worker trained (from the trials' own
timing records): where the wall time of a compute-bound sweep goes.

``python -m benchmarks.profiles memory`` runs B1's 1,000 near-no-op trials under
tracemalloc and prints what the driver allocated between the 200th and the 1,000th
finished trial, by file and by allocation site: what makes its memory grow per trial.

For a flame graph of the driver, run a spec under py-spy or pyinstrument (the ``profile``
extra installs both), e.g. ``pyinstrument -m sweeps run SPEC --json``.
"""

from __future__ import annotations

import argparse
import functools
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml


def timeline(seed: int = 0) -> None:
    import ray
    from ray.tune import Callback

    from benchmarks.b2_compute import project_spec
    from benchmarks.workloads import read_compute_seconds
    from sweeps.ray_backend import RayBackend
    from sweeps.runner import runner
    from sweeps.spec.loading import load_spec

    began = time.time()
    marks: list[tuple[float, str]] = []

    def mark(name: str) -> None:
        marks.append((time.time() - began, name))

    def timed(function: Callable[..., Any], name: str) -> Callable[..., Any]:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            mark(f"{name} begins")
            try:
                return function(*args, **kwargs)
            finally:
                mark(f"{name} ends")

        return wrapper

    from sweeps.ray_backend import backend

    backend.start_ray = timed(backend.start_ray, "Ray start-up")  # type: ignore[assignment]
    backend.make_tuner = timed(backend.make_tuner, "Tuner set-up")  # type: ignore[assignment]
    backend.ray.shutdown = timed(ray.shutdown, "ray.shutdown")

    class Marks(Callback):
        starts = results = 0

        def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            Marks.starts += 1
            if Marks.starts <= 2:
                mark(f"trial {Marks.starts} started (its actor is up)")

        def on_trial_result(
            self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
        ) -> None:
            Marks.results += 1
            if Marks.results == 1:
                mark("first result reaches the driver")

        def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
            mark("last trial ended")

    work = Path(tempfile.mkdtemp(prefix="sweeps-timeline-"))
    timing = work / "timing"
    timing.mkdir()
    spec_path = work / "b2.yaml"
    spec_path.write_text(yaml.safe_dump(project_spec(seed, work / "sweeps", timing)))
    summary = runner.run_sweep(
        load_spec(spec_path, []),
        runner.RunOptions(RayBackend(callbacks=[Marks()]), live=False, overwrite=True),
    )
    mark("summary written")
    for at, name in marks:
        print(f"{at:7.2f} s  {name}")
    by_worker: dict[int, list[dict[str, Any]]] = {}
    for record in sorted(read_compute_seconds(str(timing)), key=lambda r: r["started"]):
        by_worker.setdefault(record["pid"], []).append(record)
    for pid, records in by_worker.items():
        first, last = records[0]["started"] - began, max(r.get("ended", r["at"]) for r in records) - began
        compute = sum(r["compute_s"] for r in records)
        blocked = sum(r["blocked_s"] for r in records)
        reports = sum(r["reports"] for r in records)
        print(
            f"worker {pid}: {len(records)} trials, trains from {first:.2f} s to {last:.2f} s: "
            f"compute {compute:.1f} s, blocked in report {blocked:.1f} s "
            f"({1000 * blocked / max(reports, 1):.0f} ms × {reports}), "
            f"checkpoints {sum(r['checkpoint_s'] for r in records):.1f} s"
        )
    print(
        f"wall {summary.wall_seconds:.2f} s (to the summary, before ray.shutdown), of which Ray start-up "
        f"{summary.start_seconds:.2f} s"
    )


def memory(small: int = 200, large: int = 1000) -> None:
    import tracemalloc

    from ray.tune import Callback

    from benchmarks.b1_overhead import project_spec
    from sweeps.ray_backend import RayBackend
    from sweeps.runner.runner import RunOptions, run_sweep
    from sweeps.spec.loading import load_spec

    tracemalloc.start(8)
    snapshots: dict[int, Any] = {}

    class Snapshots(Callback):
        finished = 0

        def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
            Snapshots.finished += 1
            if Snapshots.finished in (small, large):
                snapshots[Snapshots.finished] = tracemalloc.take_snapshot()

    work = Path(tempfile.mkdtemp(prefix="sweeps-memory-"))
    spec_path = work / "b1.yaml"
    spec_path.write_text(yaml.safe_dump(project_spec(large, work / "sweeps")))
    run_sweep(
        load_spec(spec_path, []), RunOptions(RayBackend(callbacks=[Snapshots()]), live=False, overwrite=True)
    )
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
    before, after = (snapshots[n].filter_traces(ignore) for n in (small, large))
    per_trial = 1024 * (large - small)
    growth = sum(s.size_diff for s in after.compare_to(before, "filename"))
    print(
        f"driver allocations, trial {small} → {large}: {growth / 2**20:.1f} MiB, "
        f"{growth / per_trial:.1f} KiB per trial"
    )
    for stat in after.compare_to(before, "filename")[:10]:
        print(
            f"  {stat.size_diff / per_trial:6.1f} KiB/trial  "
            f"{stat.traceback[0].filename.split('site-packages/')[-1]}"
        )
    print("largest allocation sites:")
    for stat in after.compare_to(before, "traceback")[:6]:
        frame = stat.traceback[-1]
        print(
            f"  {stat.size_diff / per_trial:6.1f} KiB/trial  "
            f"{frame.filename.split('site-packages/')[-1]}:{frame.lineno}"
        )


def main() -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.profiles", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("which", choices=["timeline", "memory"])
    arguments = parser.parse_args()
    {"timeline": timeline, "memory": memory}[arguments.which]()


if __name__ == "__main__":
    main()
