"""What a sweep must look like after any number of crashes, stops and resumes.

Shared by the resume tests (in-process) and the kill test (real processes): exactly
``num_samples`` finished Optuna trials with no config twice, exactly one MLflow child run
per trial under one parent, none RUNNING, and each run's steps exactly the iterations
the trial reported, each once.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any


def finished_study_values(storage: Path, name: str) -> dict[str, Any]:
    """Counts of the study's trials by state and its best completed value (no Ray, no MLflow)."""
    import sqlite3

    with sqlite3.connect(f"file:{storage / name / 'optuna.db'}?mode=ro", uri=True) as connection:
        states = Counter(row[0] for row in connection.execute("SELECT state FROM trials"))
        best = connection.execute(
            "SELECT MAX(v.value) FROM trials t JOIN trial_values v ON v.trial_id = t.trial_id "
            "WHERE t.state = 'COMPLETE'"
        ).fetchone()[0]
    return {"states": dict(states), "best": best}


def check_sweep_integrity(storage: Path, name: str, num_samples: int, metric: str) -> dict[str, Any]:
    import optuna
    from mlflow.tracking import MlflowClient

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{storage / name / 'optuna.db'}")
    trials = study.get_trials()
    states = Counter(t.state.name for t in trials)
    assert len(trials) == num_samples and all(t.state.is_finished() for t in trials), states
    configs = Counter(json.dumps(t.params, sort_keys=True) for t in trials)
    assert max(configs.values()) == 1, [c for c, n in configs.items() if n > 1]

    client = MlflowClient(f"sqlite:///{storage / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id], max_results=10_000)
    parents = [r for r in runs if r.data.tags.get("sweep.role") == "parent"]
    children = [r for r in runs if r.data.tags.get("sweep.role") == "trial"]
    assert len(parents) == 1, [p.info.run_id for p in parents]
    assert len(children) == num_samples, Counter(r.data.tags.get("sweep.trial_id") for r in children)
    assert {r.data.tags.get("mlflow.parentRunId") for r in children} == {parents[0].info.run_id}
    assert "RUNNING" not in {r.info.status for r in [*parents, *children]}
    ray_ids = {t.user_attrs["backend_trial_id"] for t in trials}
    assert {r.data.tags["sweep.trial_id"] for r in children} == ray_ids

    journal = _journal(storage / name / "results.jsonl")
    for run in children:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, metric)]
        expected = sorted(
            int(r["iteration"]) for r in journal.get(run.data.tags["sweep.trial_id"], []) if metric in r
        )
        # Each reported iteration exactly once, in order, none missing.
        assert sorted(steps) == expected and len(set(steps)) == len(steps), (
            run.data.tags["sweep.trial_id"],
            steps,
            expected,
        )
    best = max((t.value for t in trials if t.state.name == "COMPLETE"), default=None)
    return {"states": dict(states), "best": best, "children": len(children)}


def _journal(path: Path) -> dict[str, list[dict[str, Any]]]:
    from sweeps.store.journal import read_journal

    journal = read_journal(path)
    for trial_id, results in journal.items():
        iterations = [int(r["iteration"]) for r in results]
        assert iterations == sorted(set(iterations)), (trial_id, iterations)  # nothing delivered twice
    return journal


def finished_trials(database: Path) -> int:
    """Optuna trials finished so far, read without locking the study a driver is writing."""
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as connection:
            return int(
                connection.execute(
                    "SELECT COUNT(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED', 'FAIL')"
                ).fetchone()[0]
            )
    except sqlite3.Error:
        return 0  # not created yet, or mid-write


def start_fake_driver() -> subprocess.Popen[bytes]:
    """A process that `driver_alive` takes for a sweep driver: its command line names `sweep`.

    Returns only once the child has exec'd: until then /proc shows the parent's command
    line (pytest's), and a loaded machine can leave that window open long enough for a
    liveness check to see no driver at all.
    """
    driver = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "sweep"])
    deadline = time.monotonic() + 30
    while b"sweep" not in Path(f"/proc/{driver.pid}/cmdline").read_bytes():
        assert time.monotonic() < deadline, "the fake driver never started"
        time.sleep(0.01)
    return driver
