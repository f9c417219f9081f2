"""``python -m benchmarks [B1 B2 ...] [--reps N]``: run scenarios, print one table.

Each scenario lives in its own module and returns a :class:`benchmarks.harness.Scenario`;
this module picks them, runs them in order in one invocation and prints the medians side
by side, with the machine and its load average so a reader can judge the noise.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import Scenario, load_average, machine_description, render_table, to_json, write_json

SCENARIOS = {
    "B0": "benchmarks.b0_startup",
    "B1": "benchmarks.b1_overhead",
    "B2": "benchmarks.b2_compute",
    "B2R": "benchmarks.b2_reporting",
    "B3": "benchmarks.b3_loop",
    "B4": "benchmarks.b4_tracking",
    "B5": "benchmarks.b5_quality",
    "B6": "benchmarks.b6_distributed",
    "B7": "benchmarks.b7_pareto",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument(
        "scenarios",
        nargs="*",
        metavar="ID",
        help=f"scenarios to run (default: all of {', '.join(SCENARIOS)})",
    )
    parser.add_argument(
        "--reps", type=int, default=3, help="repetitions per contender; medians are reported (default 3)"
    )
    parser.add_argument(
        "--json", dest="json_path", help="also write every repetition's values to this JSON file"
    )
    parser.add_argument(
        "--workdir", help="where contenders write their sweeps (default: a fresh temporary folder)"
    )
    args = parser.parse_args(argv)
    chosen = [s.upper() for s in args.scenarios] or list(SCENARIOS)
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    if args.reps < 1:
        parser.error(f"--reps is {args.reps}, but must be at least 1")

    print(f"machine: {machine_description()}; load average before: {load_average()}", file=sys.stderr)
    scenarios: list[Scenario] = []
    with tempfile.TemporaryDirectory(prefix="sweeps-bench-", dir=args.workdir) as workdir:
        for scenario_id in chosen:
            module = importlib.import_module(SCENARIOS[scenario_id])
            folder = Path(workdir) / scenario_id
            folder.mkdir()
            started = time.perf_counter()
            print(f"running {scenario_id} ({args.reps} rep(s)) ...", file=sys.stderr, flush=True)
            scenarios.append(module.run(args.reps, folder))
            print(
                f"  {scenario_id} took {time.perf_counter() - started:.0f} s; load average {load_average()}",
                file=sys.stderr,
                flush=True,
            )
            # Each scenario's rows as soon as they exist: a long run shows progress, and a
            # run cut short keeps what it measured.
            print(render_table(scenarios[-1:]), file=sys.stderr, flush=True)
    print(
        f"\nMachine: {machine_description()}. Load average (1/5/15 min) after the run: {load_average()}. "
        f"Medians of {args.reps} repetition(s).\n"
    )
    print(render_table(scenarios))
    notes = [note for scenario in scenarios for note in scenario.notes]
    if notes:
        print()
        for note in notes:
            print(f"- {note}")
    if args.json_path:
        write_json(args.json_path, {"reps": args.reps, "load_average": load_average(), **to_json(scenarios)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
