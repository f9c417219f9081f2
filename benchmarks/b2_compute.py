"""B2: a compute-bound sweep. 40 trials of a digits MLP (one full trial ≈ 1–3 s on one core), ASHA on.

Contenders, each in a fresh process, all training :func:`benchmarks.workloads.timed_digits`
(the built-in digits MLP, widened to 768×768) on the same search space and rungs:

- **sweeps**: ``sweep run SPEC --json`` with the project's defaults (TPE, ASHA in
  iterations, MLflow tracking, checkpoints every epoch, one CPU per trial);
- **Optuna serial**: ``study.optimize`` with ``SuccessiveHalvingPruner`` at the same
  rungs, one trial after another (its normal use);
- **Ray Tune defaults**: ``Tuner`` with Ray's ``OptunaSearch`` and ``MLflowLoggerCallback``,
  ASHA at the same rungs, every other setting left at its default.

Figures: wall time once the orchestrator is up, the whole process's wall time, and
parallel efficiency = Σ trial compute seconds / (wall once up × workers), where a trial's
compute seconds are its own wall time inside the trainable minus the time it was blocked
handing a result to the orchestrator (see :class:`benchmarks.workloads.ComputeClock`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks import ceiling
from benchmarks.harness import Scenario, python_module, ratio, run_process, sweep_command, write_json
from benchmarks.workloads import read_compute_seconds

TRIALS = 40
WORKERS = 2
HIDDEN = [768, 768]
SWEEPS, OPTUNA, RAY = "sweeps", "Optuna serial + SHA pruner", "Ray Tune + OptunaSearch + MLflowLogger"
BATCH_SIZES = [32, 64, 128]
EPOCHS = (5, 10)
LEARNING_RATE = (1e-4, 0.3)
GRACE, REDUCTION = 45, 3


def project_spec(seed: int, storage: Path, timing_dir: Path) -> dict[str, Any]:
    return {
        "name": f"b2-digits-{seed}",
        "trainable": "benchmarks.workloads:timed_digits",
        "trainable_args": {"hidden_sizes": HIDDEN, "timing_dir": str(timing_dir)},
        "metric": "val_accuracy",
        "mode": "max",
        "num_samples": TRIALS,
        "seed": seed,
        "search_space": {
            "batch_size": {"type": "categorical", "values": BATCH_SIZES},
            "epochs": {"type": "int", "low": EPOCHS[0], "high": EPOCHS[1]},
            "learning_rate": {
                "type": "float",
                "low": LEARNING_RATE[0],
                "high": LEARNING_RATE[1],
                "log": True,
            },
        },
        "scheduler": {
            "type": "asha",
            "budget": "iterations",
            "grace_period": GRACE,
            "reduction_factor": REDUCTION,
        },
        "resources": {"cpu": 1},
        "storage": str(storage),
    }


def _timings(timing_dir: Path) -> dict[str, Any]:
    """Sums over the trials' records, and how each worker spent its time between them."""
    records = read_compute_seconds(str(timing_dir))
    by_pid: dict[int, list[dict[str, Any]]] = {}
    for record in sorted(records, key=lambda r: r["started"]):
        by_pid.setdefault(record["pid"], []).append(record)
    # A reused worker's resident memory after its second trial and after its last one:
    # growth between them would be a leak of models, optimizers or data across trials.
    growth = [rs[-1]["rss_mb"] - rs[1]["rss_mb"] for rs in by_pid.values() if len(rs) >= 3]
    gaps = [
        b["started"] - a.get("ended", a["at"]) for rs in by_pid.values() for a, b in itertools.pairwise(rs)
    ]
    return {
        "compute_s": sum(r["compute_s"] for r in records),
        "blocked_s": sum(r["blocked_s"] for r in records),
        "checkpoint_s": sum(r["checkpoint_s"] for r in records),
        "between_trials_s": sum(gaps),
        "reports": sum(r["reports"] for r in records),
        "samples": sum(r.get("samples", 0) for r in records),
        "trials_timed": len(records),
        "worker_rss_growth_mb": max(growth) if growth else None,
        "trials_per_worker": max((len(rs) for rs in by_pid.values()), default=0),
    }


def run_project(seed: int, workdir: Path, overrides: tuple[str, ...] = ()) -> dict[str, Any]:
    """``sweep run`` on the B2 spec; ``overrides`` (``--set`` values) measure what a setting costs."""
    timing_dir = workdir / f"sweeps-timing-{seed}"
    timing_dir.mkdir(parents=True, exist_ok=True)
    spec_path = workdir / f"b2-{seed}.yaml"
    spec_path.write_text(yaml.safe_dump(project_spec(seed, workdir / "sweeps", timing_dir)))
    sets = [arg for override in overrides for arg in ("--set", override)]
    process = run_process(sweep_command("run", str(spec_path), "--json", "--overwrite", *sets))
    summary = process.last_json()
    return {
        "up_s": summary["wall_seconds"] - summary["start_seconds"],
        "e2e_s": process.wall_s,
        "best": summary["best"]["value"] if summary["best"] else None,
        "workers": WORKERS,
        **_timings(timing_dir),
    }


def run_contender(name: str, seed: int, workdir: Path) -> dict[str, Any]:
    timing_dir = workdir / f"{name}-timing-{seed}"
    timing_dir.mkdir(parents=True, exist_ok=True)
    spec_path = workdir / f"b2-{seed}.yaml"
    spec_path.write_text(yaml.safe_dump(project_spec(seed, workdir / "sweeps", timing_dir)))
    out = workdir / f"{name}-{seed}.json"
    process = run_process(
        python_module(
            "benchmarks.b2_compute",
            name,
            "--spec",
            str(spec_path),
            "--out",
            str(out),
            "--storage",
            str(workdir / name),
        )
    )
    return {**json.loads(out.read_text()), "e2e_s": process.wall_s, **_timings(timing_dir)}


def run(reps: int, workdir: Path) -> Scenario:
    scenario = Scenario("B2", f"compute-bound sweep, {TRIALS} digits-MLP trials, ASHA", [SWEEPS, OPTUNA, RAY])
    for rep in range(reps):
        measured = {
            SWEEPS: run_project(rep, workdir),
            OPTUNA: run_contender("optuna", rep, workdir),
            RAY: run_contender("ray_tune", rep, workdir),
        }
        for contender, m in measured.items():
            scenario.row("wall s once up", "{:.1f}").add(contender, m["up_s"])
            scenario.row("end-to-end wall s (process)", "{:.1f}").add(contender, m["e2e_s"])
            scenario.row("Σ trial compute s", "{:.1f}").add(contender, m["compute_s"])
            scenario.row("parallel efficiency %", "{:.0f}").add(
                contender, 100 * m["compute_s"] / (m["up_s"] * m["workers"])
            )
            # The contenders' samplers and pruners see results in different orders, so they
            # train different amounts: compare the work done and the rate, not only wall time.
            scenario.row("samples trained (thousands)", "{:,.0f}").add(contender, m["samples"] / 1000)
            scenario.row("samples trained per wall s once up", "{:,.0f}").add(
                contender, m["samples"] / m["up_s"]
            )
            scenario.row("compute µs per sample", "{:.1f}").add(
                contender, 1e6 * m["compute_s"] / max(m["samples"], 1)
            )
            scenario.row("best val_accuracy", "{:.4f}").add(contender, m["best"])
            if m["reports"]:
                scenario.row("ms blocked in each report (driver round trip)", "{:.1f}").add(
                    contender, 1000 * m["blocked_s"] / m["reports"]
                )
            if m.get("worker_rss_growth_mb") is not None:
                scenario.row("worker RSS growth MiB over reused trials", "{:.1f}").add(
                    contender, m["worker_rss_growth_mb"]
                )
        # The machine's own limit, measured between the contenders (see benchmarks/ceiling.py).
        limit = ceiling.measure(WORKERS, HIDDEN)
        scenario.row("bare training, samples/s alone", "{:,.0f}").add(OPTUNA, limit["alone"])
        scenario.row("bare training, samples/s each of 2 side by side", "{:,.0f}").add(
            SWEEPS, limit["side_by_side"]
        )
        scenario.row("machine's speed-up ceiling, 2 workers vs serial", "{:.2f}").add(
            SWEEPS, limit["ceiling"]
        )
    wall = scenario.row("wall s once up")
    ours = wall.median(SWEEPS)
    vs_optuna, vs_ray = ratio(wall.median(OPTUNA), ours), ratio(wall.median(RAY), ours)
    efficiency = scenario.row("parallel efficiency %").median(SWEEPS)
    scenario.check(
        "wall s once up",
        f"Optuna/sweeps {vs_optuna or 0:.2f}×, Ray/sweeps {{:.2f}}×",
        vs_ray,
        "≥ 1.7× Optuna, ≥ 5× Ray Tune",
        None if vs_optuna is None or vs_ray is None else vs_optuna >= 1.7 and vs_ray >= 5,
    )
    scenario.check(
        "parallel efficiency %", "", None, "≥ 85 %", None if efficiency is None else efficiency >= 85
    )
    rate = scenario.row("samples trained per wall s once up")
    scenario.check(
        rate.figure, "sweeps/Optuna {:.2f}×", ratio(rate.median(SWEEPS), rate.median(OPTUNA)), "", None
    )
    e2e = scenario.row("end-to-end wall s (process)")
    scenario.check(
        "end-to-end wall s (process)",
        "Optuna/sweeps {:.2f}×",
        ratio(e2e.median(OPTUNA), e2e.median(SWEEPS)),
        "",
        None,
    )
    scenario.notes.append(
        f"B2: search space batch_size {BATCH_SIZES}, epochs {EPOCHS[0]}–{EPOCHS[1]}, learning_rate "
        f"{LEARNING_RATE[0]:g}–{LEARNING_RATE[1]:g} (log); ASHA rungs from grace {GRACE} iterations, "
        f"reduction {REDUCTION}; MLP 64→{HIDDEN[0]}→{HIDDEN[1]}→10, one torch thread per trial. "
        "'Once up' excludes interpreter start, imports, Ray start-up and `ray.shutdown()` (sweeps "
        "reports both in its JSON summary); for Ray Tune it is `Tuner.fit()`. Each contender "
        "samples with TPE from the same seed, but results arrive in a different order, so the "
        "trials (and Σ compute, samples trained) differ between contenders."
    )
    return scenario


# ---- contender processes -----------------------------------------------------------------


def _plan(spec_path: str) -> tuple[dict[str, Any], Any]:
    from sweeps.plan.planner import plan_spec
    from sweeps.spec.loading import load_spec

    loaded = load_spec(Path(spec_path), [])
    return yaml.safe_load(Path(spec_path).read_text()), plan_spec(loaded)[1]


def ray_digits(config: dict[str, Any]) -> None:
    """The trainable as a Ray Tune user writes it: our MLP, reporting through ``tune.report``."""
    from benchmarks.workloads import TuneReportContext, context_for, timed_digits

    settings = json.loads(os.environ["SWEEPS_BENCH_B2"])
    ctx = context_for(TuneReportContext, config, **settings)
    timed_digits(config, ctx)


def _settings(spec: dict[str, Any], plan: Any) -> dict[str, Any]:
    return {
        "dataset_size": plan.dataset_size,
        "metric": spec["metric"],
        "milestones": plan.milestones(),
        "budget_unit": "iterations",
        "seed": spec["seed"],
        "args": spec["trainable_args"],
    }


def _ray_tune(spec_path: str, storage: str) -> dict[str, Any]:
    import ray
    from ray import tune
    from ray.air.integrations.mlflow import MLflowLoggerCallback
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    spec, plan = _plan(spec_path)
    # Workers inherit the driver's environment: this is how they learn the rungs.
    os.environ["SWEEPS_BENCH_B2"] = json.dumps(_settings(spec, plan))
    ray.init()
    started = time.perf_counter()
    tuner = tune.Tuner(
        ray_digits,
        param_space={
            "batch_size": tune.choice(BATCH_SIZES),
            "epochs": tune.randint(EPOCHS[0], EPOCHS[1] + 1),
            "learning_rate": tune.loguniform(*LEARNING_RATE),
        },
        tune_config=tune.TuneConfig(
            metric="val_accuracy",
            mode="max",
            num_samples=TRIALS,
            search_alg=OptunaSearch(seed=spec["seed"]),
            scheduler=ASHAScheduler(
                time_attr="iteration",
                grace_period=plan.grace_period,
                reduction_factor=plan.reduction_factor,
                max_t=plan.max_t,
            ),
        ),
        run_config=tune.RunConfig(
            name="b2",
            storage_path=storage,
            callbacks=[
                MLflowLoggerCallback(tracking_uri=f"sqlite:///{storage}/mlflow.db", experiment_name="b2"),
            ],
        ),
    )
    results = tuner.fit()
    up = time.perf_counter() - started
    best = results.get_best_result(metric="val_accuracy", mode="max", scope="last")
    ray.shutdown()
    return {"up_s": up, "best": best.metrics["val_accuracy"], "workers": WORKERS}


def _optuna(spec_path: str, storage: str) -> dict[str, Any]:
    import optuna

    from benchmarks.workloads import OptunaTrialContext, context_for, timed_digits
    from sweeps.training.context import TrialDiverged

    spec, plan = _plan(spec_path)
    settings = _settings(spec, plan)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        config = {
            "batch_size": trial.suggest_categorical("batch_size", BATCH_SIZES),
            "epochs": trial.suggest_int("epochs", *EPOCHS),
            "learning_rate": trial.suggest_float("learning_rate", *LEARNING_RATE, log=True),
        }
        ctx = context_for(OptunaTrialContext, config, trial=trial, **settings)
        timed_digits(config, ctx)
        return float(ctx.last_result[spec["metric"]])  # type: ignore[attr-defined]

    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=spec["seed"]),
        pruner=optuna.pruners.SuccessiveHalvingPruner(
            min_resource=int(plan.grace_period), reduction_factor=int(plan.reduction_factor)
        ),
    )
    started = time.perf_counter()
    # A diverged trial is a FAIL, as in sweeps; it must not end the study.
    study.optimize(objective, n_trials=TRIALS, catch=(TrialDiverged,))
    return {"up_s": time.perf_counter() - started, "best": study.best_value, "workers": 1}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="One B2 contender in this process.")
    parser.add_argument("contender", choices=["ray_tune", "optuna"])
    parser.add_argument("--spec", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--storage", required=True)
    args = parser.parse_args(argv)
    storage = str(Path(args.storage).resolve())
    Path(storage).mkdir(parents=True, exist_ok=True)
    runner = _ray_tune if args.contender == "ray_tune" else _optuna
    write_json(args.out, runner(args.spec, storage))


if __name__ == "__main__":
    main()
