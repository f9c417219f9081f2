"""What the Optuna study costs the driver: ask, report and finish of a 40-trial sweep, without Ray.

The searcher's study (:class:`sweeps.search.truthful_study.TruthfulStudy`, with the
digits sweep's spec, ``sweeps/examples/digits_mlp.yaml``: TPE with constant_liar) is
driven in-process the way a 2-worker sweep drives it: 40 trials, 2 running at a time,
asks interleaved with reports, 18 report batches of one value per trial, every third
trial COMPLETE and the others PRUNED. Three storages under the same study:

- **before**: what the driver used until this benchmark was written: an ``RDBStorage`` on
  a fresh SQLite file (WAL), which Optuna wraps in its ``_CachedStorage``, and reports
  written through the ORM in one transaction per batch;
- **ours**: :class:`sweeps.store.study_cache.WriteThroughStorage` on the same kind of file
  (what ``open_truthful_study`` opens);
- **InMemoryStorage**: Optuna's, no file: the floor, what the sampler itself costs.

Each figure is CPU time (``time.process_time``) in the contender's own fresh process;
per call, the median over the calls, then the median over repetitions. The last two
rows time ``open_study_storage`` plus ``create_study`` on a fresh file: first in the
process (as in a sweep's driver, with Optuna's lazy imports), then again on a second
file (the schema alone).

Measured on a 2-core machine shared with other jobs, medians of 5 repetitions
(``python -m benchmarks.study_overhead --reps 5``)::

    figure                                before    ours     InMemoryStorage
    ask ms (median per call)              17.44     2.95     1.66
    report ms (median per call)           0.534     0.092    0.005
    finish ms (median per call)           6.17      0.60     0.11
    SQL statements per ask                41        7        -
    40-trial drive CPU s                  1.31      0.21     0.06
    study CPU s per 1,000 reports         1.92      0.31     0.09
    fresh study file opened s (first)     0.49      0.48     -
    another fresh study file s            0.08      0.08     -

(The "before" contender was checked against the code it replaced: the same drive on
that commit took 1.38–1.59 s, asks 17–22 ms.) The study's share of the driver's budget
of 1.0 s of CPU per 1,000 results fell from 1.9 s to 0.31 s. The schema of a fresh file
takes about 0.08 s; the rest of the first open is imports and Optuna's alembic version
check, which opening an existing file pays too (measured 0.30 s fresh vs 0.23 s for a
copied empty file, each in a new process). A cached empty template, as the MLflow store
has, would save under 0.1 s once per sweep: not done.

Run it with ``python -m benchmarks.study_overhead [--reps N]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    REPO,
    Scenario,
    load_average,
    machine_description,
    python_module,
    render_table,
    run_process,
)

SPEC = REPO / "sweeps" / "examples" / "digits_mlp.yaml"
BEFORE, OURS, MEMORY = "before: Optuna _CachedStorage", "ours: WriteThroughStorage", "InMemoryStorage"
CONTENDERS = {"before": BEFORE, "ours": OURS, "memory": MEMORY}
TRIALS, REPORTS, CONCURRENT, TOTAL_ITERATIONS = 40, 18, 2, 900


def main(argv: list[str] | None = None, reps: int | None = None) -> Scenario:
    """Run every contender ``reps`` times, print the table, return it as a harness Scenario."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.study_overhead", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--reps", type=int, default=3, help="repetitions per contender (default 3)")
    parser.add_argument("--once", choices=sorted(CONTENDERS), help=argparse.SUPPRESS)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.once:
        print(json.dumps(run_once(args.once)))
        sys.exit(0)
    reps = reps or args.reps
    if reps < 1:
        parser.error(f"--reps is {reps}, but must be at least 1")
    scenario = measure(reps)
    print(
        f"\nMachine: {machine_description()}; load average after: {load_average()}. "
        f"Medians of {reps} repetition(s).\n"
    )
    print(render_table([scenario]))
    return scenario


def run(reps: int, workdir: Path) -> Scenario:
    """The harness's entry point (``workdir`` unused: each contender writes in a temporary folder)."""
    return measure(reps)


def measure(reps: int) -> Scenario:
    scenario = Scenario(
        "study",
        f"study overhead: {TRIALS}-trial TPE sweep, {CONCURRENT} at a time, no Ray",
        list(CONTENDERS.values()),
    )
    rows = {
        "ask_ms": scenario.row("ask ms (median per call)"),
        "report_ms": scenario.row("report ms (median per call)", fmt="{:.3f}"),
        "finish_ms": scenario.row("finish ms (median per call)"),
        "statements_per_ask": scenario.row("SQL statements per ask", fmt="{:.0f}"),
        "drive_cpu_s": scenario.row(f"{TRIALS}-trial drive CPU s"),
        "cpu_per_1000_reports_s": scenario.row("study CPU s per 1,000 reports"),
        "create_s": scenario.row("fresh study file opened s (first in process)"),
        "second_create_s": scenario.row("another fresh study file s (imports done)"),
    }
    keys = list(CONTENDERS)
    for rep in range(reps):
        # Each repetition starts with another contender, so drift in the machine's load hits all alike.
        for key in keys[rep % len(keys) :] + keys[: rep % len(keys)]:
            result = run_process(python_module("benchmarks.study_overhead", "--once", key)).last_json()
            for name, row in rows.items():
                if result.get(name) is not None:  # InMemoryStorage has no file and no SQL
                    row.add(CONTENDERS[key], result[name])
            print(
                f"  rep {rep + 1}/{reps} {CONTENDERS[key]}: {result['drive_cpu_s']:.2f} s",
                file=sys.stderr,
                flush=True,
            )
    return scenario


def run_once(contender: str) -> dict[str, Any]:
    """One contender in this process: open the study, drive it, return its figures."""
    import optuna

    from sweeps.search import truthful_study
    from sweeps.search.space import fixed_values, make_sampler, optuna_distributions
    from sweeps.spec.loading import load_spec
    from sweeps.spec.scaling import learning_rate_scale
    from sweeps.store.study import open_study_storage
    from sweeps.store.study_cache import WriteThroughStorage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="sweeps-study-") as folder:
        spec = load_spec(SPEC, [f"storage={folder}"]).spec
        started = time.process_time()
        storage: optuna.storages.BaseStorage
        if contender == "memory":
            storage = optuna.storages.InMemoryStorage()
        else:
            storage = open_study_storage(f"sqlite:///{Path(folder) / 'optuna.db'}")
            if contender == "ours":
                storage = WriteThroughStorage(storage)
            else:  # the report path the driver had, in this process only
                truthful_study.write_intermediate_values = _orm_intermediate_values  # type: ignore[attr-defined]
        study = truthful_study.TruthfulStudy(
            space=optuna_distributions(spec),
            metric=spec.metric,
            mode=spec.mode,
            sampler=make_sampler(spec),
            study_name=spec.name,
            storage=storage,
            budget_unit=spec.budget_unit,
            fixed=fixed_values(spec),
            scale=learning_rate_scale(spec),
        )
        created = time.process_time() - started
        statements = _count_statements(storage)
        started = time.process_time()
        times, asks_statements = drive(study, statements)
        drive_cpu = time.process_time() - started
        started = time.process_time()
        if contender != "memory":  # the schema alone: what a cached empty template would save
            optuna.create_study(storage=open_study_storage(f"sqlite:///{Path(folder) / 'second.db'}"))
        second_created = time.process_time() - started
    reports = len(times["report"])
    return {
        "contender": contender,
        "ask_ms": 1000 * statistics.median(times["ask"]),
        "report_ms": 1000 * statistics.median(times["report"]),
        "finish_ms": 1000 * statistics.median(times["finish"]),
        "statements_per_ask": statistics.median(asks_statements) if contender != "memory" else None,
        "drive_cpu_s": drive_cpu,
        "cpu_per_1000_reports_s": 1000 * drive_cpu / reports,
        "create_s": created if contender != "memory" else None,
        "second_create_s": second_created if contender != "memory" else None,
    }


def drive(study: Any, statements: list[int]) -> tuple[dict[str, list[float]], list[int]]:
    """Drive ``study`` as a 2-worker sweep does; CPU seconds of each call by kind, SQL statements per ask."""
    times: dict[str, list[float]] = {"ask": [], "report": [], "finish": []}
    per_ask: list[int] = []
    running: dict[str, list[int]] = {}  # trial id → [reports delivered, iterations per report]
    started = 0

    def timed(kind: str, call: Any, *args: Any) -> None:
        before = time.process_time()
        call(*args)
        times[kind].append(time.process_time() - before)

    def start() -> None:
        nonlocal started
        trial_id = f"trial_{started:05d}"
        counted = statements[0]
        timed("ask", study.ask, trial_id)
        per_ask.append(statements[0] - counted)
        # Every third trial runs to the end (COMPLETE); ASHA stops the others early (PRUNED).
        running[trial_id] = [0, TOTAL_ITERATIONS // REPORTS if started % 3 == 0 else 10]
        started += 1

    while started < CONCURRENT:
        start()
    while running:
        for trial_id in list(running):
            delivered, every = running[trial_id]
            iteration = (delivered + 1) * every
            point = {
                "iteration": iteration,
                "total_iterations": TOTAL_ITERATIONS,
                "samples_seen": 16 * iteration,
                "val_accuracy": 0.5 + 0.01 * delivered + 0.001 * (started % 7),
            }
            running[trial_id][0] += 1
            if delivered + 1 < REPORTS:
                timed("report", study.report, trial_id, [point])
            else:
                timed("finish", study.finish, trial_id, [point], False)
                del running[trial_id]
                if started < TRIALS:
                    start()
    return times, per_ask


def _count_statements(storage: Any) -> list[int]:
    """A counter (one-item list) of the SQL statements the storage's engine runs."""
    counter = [0]
    engine = getattr(getattr(storage, "backend", storage), "engine", None)
    if engine is not None:
        from sqlalchemy import event

        def count(*args: Any) -> None:
            counter[0] += 1

        event.listen(engine, "before_cursor_execute", count)
    return counter


def _orm_intermediate_values(storage: Any, trial_id: int, values: dict[int, float]) -> None:
    """How the driver wrote a batch of reports before ``insert_intermediate_values``: through
    Optuna's ORM, one transaction that looks the trial up, checks it, then adds the rows."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(storage.scoped_session, True) as session:
        row = models.TrialModel.find_or_raise_by_id(trial_id, session)
        storage.check_trial_is_updatable(trial_id, row.state)
        rows = []
        for step, value in values.items():
            stored, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(value)
            rows.append(
                models.TrialIntermediateValueModel(
                    trial_id=trial_id, step=step, intermediate_value=stored, intermediate_value_type=kind
                )
            )
        session.add_all(rows)


if __name__ == "__main__":
    main()
