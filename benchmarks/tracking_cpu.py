"""The driver CPU that recording a sweep in MLflow costs, measured without Ray.

:class:`~sweeps.tracking.callback.MlflowTracker` and its background
:class:`~sweeps.tracking.writer.TrackingWriter` get the events a sweep's driver would
give them: ``--trials`` trials, ``--concurrent`` at a time, each starting, delivering
``--results`` reports in deliveries of ``--per-delivery`` (a worker sends the reports it
held with the one that crossed, :mod:`sweeps.training.batching`), and ending, then the
sweep's totals. Deliveries are ``--pace`` seconds apart, so the writer flushes many times
as in a real sweep rather than once at the end. The store is a fresh embedded SQLite
store (made untimed), as ``sweep run`` uses by default.

Figures: CPU seconds of the whole process (caller and writer thread; the writer runs in
the driver) from the first event until :meth:`MlflowTracker.close` has written
everything, per 1,000 results; the caller's own thread CPU (what the driver's
scheduling loop waits for); and the SQL statements MLflow ran meanwhile, which the
machine's load does not blur. Then every record is checked in MLflow: each report once,
every run ended.

Run: ``python -m benchmarks.tracking_cpu --reps 5`` (``--help`` for the workload's shape).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from benchmarks.harness import python_module, run_process
from sweeps.backend import TrialInfo


def result(trial_id: str, config: dict[str, Any], iteration: int, total: int) -> dict[str, Any]:
    """One report as Ray hands it to the driver: the trainable's metrics and Ray's bookkeeping."""
    return {
        "val_accuracy": 0.5 + iteration / (2 * total),
        "train_loss": 1.0 / iteration,
        "val_loss": 2.0 / iteration,
        "epoch": iteration / 10,
        "samples_seen": iteration * config["batch_size"],
        "iteration": iteration,
        "iterations_per_epoch": 10,
        "total_iterations": total,
        "dataset_size": 1437,
        "diverged": False,
        "node_id": "a" * 56,
        "training_iteration": iteration,
        "time_this_iter_s": 0.01,
        "time_total_s": 1.0,
        "timestamp": 1_700_000_000,
        "done": iteration == total,
        "pid": 4242,
        "trial_id": trial_id,
        "date": "2026-01-01_00-00-00",
        "hostname": "host",
        "node_ip": "127.0.0.1",
        "config": config,
        **{f"config/{k}": v for k, v in config.items()},
        "time_since_restore": 1.0,
        "iterations_since_restore": iteration,
        "checkpoint_dir_name": None,
    }


def drive(
    folder: Path,
    trials: int,
    results: int,
    per_delivery: int,
    concurrent: int,
    pace: float,
    **writer_options: Any,
) -> dict[str, Any]:
    from mlflow.tracking import MlflowClient

    from sweeps.tracking.callback import PARENT, MlflowTracker
    from sweeps.tracking.store_template import create_store_from_template
    from sweeps.tracking.writer import TrackingWriter

    uri = f"sqlite:///{folder / 'mlflow.db'}"
    create_store_from_template(uri)
    client = MlflowClient(uri)
    experiment = client.create_experiment("cpu", artifact_location=(folder / "artifacts").as_uri())
    parent = client.create_run(experiment, run_name="sweep").info.run_id
    infos = [
        TrialInfo(f"{i:05d}", {"batch_size": 32, "learning_rate": 0.001 * (i + 1), "epochs": 2, "width": 16})
        for i in range(trials)
    ]

    statements = _count_sql_statements()
    started_cpu, started_wall = time.process_time(), time.perf_counter()
    writer = TrackingWriter(uri, known_runs={PARENT: parent}, **writer_options).start()
    tracker = MlflowTracker(
        writer,
        experiment,
        sweep_name="cpu",
        metric="val_accuracy",
        mode="max",
        dataset_size=1437,
        drop_last=False,
        milestones=[0.25, 0.75],
        budget_unit="iterations",
        log_model=False,
    )
    caller_cpu = 0.0
    for first in range(0, trials, concurrent):
        group = infos[first : first + concurrent]
        mark = time.thread_time()
        for info in group:
            tracker.trial_started(info)
        caller_cpu += time.thread_time() - mark
        for start in range(1, results + 1, per_delivery):
            for info in group:
                points = [
                    result(info.trial_id, info.config, i, results)
                    for i in range(start, min(start + per_delivery, results + 1))
                ]
                mark = time.thread_time()
                tracker.trial_reported(info, points)
                caller_cpu += time.thread_time() - mark
            time.sleep(pace)
        mark = time.thread_time()
        for info in group:
            tracker.trial_completed(info)
        caller_cpu += time.thread_time() - mark
    summary = SimpleNamespace(
        trials={"completed": trials},
        iterations_used=trials * results,
        iterations_worst_case=trials * results,
        wall_seconds=1.0,
        aborted=False,
        best={
            "trial_id": infos[-1].trial_id,
            "value": 1.0,
            "iterations": results,
            "config": infos[-1].config,
        },
    )
    mark = time.thread_time()
    tracker.finish(summary)
    caller_cpu += time.thread_time() - mark
    lost = tracker.close()
    cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started_wall
    executed = statements[0]

    runs = client.search_runs([experiment], max_results=10_000)
    children = [r for r in runs if r.info.run_id != parent]
    steps = sorted(len(client.get_metric_history(r.info.run_id, "val_accuracy")) for r in children)
    assert lost == 0 and len(children) == trials, (lost, len(children))
    assert steps == [results] * trials, steps
    assert all(r.info.status == "FINISHED" for r in runs), [r.info.status for r in runs]
    return {
        "results": trials * results,
        "sql_statements": executed,
        "process_cpu_s": round(cpu, 3),
        "caller_cpu_s": round(caller_cpu, 3),
        "wall_s": round(wall, 2),
        "process_cpu_s_per_1000_results": round(1000 * cpu / (trials * results), 3),
    }


def _count_sql_statements() -> list[int]:
    """A counter of the SQL statements every engine runs from now on: a CPU figure that
    the machine's load does not blur (the reads and checks below are not counted)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    counter = [0]

    def count(*args: Any) -> None:
        counter[0] += 1

    event.listen(Engine, "before_cursor_execute", count)
    return counter


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.tracking_cpu", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--results", type=int, default=20, help="reports per trial")
    parser.add_argument("--per-delivery", type=int, default=5, help="reports per delivery")
    parser.add_argument("--concurrent", type=int, default=2, help="trials running at once")
    # 40 trials of about 0.6 s, 2 at a time: B2R's 12.9 s of trials once up.
    parser.add_argument("--pace", type=float, default=0.15, help="seconds between deliveries")
    parser.add_argument("--flush-interval", type=float, help="the writer's (default: its own default)")
    parser.add_argument("--reps", type=int, default=1, help="repetitions, each in a fresh process; medians")
    args = parser.parse_args(argv)
    if args.reps > 1:
        shape = [
            "--trials",
            args.trials,
            "--results",
            args.results,
            "--per-delivery",
            args.per_delivery,
            "--concurrent",
            args.concurrent,
            "--pace",
            args.pace,
        ]
        if args.flush_interval is not None:
            shape += ["--flush-interval", args.flush_interval]
        return _repeat(args.reps, [str(a) for a in shape])
    options = {} if args.flush_interval is None else {"flush_interval": args.flush_interval}
    with tempfile.TemporaryDirectory(prefix="sweeps-tracking-cpu-") as folder:
        figures = drive(
            Path(folder), args.trials, args.results, args.per_delivery, args.concurrent, args.pace, **options
        )
    print(json.dumps(figures))
    return 0


def _repeat(reps: int, args: list[str]) -> int:
    runs = [run_process(python_module("benchmarks.tracking_cpu", *args)).last_json() for _ in range(reps)]
    for run in runs:
        print(json.dumps(run))
    print("median", json.dumps({key: statistics.median(run[key] for run in runs) for key in runs[0]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
