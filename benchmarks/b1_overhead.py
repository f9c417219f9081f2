"""B1: orchestration overhead. 200 trials of a trainable that does almost nothing.

Contenders, each in a fresh process:

- **sweeps**: ``sweep run SPEC --json``, end to end, including Ray start-up;
- **Ray Tune defaults**: ``ray.init()`` then a ``Tuner`` with default settings (random
  search, FIFO, no actor reuse: a fresh worker process per trial, about 2 s each here,
  so it runs :data:`RAY_DEFAULT_TRIALS` trials and its per-trial figures are compared);
- **Ray Tune, reused actors**: the same with ``reuse_actors=True``: Ray Tune's own floor,
  so the table shows what sweeps adds on top of Ray (its study, ledger, journal, tracking);
- **Optuna in-process**: ``study.optimize`` with in-memory storage.

Every trial reports three times and does nothing else, and every contender samples at
random (Ray Tune's default), so the figures measure the orchestrator alone. The sampler's
own cost is measured apart (TPE cost per suggestion as the study grows), for SCALING.md.

"Overhead per trial" is wall seconds per trial once the orchestrator is up
(1 / trials per second): the trials do no work, so all of it is overhead. Driver memory
is the peak resident set of the process that drives the sweep, at 200 and at 1,000 trials.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.harness import (
    Scenario,
    python_module,
    ratio,
    run_process,
    sweep_command,
    write_json,
)

TRIALS = 200
LARGE_TRIALS = 1000
REPORTS = 3
#: Ray Tune's defaults start a fresh worker process per trial (~2 s each on 2 cores): 200
#: trials would take 7 minutes per repetition for the same per-trial figure.
RAY_DEFAULT_TRIALS = 50
SWEEPS, SWEEPS_UNTRACKED = "sweeps (`sweep run`)", "sweeps, tracking off"
RAY, RAY_REUSE, OPTUNA = "Ray Tune defaults", "Ray Tune, reuse_actors", "Optuna in-process"
TPE_SIZES = (100, 300, 1000, 3000)


def project_spec(trials: int, storage: Path) -> dict[str, Any]:
    return {
        "name": f"b1-noop-{trials}",
        "trainable": "benchmarks.workloads:noop",
        "metric": "score",
        "mode": "max",
        "num_samples": trials,
        "seed": 0,
        "search_space": {
            "batch_size": 10,  # N = 10: one iteration per epoch, so one report per epoch
            "epochs": REPORTS,
            "learning_rate": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
        },
        "sampler": {"type": "random"},
        "scheduler": {"type": "none"},
        "storage": str(storage),
    }


def run_project(trials: int, workdir: Path, tracking: bool = True) -> dict[str, float]:
    spec_path = workdir / f"b1-{trials}.yaml"
    spec = project_spec(trials, workdir / "sweeps")
    spec["tracking"] = {"enabled": tracking}
    spec_path.write_text(yaml.safe_dump(spec))
    process = run_process(sweep_command("run", str(spec_path), "--json", "--overwrite"))
    summary = process.last_json()
    done = sum(summary["trials"].values())
    if done != trials:
        raise RuntimeError(f"B1: `sweep run` finished {done} of {trials} trials: {summary}")
    return {
        "trials": trials,
        "ray_start_s": summary["start_seconds"],
        "up_s": summary["wall_seconds"] - summary["start_seconds"],
        "e2e_s": process.wall_s,
        "rss_mb": process.peak_rss_mb,
    }


def run_contender(name: str, trials: int, workdir: Path) -> dict[str, float]:
    out = workdir / f"{name}.json"
    process = run_process(
        python_module(
            "benchmarks.b1_overhead",
            name,
            "--trials",
            str(trials),
            "--out",
            str(out),
            "--storage",
            str(workdir / name),
        )
    )
    import json

    result = json.loads(out.read_text())
    return {**result, "trials": trials, "e2e_s": process.wall_s, "rss_mb": process.peak_rss_mb}


def run(reps: int, workdir: Path) -> Scenario:
    scenario = Scenario(
        "B1",
        f"orchestration overhead, {TRIALS} near-no-op trials",
        [SWEEPS, SWEEPS_UNTRACKED, RAY, RAY_REUSE, OPTUNA],
    )
    for _rep in range(reps):
        measured = {
            SWEEPS: run_project(TRIALS, workdir),
            SWEEPS_UNTRACKED: run_project(TRIALS, workdir, tracking=False),
            RAY: run_contender("ray_tune", RAY_DEFAULT_TRIALS, workdir),
            RAY_REUSE: run_contender("ray_tune_reuse", TRIALS, workdir),
            OPTUNA: run_contender("optuna", TRIALS, workdir),
        }
        for contender, m in measured.items():
            trials = m["trials"]
            scenario.row("trials/s once up", "{:.1f}").add(contender, trials / m["up_s"])
            scenario.row("overhead ms/trial once up", "{:.1f}").add(contender, 1000 * m["up_s"] / trials)
            if "ray_start_s" in m:
                scenario.row("Ray start-up s").add(contender, m["ray_start_s"])
            scenario.row("end-to-end wall s (process)", "{:.1f}").add(contender, m["e2e_s"])
            scenario.row("driver peak RSS MiB", "{:.0f}").add(contender, m["rss_mb"])
    # Once: the same sweep with 5× the trials, for memory growth and the per-trial cost
    # without the fixed costs of a sweep (worker start, final flush) spread over few trials.
    large = run_project(LARGE_TRIALS, workdir)
    scenario.row(f"driver peak RSS MiB, {LARGE_TRIALS} trials (1 run)", "{:.0f}").add(SWEEPS, large["rss_mb"])
    scenario.row(f"overhead ms/trial once up, {LARGE_TRIALS} trials (1 run)", "{:.1f}").add(
        SWEEPS, 1000 * large["up_s"] / LARGE_TRIALS
    )
    for n, ms in tpe_suggest_cost().items():
        scenario.row(f"TPE suggest ms at n={n} (sampler alone)", "{:.1f}").add(OPTUNA, ms)

    overhead = scenario.row("overhead ms/trial once up")
    ours = overhead.median(SWEEPS)
    scenario.check(
        "overhead ms/trial once up",
        "Ray defaults/sweeps {:.1f}×",
        ratio(overhead.median(RAY), ours),
        "≤ 50 ms",
        None if ours is None else ours <= 50,
    )
    start = scenario.row("Ray start-up s").median(SWEEPS)
    scenario.check("Ray start-up s", "", None, "≤ 5 s", None if start is None else start <= 5)
    rss_small = scenario.row("driver peak RSS MiB").median(SWEEPS)
    rss_large = scenario.row(f"driver peak RSS MiB, {LARGE_TRIALS} trials (1 run)").median(SWEEPS)
    growth = ratio(rss_large, rss_small)
    per_trial_kib = (
        None
        if rss_large is None or rss_small is None
        else (rss_large - rss_small) * 1024 / (LARGE_TRIALS - TRIALS)
    )
    scenario.check(
        f"driver peak RSS MiB, {LARGE_TRIALS} trials (1 run)",
        f"{{:.2f}}× the {TRIALS}-trial peak, +{per_trial_kib or 0:.0f} KiB/trial",
        growth,
        "flat (≤ 1.10×)",
        None if growth is None else growth <= 1.10,
    )
    scenario.notes.append(
        "B1: every contender samples at random and runs trials that only report 3 times; "
        "'once up' excludes interpreter start, imports, Ray start-up and shut-down (Ray Tune: "
        "`ray.init()`, `ray.shutdown()`; sweeps: `start_seconds` of its JSON summary, whose wall "
        "ends before `ray.shutdown()`). Ray Tune and sweeps run 2 trials at a "
        f"time (2 CPUs); Optuna runs them one after another. Ray Tune defaults ran {RAY_DEFAULT_TRIALS} "
        "trials (a fresh worker process per trial); its per-trial figures compare, its wall and "
        "memory are for those trials."
    )
    return scenario


def tpe_suggest_cost(sizes: tuple[int, ...] = TPE_SIZES) -> dict[int, float]:
    """Milliseconds per TPE suggestion (constant liar, as sweeps uses it) as the study grows."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = {
        "batch_size": optuna.distributions.CategoricalDistribution([16, 32, 64, 128, 256]),
        "epochs": optuna.distributions.IntDistribution(1, 10),
        "learning_rate": optuna.distributions.FloatDistribution(1e-4, 1.0, log=True),
    }
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=0, constant_liar=True)
    )
    costs: dict[int, float] = {}
    for n in range(1, max(sizes) + 1):
        started = time.perf_counter()
        trial = study.ask(space)
        elapsed = time.perf_counter() - started
        study.tell(trial, trial.params["learning_rate"] * trial.params["epochs"])
        if n in sizes:
            costs[n] = 1000 * elapsed
    return costs


# ---- contender processes -----------------------------------------------------------------


def ray_noop(config: dict[str, Any]) -> None:
    """The near-no-op trainable as a Ray Tune user writes it."""
    from ray import tune

    for iteration in range(1, REPORTS + 1):
        tune.report({"score": config["learning_rate"] * iteration, "iteration": iteration})


def _ray_tune(trials: int, storage: str, reuse_actors: bool = False) -> dict[str, float]:
    import ray
    from ray import tune

    started = time.perf_counter()
    ray.init()
    ray_start = time.perf_counter() - started
    started = time.perf_counter()
    tuner = tune.Tuner(
        ray_noop,
        param_space={"learning_rate": tune.loguniform(1e-4, 1.0)},
        tune_config=tune.TuneConfig(
            num_samples=trials, metric="score", mode="max", reuse_actors=reuse_actors
        ),
        run_config=tune.RunConfig(name="b1", storage_path=storage),
    )
    results = tuner.fit()
    up = time.perf_counter() - started
    assert len(results) == trials and not results.errors, results.errors
    ray.shutdown()
    return {"ray_start_s": ray_start, "up_s": up}


def _optuna(trials: int, storage: str) -> dict[str, float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        learning_rate = trial.suggest_float("learning_rate", 1e-4, 1.0, log=True)
        for iteration in range(1, REPORTS + 1):
            trial.report(learning_rate * iteration, iteration)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return learning_rate * REPORTS

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    started = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    return {"up_s": time.perf_counter() - started}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="One B1 contender in this process.")
    parser.add_argument("contender", choices=["ray_tune", "ray_tune_reuse", "optuna"])
    parser.add_argument("--trials", type=int, default=TRIALS)
    parser.add_argument("--out", required=True)
    parser.add_argument("--storage", required=True)
    args = parser.parse_args(argv)
    storage = str(Path(args.storage).resolve())
    if args.contender == "optuna":
        result = _optuna(args.trials, storage)
    else:
        result = _ray_tune(args.trials, storage, reuse_actors=args.contender == "ray_tune_reuse")
    write_json(args.out, result)


if __name__ == "__main__":
    main()
