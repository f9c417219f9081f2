"""``failure.avoid``'s default, measured: how many failing configs TPE proposes with and without it.

The case of issue 24: a trainable that raises ``RuntimeError("CUDA out of memory")`` for
every batch size of 128 and more; batch size in {16, 32, 64, 128, 256}, epochs 1-3 and
a log-uniform learning rate. The objective of a trial that does not fail is a smooth
accuracy with its peak at a learning rate of 0.01, a little better at smaller batches.
Each contender drives an in-memory Optuna study with the sweep's TPE (``constant_liar``,
Optuna's default ``n_startup_trials`` of 10), one trial at a time, a failing config told
FAIL (as the sweep tells it): **off** is ``TPESampler``, **on** is
:class:`sweeps.search.avoid_failures.FailureAvoidingTPESampler`. Figures are the mean
over the seeds; "best" is the best accuracy found (higher is better).

``python -m benchmarks.failure_avoid --seeds 20`` on a 2-core machine shared with other
jobs (38 s in all)::

    trials  failing proposals (off)  failing (on)  best (off)  best (on)
    12      4.70                     3.90          0.9879      0.9903
    40      19.20                    9.45          0.9932      0.9940
    100     61.90                    23.50         0.9942      0.9944

(A random sampler would propose 2 failing configs in 5: 4.8, 16 and 40.) Without it,
TPE proposes *more* failing configs than random as a sweep goes on: it sees only the
trials that did not fail, all with small batch sizes, so nothing tells it the large
ones are bad. With 12 trials TPE's random start-up phase (10 trials) is nearly the whole
sweep, and ``avoid`` can act only on the last few; from 40 trials on it proposes half as
many failing configs or fewer, and finds as good a config or a better one.
Hence ``failure.avoid``
defaults to on for TPE.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import optuna

from sweeps.search.avoid_failures import FailureAvoidingTPESampler

SPACE = {
    "batch_size": optuna.distributions.CategoricalDistribution([16, 32, 64, 128, 256]),
    "epochs": optuna.distributions.IntDistribution(1, 3),
    "learning_rate": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True),
}


def fails(params: dict[str, Any]) -> bool:
    return int(params["batch_size"]) >= 128  # "CUDA out of memory"


def accuracy(params: dict[str, Any]) -> float:
    distance = math.log10(params["learning_rate"]) + 2.0  # 0 at 0.01
    return 0.99 - 0.05 * distance**2 - 0.0001 * params["batch_size"] + 0.002 * params["epochs"]


def drive(sampler: optuna.samplers.BaseSampler, trials: int) -> tuple[int, float]:
    """(failing proposals, best accuracy) of one sweep of ``trials`` trials."""
    study = optuna.create_study(direction="maximize", sampler=sampler)
    failing, best = 0, -math.inf
    for _ in range(trials):
        trial = study.ask(SPACE)
        if fails(trial.params):
            failing += 1
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            value = accuracy(trial.params)
            best = max(best, value)
            study.tell(trial, value)
    return failing, best


def measure(trials: int, seeds: int) -> dict[str, float]:
    figures: dict[str, list[float]] = {"failing_off": [], "failing_on": [], "best_off": [], "best_on": []}
    for seed in range(seeds):
        for contender, sampler_class in (
            ("off", optuna.samplers.TPESampler),
            ("on", FailureAvoidingTPESampler),
        ):
            failing, best = drive(sampler_class(seed=seed, constant_liar=True), trials)
            figures[f"failing_{contender}"].append(failing)
            figures[f"best_{contender}"].append(best)
    return {key: sum(values) / len(values) for key, values in figures.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--trials", type=int, nargs="+", default=[12, 40, 100])
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"{'trials':<8}{'failing proposals (off)':<25}{'failing (on)':<14}{'best (off)':<12}best (on)")
    for trials in args.trials:
        m = measure(trials, args.seeds)
        print(
            f"{trials:<8}{m['failing_off']:<25.2f}{m['failing_on']:<14.2f}{m['best_off']:<12.4f}{m['best_on']:.4f}"
        )


if __name__ == "__main__":
    main()
