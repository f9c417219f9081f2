"""The measurement behind ASHA's defaults: K of ``grace_period: auto``, brackets, the sampler.

``python -m benchmarks.b5_grace [--seeds 10] [--out docs/b5_grace.json]`` runs B5's
in-process simulator (:mod:`benchmarks.b5_simulation`: our ASHA rungs and samplers) on the
multi-fidelity Branin function with trials from 50 to 100,000 iterations, each contender
with a budget of 30 trials of ``max_t`` iterations, and prints the median over seeds of
the best full-length value found (Branin's minimum is 0.397887; lower is better) at 50 %
and 100 % of the budget. The contenders: ``grace_period: auto`` with K = 1 … 5 (r =
max_t / 3^K), the old default ``grace_period: 20``, and K = 3 with 3 brackets or with the
multi-fidelity sampler.

Two ways of mapping iterations to fidelity: ``linear`` (fidelity i / max_t, the issue's
external benchmark; every K-rule is then the same search at any max_t) and ``log``
(log(1 + i) / log(1 + max_t): a curve that learns most in its first iterations, as long
trials do, so that the same fraction of a longer trial says more).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.b5_simulation import FULL_TRIALS, BraninProblem, Contender, Problem, search

PROBLEMS = [
    BraninProblem(50),
    BraninProblem(1_000),
    BraninProblem(50, "log"),
    BraninProblem(1_000, "log"),
    BraninProblem(100_000, "log"),
]
CONTENDERS = [Contender(f"K={k}", grace=f"auto:{k}") for k in (1, 2, 3, 4, 5)] + [
    Contender("grace 20", grace="20"),
    Contender("K=3, 3 brackets", brackets=3),
    Contender("K=3, multi-fidelity", sampler="multi_fidelity"),
]
FRACTIONS = (0.5, 1.0)


def best_within(events: list[list[float]], budget: float, mode: str) -> float:
    values = [v for spent, v in events if spent <= budget]
    if mode == "max":
        return max(values, default=0.0)
    return min(values, default=float("inf"))


def measure(seeds: int, problems: list[Problem], contenders: list[Contender]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for problem in problems:
        started = time.perf_counter()
        budget = FULL_TRIALS * problem.max_t
        row = results[problem.name] = {}
        row["mode"] = problem.mode
        for contender in contenders:
            runs = [search(problem, contender, seed) for seed in range(seeds)]
            row[contender.name] = {
                f"{f:.0%}": [best_within(r["events"], f * budget, problem.mode) for r in runs]
                for f in FRACTIONS
            }
        print(f"{problem.name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return results


def table(results: dict[str, Any], fraction: str, contenders: list[Contender]) -> str:
    names = [c.name for c in contenders]
    lines = [
        f"| problem (median best at {fraction} of the budget) | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for problem, row in results.items():
        medians = {name: statistics.median(row[name][fraction]) for name in names}
        best = (max if row["mode"] == "max" else min)(medians.values())
        cells = [f"**{m:.4f}**" if m == best else f"{m:.4f}" for m in medians.values()]
        lines.append(f"| {problem} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--out", help="write every seed's values to this JSON file")
    parser.add_argument(
        "--mlp", action="store_true", help="B5's synthetic MLP (max_t 128) instead of Branin; K >= 2"
    )
    args = parser.parse_args(argv)
    problems, contenders = PROBLEMS, CONTENDERS
    if args.mlp:
        from benchmarks.b5_mlp import MLPProblem

        problems, contenders = [MLPProblem()], CONTENDERS[1:]  # K = 1 lost everywhere on Branin
    results = measure(args.seeds, problems, contenders)
    for fraction in FRACTIONS:
        print(table(results, f"{fraction:.0%}", contenders) + "\n")
    if args.out:
        Path(args.out).write_text(json.dumps({"seeds": args.seeds, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
