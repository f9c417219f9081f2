"""B5: search quality for the same budget, on workloads where configs differ widely and
learning curves rank them early.

Workloads (each run by :mod:`benchmarks.b5_simulation`, in process, one trial at a time):

- **Branin, max_t 100** (:mod:`benchmarks.b5_functions`): the multi-fidelity Branin
  function, iteration i = fidelity i / 100, minimised (optimum 0.397887); the budget is
  30 trials of 100 iterations (3,000 iterations), as in the issue's external benchmark;
  ``SEEDS_FUNCTION`` seeds. The short-trial workload: ``grace_period: 20`` is a fifth of it.
- **synthetic MLP, max_t 128** (:mod:`benchmarks.b5_mlp`): learning rate over five decades,
  width and weight decay searched, validation accuracy maximised; the budget is 20 trials of
  128 iterations; ``SEEDS_MLP`` seeds.

Contenders, each given the same budget in iterations (the sum over its trials of the
iterations each ran):

- **default**: the default spec: ASHA with ``grace_period: auto`` (max_t / 3^3), one
  bracket, η = 3, the default ``promotion`` rule, TPE with the sweep's constant liar;
- **default, promotion: …**: the default spec with the other promotion rule (``ray`` while
  ``strict`` is the default);
- **grace 20**: the default spec with the old default ``grace_period: 20``;
- **ASHA, tuned grace**: ASHA+TPE with grace period 2 (``TUNED_GRACE``: K = 4, the best
  K of ``python -m benchmarks.b5_grace`` on Branin);
- **brackets**: the default with ``brackets: 3``;
- **multi-fidelity**: the default with ``sampler: {type: multi_fidelity}``;
- **Optuna TPE + SH**: plain Optuna, ``SuccessiveHalvingPruner(min_resource=2,
  reduction_factor=3)`` (the tuned grace as its min_resource);
- **Optuna TPE + Hyperband**: ``HyperbandPruner(min_resource=1, max_resource=max_t,
  reduction_factor=3)`` (Optuna's defaults, with max_t given);
- **random**: random search, every trial to its end (run to twice the budget, so the
  budget it needs to reach the target can be measured past its own budget).

A contender's value at a fraction of the budget is the best final value among its trials
that ran all ``max_t`` iterations within that much budget (a trial stopped early has no
final value to offer). The target of a workload is random search's median best value at
100 % of the budget: the figure is the iterations each contender needs to reach it.

The Branin function also goes through the real orchestrator: ``SWEEP_SEEDS`` seeds of the
default spec, ``sweep run`` in a subprocess (Ray, ASHA, two trials at a time), stopped by
``limits.max_iterations`` at the same budget; their best values are reported beside the
simulated default's. ``docs/b5_quality.json`` keeps every seed's curves and
``docs/b5_quality.png`` plots the medians.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.b5_functions import BRANIN_BOUNDS
from benchmarks.b5_simulation import BraninProblem, Contender, Problem, search
from benchmarks.harness import REPO, Scenario, python_module, ratio, run_process, write_json
from sweeps.spec.models import AshaSpec

SEEDS_FUNCTION = 15
SEEDS_MLP = 10
SWEEP_SEEDS = 2
FRACTIONS = (0.25, 0.5, 1.0)
#: Full-length trials each contender's budget buys, per workload.
FULL_TRIALS = {"branin": 30, "mlp": 20}
#: A tuned grace period (iterations) per workload: r = max_t / 3^4 rounded up, K = 4 being the
#: best K at 50 % of the budget over Branin's max_t from 50 to 100,000 in
#: `python -m benchmarks.b5_grace` (K = 5 ties or wins at 100 %, but gives a first rung at
#: iteration 1 on a short trial). Optuna's SH pruner gets it as min_resource.
TUNED_GRACE = {"branin": "2", "mlp": "2"}
PLOT = REPO / "docs" / "b5_quality.png"

#: The promotion rule the default spec does not use (`scheduler.promotion`), measured beside it.
OTHER_RULE = "ray" if AshaSpec.model_fields["promotion"].default == "strict" else "strict"
DEFAULT, GRACE_20, TUNED, BRACKETS, MULTI_FIDELITY = (
    "default",
    "default, grace 20",
    "ASHA, tuned grace",
    "brackets: 3",
    "multi-fidelity",
)
OTHER_PROMOTION = f"default, promotion: {OTHER_RULE}"
OPTUNA_SH, OPTUNA_HB, RANDOM = "Optuna TPE + SH", "Optuna TPE + Hyperband", "random"
CONTENDERS = [
    DEFAULT,
    OTHER_PROMOTION,
    GRACE_20,
    TUNED,
    BRACKETS,
    MULTI_FIDELITY,
    OPTUNA_SH,
    OPTUNA_HB,
    RANDOM,
]
OPTUNA_CONTENDERS = (OPTUNA_SH, OPTUNA_HB)
SWEEP_RUN = "default, `sweep run`"


def contender(name: str, workload: str) -> Contender:
    tuned = TUNED_GRACE[workload]
    return {
        DEFAULT: Contender(DEFAULT),
        OTHER_PROMOTION: Contender(OTHER_PROMOTION, promotion=OTHER_RULE),
        GRACE_20: Contender(GRACE_20, grace="20"),
        TUNED: Contender(TUNED, grace=tuned),
        BRACKETS: Contender(BRACKETS, brackets=3),
        MULTI_FIDELITY: Contender(MULTI_FIDELITY, sampler="multi_fidelity"),
        OPTUNA_SH: Contender(OPTUNA_SH, stopper="optuna_sh", grace=tuned),
        OPTUNA_HB: Contender(OPTUNA_HB, stopper="optuna_hb"),
        RANDOM: Contender(RANDOM, sampler="random", stopper="none"),
    }[name]


def problem(workload: str) -> Problem:
    if workload == "branin":
        return BraninProblem(100)
    from benchmarks.b5_mlp import MLPProblem

    return MLPProblem()


def best_within(events: list[list[float]], budget: float, mode: str) -> float | None:
    values = [v for spent, v in events if spent <= budget and math.isfinite(v)]
    if not values:
        return None
    return min(values) if mode == "min" else max(values)


def budget_to(events: list[list[float]], target: float, mode: str) -> float | None:
    """The iterations spent when a trial first reached ``target`` (None: never)."""
    return next((spent for spent, v in events if (v <= target if mode == "min" else v >= target)), None)


def _search_all(workload: str, name: str, seeds: int) -> list[dict[str, Any]]:
    task = problem(workload)
    budget = FULL_TRIALS[workload] * task.max_t
    started = time.perf_counter()
    # Random search runs past its budget, so its budget to the target is measured.
    runs = [
        search(task, contender(name, workload), seed, budget * (2 if name == RANDOM else 1))
        for seed in range(seeds)
    ]
    print(f"B5 {task.name}: {name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return [{"events": r["events"], "trials": r["trials"]} for r in runs]


def run_workloads(seeds: dict[str, int], processes: int = 2) -> dict[str, dict[str, Any]]:
    """Every contender on every workload, on ``processes`` processes (one search each at a time:
    each search is serial, so the 2 cores B5 targets run two at once)."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(processes) as pool:
        futures = {
            (w, name): pool.submit(_search_all, w, name, seeds[w]) for w in seeds for name in CONTENDERS
        }
        measured: dict[str, dict[str, Any]] = {}
        for workload in seeds:
            task = problem(workload)
            measured[workload] = {
                "name": task.name,
                "mode": task.mode,
                "budget": FULL_TRIALS[workload] * task.max_t,
                "max_t": task.max_t,
                "contenders": {name: futures[workload, name].result() for name in CONTENDERS},
            }
    return measured


def sweep_runs(seeds: int, storage: Path) -> list[dict[str, Any]]:
    """The default spec on Branin (max_t 100) through `sweep run`, at the same budget as B5's."""
    import optuna

    from sweeps.store.state import sweep_paths

    task = BraninProblem(100)
    budget = FULL_TRIALS["branin"] * task.max_t
    runs = []
    for seed in range(seeds):
        name = f"b5-branin-{seed}"
        spec = {
            "name": name,
            "trainable": "benchmarks.b5_functions:branin_trainable",
            "trainable_args": {"max_t": task.max_t},
            "metric": "value",
            "mode": "min",
            "seed": seed,
            "storage": str(storage),
            "num_samples": 1000,
            "tracking": {"enabled": False},
            "search_space": {
                **{k: {"type": "float", "low": lo, "high": hi} for k, (lo, hi) in BRANIN_BOUNDS.items()},
                "batch_size": 1,
                "epochs": 1,
                "learning_rate": 1.0,
            },  # unused: every spec has one
            "limits": {"max_iterations": budget},
        }
        path = storage / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(spec))
        started = time.perf_counter()
        run_process([*python_module("sweeps", "run", str(path), "--overwrite")], timeout=900)
        wall = time.perf_counter() - started
        study = optuna.load_study(study_name=name, storage=sweep_paths(storage, name).optuna_url)
        finished = sorted(
            (t for t in study.trials if t.state.is_finished() and t.intermediate_values),
            key=lambda t: t.datetime_complete or t.datetime_start,
        )
        spent, events = 0, []
        for t in finished:
            spent += max(t.intermediate_values)
            if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None:
                events.append([spent, round(float(t.value), 6)])
        runs.append({"events": events, "trials": len(finished), "wall_s": round(wall, 1)})
        print(f"B5 sweep run, seed {seed}: {len(finished)} trials, {wall:.0f} s", file=sys.stderr, flush=True)
    return runs


def summarise(workloads: dict[str, dict[str, Any]], sweeps: list[dict[str, Any]] | None = None) -> Scenario:
    """The B5 table from every seed's curves (no search: unit-testable)."""
    scenario = Scenario(
        "B5", "search quality for the same budget in iterations (median over seeds)", CONTENDERS
    )
    quartiles = [
        "B5 medians with their interquartile range [Q1–Q3] over seeds:",
        "",
        "| workload, figure | " + " | ".join(CONTENDERS) + " |",
        "|---|" + "---|" * len(CONTENDERS),
    ]
    for workload, measured in workloads.items():
        mode, budget, runs = measured["mode"], measured["budget"], measured["contenders"]
        label = measured["name"]
        better = "lower" if mode == "min" else "higher"
        random_finals = [best_within(r["events"], budget, mode) for r in runs[RANDOM]]
        target = statistics.median(v for v in random_finals if v is not None)
        for fraction in FRACTIONS:
            figure = f"{label}: best at {fraction:.0%} of the budget ({better} is better)"
            row = scenario.row(figure, "{:.4f}")
            for name in CONTENDERS:
                for r in runs[name]:
                    row.add(name, best_within(r["events"], fraction * budget, mode))
            quartiles.append(_quartile_line(figure, row.values, mode, "{:.4f}"))
        to_target = f"{label}: iterations to reach {target:.4f} (random's median at 100 %)"
        row = scenario.row(to_target, "{:,.0f}")
        for name in CONTENDERS:
            for r in runs[name]:
                row.add(name, budget_to(r["events"], target, mode))
        quartiles.append(_quartile_line(to_target, row.values, "min", "{:,.0f}"))
        trials = scenario.row(f"{label}: trials run", "{:.0f}")
        for name in CONTENDERS:
            for r in runs[name]:
                trials.add(name, r["trials"])
        _checks(scenario, label, mode, to_target)
        if workload == "branin" and sweeps:
            finals = [best_within(r["events"], budget, mode) for r in sweeps]
            at_full_budget = f"{label}: best at 100% of the budget ({better} is better)"
            scenario.notes.append(
                f"B5 {label} through `sweep run` (the default spec, Ray, 2 trials at a time, "
                f"`limits.max_iterations: {budget}`), {len(sweeps)} seeds: best values "
                f"{', '.join('none' if v is None else f'{v:.4f}' for v in finals)} "
                f"({', '.join(str(r['trials']) for r in sweeps)} trials; "
                f"{', '.join(str(r['wall_s']) for r in sweeps)} s); the simulated default's median is "
                f"{_fmt(scenario.row(at_full_budget).median(DEFAULT))}."
            )
    scenario.notes.insert(0, "\n".join(quartiles))
    return scenario


def _checks(scenario: Scenario, label: str, mode: str, to_target: str) -> None:
    better = "lower" if mode == "min" else "higher"
    sign = 1.0 if mode == "max" else -1.0
    for fraction in (0.5, 1.0):
        figure = f"{label}: best at {fraction:.0%} of the budget ({better} is better)"
        row = scenario.row(figure)
        default = row.median(DEFAULT)
        best_name = max(OPTUNA_CONTENDERS, key=lambda n: sign * (row.median(n) or -sign * math.inf))
        peer = row.median(best_name)
        met = None if default is None or peer is None else sign * (default - peer) >= 0
        scenario.check(
            figure,
            f"default − {best_name}: {{:+.4f}}",
            None if met is None else default - peer,  # type: ignore[operator]
            "default ≥ best plain Optuna",
            met,
        )
    row = scenario.row(to_target)
    default, random_search = row.median(DEFAULT), row.median(RANDOM)
    share = ratio(default, random_search)
    scenario.check(
        to_target,
        "default: {:.2f}× random's",
        share,
        "default ≤ ½ of random",
        None if random_search is None else default is not None and share is not None and share <= 0.5,
    )
    if label.startswith("Branin"):
        full = scenario.row(f"{label}: best at 100% of the budget ({better} is better)")
        new, old = full.median(DEFAULT), full.median(GRACE_20)
        scenario.row(f"{label}: default (auto grace) against grace 20, at 100 %")  # a row for the check alone
        scenario.check(
            f"{label}: default (auto grace) against grace 20, at 100 %",
            "auto − grace 20: {:+.4f}",
            None if new is None or old is None else new - old,
            "auto grace better than grace 20",
            None if new is None or old is None else sign * (new - old) > 0,
        )


def _fmt(value: float | None, fmt: str = "{:.4f}") -> str:
    return "none" if value is None or not math.isfinite(value) else fmt.format(value)


def _quartile_line(figure: str, values: dict[str, list[float | None]], mode: str, fmt: str) -> str:
    worst = math.inf if mode == "min" else -math.inf  # a seed with no value counts as the worst
    cells = []
    for name in CONTENDERS:
        known = sorted(worst if v is None else float(v) for v in values.get(name, []))
        if len(known) < 2:
            cells.append(_fmt(known[0] if known else None, fmt))
            continue
        q1, _, q3 = statistics.quantiles(known, n=4, method="inclusive")
        cells.append(f"{_fmt(statistics.median(known), fmt)} [{_fmt(q1, fmt)}–{_fmt(q3, fmt)}]")
    return f"| {figure} | " + " | ".join(cells) + " |"


def plot(workloads: dict[str, dict[str, Any]], path: Path) -> None:
    """Median best-so-far against the budget spent, one panel per workload."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.8), layout="constrained")
    axes = fig.subplots(1, len(workloads))
    for ax, measured in zip(axes, workloads.values(), strict=False):
        budget, mode = measured["budget"], measured["mode"]
        grid = [budget * i / 100 for i in range(1, 101)]
        for name in CONTENDERS:
            medians = []
            for spent in grid:
                values = [best_within(r["events"], spent, mode) for r in measured["contenders"][name]]
                known = [v for v in values if v is not None]
                medians.append(statistics.median(known) if len(known) * 2 > len(values) else float("nan"))
            ax.plot(grid, medians, label=name, linewidth=2.2 if name == DEFAULT else 1.1)
        ax.set(
            xlabel="iterations spent (all trials of a contender)",
            ylabel="best final value so far (median)",
            title=measured["name"],
        )
        if mode == "min":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    fig.savefig(path, dpi=100)


def run(reps: int, workdir: Path) -> Scenario:
    """``python -m benchmarks B5``: ``--reps`` below 3 is a smoke run (that many seeds, no plot)."""
    smoke = reps < 3
    out = workdir / "b5.json"
    args = ["--out", str(out), "--storage", str(workdir / "sweeps")]
    if smoke:
        args += ["--seeds", str(reps), "--sweep-seeds", "1"]
    run_process(python_module("benchmarks.b5_quality", *args), timeout=3600)
    measured = json.loads(out.read_text())
    if not smoke:
        write_json(PLOT.with_suffix(".json"), measured)  # the curves behind the table and the plot
        plot(measured["workloads"], PLOT)
    return summarise(measured["workloads"], measured["sweep_runs"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="B5's searches: every contender on every workload.")
    parser.add_argument("--out", required=True)
    parser.add_argument("--storage", required=True)
    parser.add_argument(
        "--seeds", type=int, help="seeds per workload (default: 15 for Branin, 10 for the MLP)"
    )
    parser.add_argument("--sweep-seeds", type=int, default=SWEEP_SEEDS)
    parser.add_argument("--workloads", nargs="*", default=["branin", "mlp"])
    args = parser.parse_args(argv)
    seeds = {"branin": args.seeds or SEEDS_FUNCTION, "mlp": args.seeds or SEEDS_MLP}
    workloads = run_workloads({w: seeds[w] for w in args.workloads})
    sweeps = sweep_runs(args.sweep_seeds, Path(args.storage).resolve()) if args.sweep_seeds else []
    write_json(args.out, {"workloads": workloads, "sweep_runs": sweeps})


if __name__ == "__main__":
    main()
