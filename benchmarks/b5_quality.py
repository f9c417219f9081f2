"""B5: search quality for the same compute, on a problem where early stopping matters.

The workload: the built-in ``synthetic_mlp`` trainable (Adam) with a two-hidden-layer MLP
(128, 128) on 6,000 seeded synthetic samples of 10 classes and 40 features (a further
1,200 for validation). Configs with a learning rate far from the right one are clearly
bad after an epoch; good ones keep improving for 15–20 epochs (about 0.45 validation
accuracy after 1 epoch, 0.77 after 20). The space: batch size 32–512, epochs 1–30,
learning rate 1e-5–1e-1 (four decades, log).

Contenders, each given the same compute measured in **samples trained** (the sum over its
trials of the samples each had seen at its last report), ``BUDGET_SAMPLES`` per seed:

- **ASHA+TPE, iterations** (the default spec): rungs at 50, 150, 450, ... iterations;
- **ASHA+TPE, samples**: rungs at 6,000 (one epoch), 18,000, ... samples;
- **ASHA+TPE, sqrt scale**: as the first, with ``learning_rate.scale: {rule: sqrt,
  reference_batch_size: 128}`` (the rule for Adam);
- **Optuna TPE + SuccessiveHalvingPruner**, in one process, reporting at the same
  iterations with the same pruning rungs (min_resource 50 iterations, η = 3);
- **random search, no early stopping**, in one process, every trial to its end.

The three sweeps run through ``run_sweep`` (tracking off: it does not change what is
searched) and are stopped once their budget is spent; the Optuna contenders call the same
trainable through :class:`benchmarks.workloads.OptunaTrialContext`, with the trial seeds
sweeps would give them. A contender's curve is its best validation accuracy so far
against the samples it has trained, in the order results arrived. Reported per contender:
the median and interquartile range over seeds of the best value at 25 %, 50 % and 100 % of
the budget, and the samples needed to reach a target at 99 % of the best value any
contender found (in the same seed). ``docs/b5_quality.png`` gets the median curves, and
``docs/b5_quality.json`` every seed's curves.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path
from typing import Any

import yaml

from benchmarks.harness import REPO, Scenario, median, python_module, ratio, run_process, write_json

SEEDS = 10
N = 6_000
TRAINABLE_ARGS = {"n_samples": N, "n_features": 40, "n_classes": 10, "hidden_sizes": [128, 128], "data_seed": 0}
BATCH_SIZES = [32, 64, 128, 256, 512]
EPOCHS = (1, 30)
LEARNING_RATES = (1e-5, 1e-1)
REDUCTION_FACTOR = 3
GRACE_ITERATIONS = 50
GRACE_SAMPLES = N
#: Six trials of the longest kind (30 epochs of 6,000 samples).
BUDGET_SAMPLES = 6 * EPOCHS[1] * N
FRACTIONS = (0.25, 0.5, 1.0)
TARGET_SHARE = 0.99
PLOT = REPO / "docs" / "b5_quality.png"

ITERATIONS, SAMPLES, SCALED = "ASHA+TPE, iterations (default)", "ASHA+TPE, samples", "ASHA+TPE, sqrt scale"
OPTUNA, RANDOM = "Optuna TPE + SH", "random, no early stopping"
CONTENDERS = [ITERATIONS, SAMPLES, SCALED, OPTUNA, RANDOM]


class Curve:
    """Best value so far against the samples trained by all trials, fed one report at a time."""

    def __init__(self) -> None:
        self.latest: dict[str, int] = {}
        self.events: list[tuple[int, float]] = []  # (samples trained so far, value reported)

    def add(self, trial: str, samples: int, value: float) -> None:
        self.latest[trial] = max(samples, self.latest.get(trial, 0))
        self.events.append((self.used(), value))

    def used(self) -> int:
        return sum(self.latest.values())

    @staticmethod
    def best_within(events: list[tuple[int, float]], budget: float) -> float | None:
        return max((v for spent, v in events if spent <= budget and math.isfinite(v)), default=None)

    @staticmethod
    def samples_to(events: list[tuple[int, float]], target: float, budget: float) -> int | None:
        return next((spent for spent, v in events if spent <= budget and v >= target), None)


def _space() -> dict[str, Any]:
    low, high = LEARNING_RATES
    return {
        "batch_size": {"type": "categorical", "values": BATCH_SIZES},
        "epochs": {"type": "int", "low": EPOCHS[0], "high": EPOCHS[1]},
        "learning_rate": {"type": "float", "low": low, "high": high, "log": True},
    }


def _sweep(seed: int, storage: Path, contender: str) -> Curve:
    from ray.tune import Callback

    from sweeps.runner.runner import RunOptions, run_sweep
    from sweeps.spec.loading import load_spec
    from sweeps.store.state import sweep_paths
    from sweeps.store.stop_request import request_stop
    from sweeps.training.batching import points_in

    space = _space()
    scheduler: dict[str, Any] = {"type": "asha", "budget": "iterations", "grace_period": GRACE_ITERATIONS,
                                 "reduction_factor": REDUCTION_FACTOR}
    if contender == SAMPLES:
        scheduler.update(budget="samples", grace_period=GRACE_SAMPLES)
    if contender == SCALED:
        space["learning_rate"]["scale"] = {"rule": "sqrt", "reference_batch_size": 128}
    name = f"b5-{CONTENDERS.index(contender)}-{seed}"
    spec = {
        "name": name, "trainable": "synthetic_mlp", "trainable_args": TRAINABLE_ARGS,
        "metric": "val_accuracy", "mode": "max", "seed": seed, "storage": str(storage),
        "num_samples": 500,  # more than the budget allows: the sweep is stopped when it is spent
        "search_space": space, "scheduler": scheduler, "tracking": {"enabled": False},
    }
    path = storage / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(spec))
    curve = Curve()
    paths = sweep_paths(storage, name)

    class Record(Callback):
        def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any) -> None:
            for point in points_in(result):
                if "val_accuracy" in point and not point.get("diverged"):
                    curve.add(trial.trial_id, int(point["samples_seen"]), float(point["val_accuracy"]))
            if curve.used() >= BUDGET_SAMPLES and not paths.stop_request_file.exists():
                request_stop(paths, "B5's sample budget is spent")

    run_sweep(load_spec(path), RunOptions(live=False, overwrite=True, callbacks=[Record()]))
    return curve


def _optuna(seed: int, contender: str) -> Curve:
    import optuna

    from benchmarks.workloads import OptunaTrialContext, context_for
    from sweeps.plan.asha import rung_milestones
    from trainables.synthetic_mlp import train

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    longest = EPOCHS[1] * -(-N // min(BATCH_SIZES))
    milestones = rung_milestones(GRACE_ITERATIONS, longest, REDUCTION_FACTOR)
    if contender == OPTUNA:
        sampler: optuna.samplers.BaseSampler = optuna.samplers.TPESampler(seed=seed)
        pruner: optuna.pruners.BasePruner = optuna.pruners.SuccessiveHalvingPruner(
            min_resource=GRACE_ITERATIONS, reduction_factor=REDUCTION_FACTOR)
    else:
        sampler, pruner = optuna.samplers.RandomSampler(seed=seed), optuna.pruners.NopPruner()
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    curve = Curve()

    class Recording(OptunaTrialContext):
        def _emit(self, result: dict[str, Any], checkpoint: Any) -> None:
            if not result["diverged"]:
                curve.add(str(self.trial.number), int(result["samples_seen"]), float(result["val_accuracy"]))
            super()._emit(result, checkpoint)

    def objective(trial: optuna.Trial) -> float:
        config = {
            "batch_size": trial.suggest_categorical("batch_size", BATCH_SIZES),
            "epochs": trial.suggest_int("epochs", *EPOCHS),
            "learning_rate": trial.suggest_float("learning_rate", *LEARNING_RATES, log=True),
        }
        ctx = context_for(Recording, config, dataset_size=N, metric="val_accuracy", milestones=milestones,
                          budget_unit="iterations", seed=seed, args=TRAINABLE_ARGS, trial=trial)
        train(config, ctx)
        return float(ctx.last_result["val_accuracy"])  # type: ignore[attr-defined]

    def stop_when_spent(study: optuna.Study, trial: Any) -> None:
        if curve.used() >= BUDGET_SAMPLES:
            study.stop()

    study.optimize(objective, n_trials=500, callbacks=[stop_when_spent], catch=(Exception,))
    return curve


def run_seed(seed: int, storage: Path) -> dict[str, Any]:
    import sys
    import time

    measured = {}
    for contender in CONTENDERS:
        started = time.perf_counter()
        curve = _sweep(seed, storage, contender) if contender in (ITERATIONS, SAMPLES, SCALED) else _optuna(seed, contender)
        wall = time.perf_counter() - started
        events = [(spent, round(value, 5)) for spent, value in curve.events]
        measured[contender] = {"events": events, "trials": len(curve.latest), "wall_s": round(wall, 1)}
        print(f"B5 seed {seed}: {contender}: {len(curve.latest)} trials, {wall:.1f} s", file=sys.stderr, flush=True)
    return measured


def summarise(seeds: list[dict[str, Any]]) -> Scenario:
    """The B5 table from every seed's curves (no training: unit-testable)."""
    scenario = Scenario("B5", f"search quality for equal samples trained, 10-class synthetic MLP, {len(seeds)} seeds",
                        CONTENDERS)
    # The target of each seed: 99 % of the best value any contender found in that seed (one
    # lucky seed's best would set a bar that the other seeds' runs rarely reach).
    targets = [TARGET_SHARE * max(Curve.best_within(s[c]["events"], BUDGET_SAMPLES) or 0.0 for c in CONTENDERS)
               for s in seeds]
    scenario.row("sample budget per contender", "{:,.0f}").add(ITERATIONS, BUDGET_SAMPLES)
    for fraction in FRACTIONS:
        figure = f"best val_accuracy at {fraction:.0%} of the budget"
        for contender in CONTENDERS:
            for measured in seeds:
                # No report yet counts as 0 accuracy, the worst, not as "never reached" (+inf).
                best = Curve.best_within(measured[contender]["events"], fraction * BUDGET_SAMPLES)
                scenario.row(figure, "{:.4f}").add(contender, 0.0 if best is None else best)
    to_target = "samples to reach 99 % of the seed's best found"
    reached = "seeds reaching 99 % of the seed's best"
    looser = "samples to reach 97 % of the seed's best found (a looser bar, for comparison)"
    for contender in CONTENDERS:
        for measured, target in zip(seeds, targets):
            events = measured[contender]["events"]
            samples = Curve.samples_to(events, target, BUDGET_SAMPLES)
            scenario.row(to_target, "{:,.0f}").add(contender, samples)
            scenario.row(reached, "{:.0f}").add(contender, None)  # counted below, not a median
            scenario.row(looser, "{:,.0f}").add(
                contender, Curve.samples_to(events, target * 0.97 / TARGET_SHARE, BUDGET_SAMPLES))
            scenario.row("trials run", "{:.0f}").add(contender, measured[contender]["trials"])
    counts = scenario.row(reached)
    counts.values = {c: [float(sum(v is not None for v in scenario.row(to_target).values[c]))] for c in CONTENDERS}
    row = scenario.row(to_target)
    default, random_search = row.median(ITERATIONS), row.median(RANDOM)
    share = ratio(default, random_search)
    if default is None:
        scenario.check(to_target, "the default's median never reached it", None, "default ≤ ½ of random", False)
    elif random_search is None:
        scenario.check(to_target, "random never reached it", None, "default ≤ ½ of random", True)
    else:
        scenario.check(to_target, "default: {:.2f}× random's", share, "default ≤ ½ of random", share <= 0.5)
    loose = scenario.row(looser)
    loose_share = ratio(loose.median(ITERATIONS), loose.median(RANDOM))
    if loose_share is not None:
        scenario.check(looser, "default: {:.2f}× random's", loose_share, "", None)
    full = scenario.row("best val_accuracy at 100% of the budget")
    default, optuna_sh = full.median(ITERATIONS), full.median(OPTUNA)
    scenario.check(full.figure, "default − Optuna SH: {:+.4f}", None if default is None or optuna_sh is None
                   else default - optuna_sh, "default ≥ Optuna TPE + SH",
                   None if default is None or optuna_sh is None else default >= optuna_sh)
    half = scenario.row("best val_accuracy at 50% of the budget")
    scaled, plain = half.median(SCALED), half.median(ITERATIONS)
    scenario.check(half.figure, "sqrt scale − no rule: {:+.4f}", None if scaled is None or plain is None
                   else scaled - plain, "scale no worse than no rule (at 50 % and 100 %)",
                   None if scaled is None or plain is None else scaled >= plain and
                   (full.median(SCALED) or 0.0) >= (default or 0.0))
    scenario.notes.append(_quartiles_note(scenario))
    scenario.notes.append(
        f"B5: budget {BUDGET_SAMPLES:,} samples trained per contender and seed; each seed's target is "
        f"{TARGET_SHARE:.0%} of the best val_accuracy any contender found in that seed (median "
        f"{statistics.median(targets):.4f}, from {min(targets):.4f} to {max(targets):.4f}); a run that never "
        "reached it counts as infinitely many samples in the median ('not reached')."
    )
    return scenario


def _quartiles_note(scenario: Scenario) -> str:
    lines = ["B5 medians with their interquartile range [Q1–Q3] over seeds:", "",
             "| figure | " + " | ".join(CONTENDERS) + " |", "|---|" + "---|" * len(CONTENDERS)]
    for row in scenario.rows[1:]:
        cells = []
        for contender in CONTENDERS:
            values = sorted(float("inf") if v is None else float(v) for v in row.values.get(contender, []))
            if len(values) < 2:
                cells.append(_show(row.fmt, median(values)))
                continue
            q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
            cells.append(f"{_show(row.fmt, median(values))} [{_show(row.fmt, q1)}–{_show(row.fmt, q3)}]")
        lines.append(f"| {row.figure} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _show(fmt: str, value: float | None) -> str:
    # A quartile between a reached value and a "never" (+inf) interpolates to inf or NaN.
    return "not reached" if value is None or not math.isfinite(value) else fmt.format(value)


def plot(seeds: list[dict[str, Any]], path: Path) -> None:
    """Median best-so-far against samples trained, one line per contender."""
    from matplotlib.figure import Figure

    grid = [BUDGET_SAMPLES * i / 200 for i in range(1, 201)]
    fig = Figure(figsize=(8, 4.8), layout="constrained")
    ax = fig.subplots()
    for contender in CONTENDERS:
        medians = []
        for spent in grid:
            values = [Curve.best_within(s[contender]["events"], spent) for s in seeds]
            known = [v for v in values if v is not None]
            medians.append(statistics.median(known) if len(known) * 2 > len(values) else float("nan"))
        ax.plot(grid, medians, label=contender, linewidth=2 if contender == ITERATIONS else 1.2)
    ax.set(xlabel="samples trained (all trials of a contender)", ylabel="best val_accuracy so far (median of seeds)",
           title=f"B5: search quality for the same compute, {len(seeds)} seeds")
    ax.set_ylim(bottom=0.5)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="lower right")
    fig.savefig(path, dpi=110)


def run(reps: int, workdir: Path) -> Scenario:
    seeds = SEEDS if reps >= 3 else reps
    measured = []
    for seed in range(seeds):
        out = workdir / f"seed-{seed}.json"
        run_process(python_module("benchmarks.b5_quality", "--seed", str(seed), "--out", str(out),
                                  "--storage", str(workdir / f"seed-{seed}")), timeout=3600)
        measured.append(json.loads(out.read_text()))
    # The curves behind the table and the plot, kept beside the plot (the workdir is temporary).
    write_json(PLOT.with_suffix(".json"), {"budget_samples": BUDGET_SAMPLES, "seeds": measured})
    plot(measured, PLOT)
    return summarise(measured)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="One B5 seed: every contender with the same sample budget.")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--storage", required=True)
    args = parser.parse_args(argv)
    import ray

    # One Ray for the seed's three sweeps (run_sweep reuses an initialised Ray).
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})
    try:
        write_json(args.out, run_seed(args.seed, Path(args.storage).resolve()))
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
