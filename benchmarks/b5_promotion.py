"""The measurement behind ``promotion: strict`` as ASHA's default rule at a rung.

``python -m benchmarks.b5_promotion WORKLOAD --seeds N [--out FILE]`` runs B5's in-process
simulator (:mod:`benchmarks.b5_simulation`) on one of B5's workloads (``branin``: Branin,
max_t 100, 30 trials' worth of iterations; ``mlp``: the synthetic MLP, max_t 128, 20 trials'
worth) and prints the median over seeds of the best full-length value at 25 %, 50 % and
100 % of the budget, and the trials run, for:

- ``ray K3`` / ``strict K3``: the default spec (``grace_period: auto``, K = 3) with Ray's
  rule or the strict rule;
- ``ray K4`` / ``strict K4``: the same with K = 4's grace period (2 iterations on both);
- ``Optuna SH``: plain Optuna TPE + ``SuccessiveHalvingPruner(min_resource=2,
  reduction_factor=3)``, the best plain-Optuna contender of B5.

``strict K4`` and ``Optuna SH`` make the same decisions (the strict rule is Optuna's; the
samplers and seeds are the same), so their rows agree to the last digit: a check that the
two are one search, not a measurement.
"""

from __future__ import annotations

import argparse
import json
import statistics
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.b5_quality import FULL_TRIALS, best_within, problem
from benchmarks.b5_simulation import Contender, search

CONTENDERS = {
    "ray K3": Contender("ray K3", promotion="ray"),
    "strict K3": Contender("strict K3", promotion="strict"),
    "ray K4": Contender("ray K4", promotion="ray", grace="auto:4"),
    "strict K4": Contender("strict K4", promotion="strict", grace="auto:4"),
    "Optuna SH": Contender("Optuna SH", stopper="optuna_sh", grace="2"),
}
FRACTIONS = (0.25, 0.5, 1.0)


def _one(job: tuple[str, str, int]) -> dict[str, Any]:
    workload, name, seed = job
    task = problem(workload)
    result = search(task, CONTENDERS[name], seed, FULL_TRIALS[workload] * task.max_t)
    return {"contender": name, "seed": seed, "events": result["events"], "trials": result["trials"]}


def measure(workload: str, seeds: int, processes: int = 2) -> list[dict[str, Any]]:
    """Every contender on every seed, two searches at a time (each search is serial)."""
    with ProcessPoolExecutor(processes) as pool:
        return list(pool.map(_one, [(workload, name, seed) for name in CONTENDERS for seed in range(seeds)]))


def table(workload: str, runs: list[dict[str, Any]]) -> str:
    task = problem(workload)
    budget = FULL_TRIALS[workload] * task.max_t
    worst = float("inf") if task.mode == "min" else 0.0  # a seed with no full-length trial yet
    lines = [
        f"| {task.name} | " + " | ".join(f"{f:.0%}" for f in FRACTIONS) + " | trials |",
        "|---|" + "---|" * (len(FRACTIONS) + 1),
    ]
    for name in CONTENDERS:
        mine = [r for r in runs if r["contender"] == name]
        cells = []
        for fraction in FRACTIONS:
            values = [best_within(r["events"], fraction * budget, task.mode) for r in mine]
            cells.append(f"{statistics.median(worst if v is None else v for v in values):.4f}")
        cells.append(f"{statistics.median(r['trials'] for r in mine):g}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=sorted(FULL_TRIALS))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--out", help="write every seed's curve to this JSON file")
    args = parser.parse_args(argv)
    runs = measure(args.workload, args.seeds)
    print(table(args.workload, runs))
    if args.out:
        Path(args.out).write_text(
            json.dumps({"workload": args.workload, "seeds": args.seeds, "runs": runs}) + "\n"
        )


if __name__ == "__main__":
    main()
