"""What creating a new sweep's MLflow store costs: MLflow's migrations against a cached template.

Each repetition is a fresh interpreter that goes from nothing (``import mlflow`` included)
to a first ``MlflowClient(uri).search_experiments()`` on a ``sqlite:///`` path that does
not exist yet, in one of two ways:

- **MLflow migrates**: MLflow creates the store, running every schema migration;
- **template copy**: :func:`sweeps.tracking.store_template.create_store_from_template`
  first copies the cached empty store there (the cache was filled beforehand, untimed).

Contenders alternate within each repetition. Figures are medians: the process's CPU
seconds (all threads, interpreter start-up included), its wall seconds, and the CPU
seconds of the store part alone (after importing mlflow and its SQLAlchemy store module,
which every opening of a store needs).

Run: ``python -m benchmarks.store_creation [--reps 5]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks.harness import PYTHON, load_average, machine_description, run_process

CHILD = """
import json, sys, time
wall = time.perf_counter()
import mlflow
import mlflow.store.tracking.sqlalchemy_store  # both ways need it: not the store's own cost
from mlflow.tracking import MlflowClient
imported = time.process_time()
uri = sys.argv[1]
if sys.argv[2] == "template":
    from sweeps.tracking.store_template import create_store_from_template
    assert create_store_from_template(uri)
MlflowClient(uri).search_experiments()
print(json.dumps({"cpu": time.process_time(), "wall": time.perf_counter() - wall,
                  "store_cpu": time.process_time() - imported}))
"""
CONTENDERS = {"mlflow": "MLflow migrates", "template": "template copy"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.store_creation", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"machine: {machine_description()}; load average before: {load_average()}", file=sys.stderr)
    figures: dict[str, dict[str, list[float]]] = {name: {} for name in CONTENDERS}
    with tempfile.TemporaryDirectory(prefix="sweeps-store-bench-") as folder:
        env = {"XDG_CACHE_HOME": str(Path(folder) / "cache")}
        # Fill the template cache once, untimed: the state of every sweep after the first.
        run_process([PYTHON, "-c", CHILD, f"sqlite:///{folder}/warm-up.db", "template"], env=env)
        for rep in range(args.reps):
            for name in CONTENDERS:
                uri = f"sqlite:///{folder}/{name}-{rep}.db"
                result = run_process([PYTHON, "-c", CHILD, uri, name], env=env)
                values = result.last_json()
                for figure, value in values.items():
                    figures[name].setdefault(figure, []).append(value)
    print(f"{'median of ' + str(args.reps):<18}{'process CPU s':>15}{'wall s':>10}{'store CPU s':>13}")
    for name, label in CONTENDERS.items():
        medians = {figure: statistics.median(values) for figure, values in figures[name].items()}
        print(f"{label:<18}{medians['cpu']:>15.2f}{medians['wall']:>10.2f}{medians['store_cpu']:>13.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
