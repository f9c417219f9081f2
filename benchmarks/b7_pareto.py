"""B7: a Pareto front of accuracy against model size, found with early stopping (issue 23).

Workload: the built-in digits MLP (:mod:`trainables.digits_mlp`, two hidden layers of the
searched ``hidden_size``, 2–256 log, ``learning_rate`` 1e-4–0.3 log, batch size 64, 9 epochs),
with two objectives: ``val_accuracy`` (max) and ``parameters`` (min), the parameter count the
trainable reports with ``trainable_args: {report_parameters: true}``. Every trial runs the real
trainable on the real data, in this process, one at a time (as B5's in-process searches,
:mod:`benchmarks.b5_simulation`), through a context that hands each report to the contender.

Contenders, each given the same budget in **samples trained** (``FULL_TRIALS`` trials of 9
epochs; a trial stopped early spends only the samples it trained on):

- **MO-ASHA (ours)**: the sampler our sweep builds for this spec
  (:func:`sweeps.search.space.make_sampler`: TPE that ranks PRUNED trials by their first
  objective) and :class:`sweeps.search.asha.ParetoRungs`, the rungs our scheduler keeps
  (grace period 1 epoch, η = 3: rungs at 1 and 3 epochs). A stopped trial is told PRUNED
  with its intermediate values (the first objective's), as the sweep's study tells it.
- **Optuna MO-TPE**: Optuna's ``TPESampler`` on a two-direction study, every trial to its
  end: Optuna's pruners refuse multi-objective studies (optuna/optuna#3450).
- **random**: ``RandomSampler``, every trial to its end.

Figure: the hypervolume (:func:`hypervolume_2d`) of the front of the trials that ran all 9
epochs within 25, 50 and 100 % of the budget, in the plane (1 − val_accuracy,
log10(parameters) / log10(``REFERENCE_PARAMETERS``)), both minimised, up to the reference
point (1, 1); higher is better. A pruned trial has no final value, so it never counts.
Medians over seeds (``--reps``). Target (the issue's): ours at 50 % of the budget at least
random search's at 100 %.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna

from benchmarks.harness import Scenario
from sweeps.iterations import TrialShape
from sweeps.search.asha import STOP, ParetoRungs
from sweeps.store.study import write_intermediate_values
from sweeps.training.context import TrainContext

OURS, TPE, RANDOM = "MO-ASHA (ours)", "Optuna MO-TPE", "random"
CONTENDERS = [OURS, TPE, RANDOM]
OBJECTIVES = (("val_accuracy", "max"), ("parameters", "min"))
EPOCHS, BATCH_SIZE, GRACE, REDUCTION_FACTOR = 9, 64, 1, 3
FULL_TRIALS = 16
FRACTIONS = (0.25, 0.5, 1.0)
WIDTHS = (2, 256)
#: The size axis' reference: twice the widest network's parameter count (hidden sizes [w, w]).
REFERENCE_PARAMETERS = 2 * (64 * WIDTHS[1] + WIDTHS[1] ** 2 + 10 * WIDTHS[1] + 2 * WIDTHS[1] + 10)


class Stopped(Exception):
    """Raised inside a trial when MO-ASHA stops it at a rung."""


def hypervolume_2d(points: Sequence[tuple[float, float]], reference: tuple[float, float]) -> float:
    """The area that ``points`` (both coordinates minimised) dominate, bounded by ``reference``.

    Sweeping the points by the first coordinate, each one that lowers the best second
    coordinate so far adds the strip between the two, out to the reference.
    """
    area, lowest = 0.0, reference[1]
    for x, y in sorted(p for p in points if p[0] < reference[0] and p[1] < reference[1]):
        if y < lowest:
            area += (reference[0] - x) * (lowest - y)
            lowest = y
    return area


def plane_point(values: dict[str, float]) -> tuple[float, float]:
    """A trial's final objectives as a point of the plane the hypervolume is measured in."""
    return 1.0 - values["val_accuracy"], math.log10(values["parameters"]) / math.log10(REFERENCE_PARAMETERS)


def hypervolume_within(events: Sequence[tuple[float, dict[str, float]]], budget: float) -> float:
    """The hypervolume of the trials that ended (ran every epoch) within ``budget`` samples;
    ``events`` holds (samples spent when it ended, its final objectives) per such trial."""
    return hypervolume_2d([plane_point(values) for spent, values in events if spent <= budget], (1.0, 1.0))


class ContenderContext(TrainContext):
    """Hands each report of the trainable to ``on_report``, which may stop the trial."""

    def __init__(self, on_report: Callable[[dict[str, Any]], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.on_report = on_report

    def _emit(self, result: dict[str, Any], checkpoint: Any) -> None:
        self.on_report(result)


def space() -> dict[str, optuna.distributions.BaseDistribution]:
    return {
        "hidden_size": optuna.distributions.IntDistribution(*WIDTHS, log=True),
        "learning_rate": optuna.distributions.FloatDistribution(1e-4, 0.3, log=True),
    }


def our_sampler(seed: int) -> optuna.samplers.BaseSampler:
    """The sampler `sweep run` builds for this benchmark's spec."""
    from sweeps.search.space import make_sampler
    from sweeps.spec.models import SweepSpec

    spec = SweepSpec.model_validate(
        {
            "name": "b7",
            "num_samples": FULL_TRIALS,
            "trainable": "digits_mlp",
            "metric": [metric for metric, _ in OBJECTIVES],
            "mode": [mode for _, mode in OBJECTIVES],
            "seed": seed,
            "search_space": {"batch_size": BATCH_SIZE, "epochs": EPOCHS, "learning_rate": 0.01},
            "scheduler": {"type": "asha", "grace_period": GRACE, "reduction_factor": REDUCTION_FACTOR},
        }
    )
    return make_sampler(spec)


def search(contender: str, seed: int) -> dict[str, Any]:
    """One contender's search until its budget in samples is spent: its trials' ends and counts."""
    from trainables.digits_mlp import TRAINING_SIZE

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    budget = FULL_TRIALS * EPOCHS * TRAINING_SIZE
    sampler = (
        our_sampler(seed)
        if contender == OURS
        else optuna.samplers.TPESampler(seed=seed)
        if contender == TPE
        else optuna.samplers.RandomSampler(seed=seed)
    )
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    rungs = (
        ParetoRungs(
            [GRACE, GRACE * REDUCTION_FACTOR],
            REDUCTION_FACTOR,
            EPOCHS,
            modes=[mode for _, mode in OBJECTIVES],
            metrics=[metric for metric, _ in OBJECTIVES],
        )
        if contender == OURS
        else None
    )
    spent, events, trials, started = 0, [], 0, time.perf_counter()
    while spent < budget:
        trial = study.ask(space())
        trials += 1
        stopped, last = run_trial(study, trial, rungs, seed * 1000 + trials)
        spent += int(last["samples_seen"])
        if stopped:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            continue
        values = {metric: float(last[metric]) for metric, _ in OBJECTIVES}
        study.tell(trial, [values[m] for m, _ in OBJECTIVES])
        events.append((spent, values))
    return {"events": events, "trials": trials, "budget": budget, "wall_s": time.perf_counter() - started}


def run_trial(
    study: optuna.Study, trial: optuna.Trial, rungs: ParetoRungs | None, seed: int
) -> tuple[bool, dict[str, Any]]:
    """Train the digits MLP on ``trial``'s config, judged at each epoch end by ``rungs`` (None:
    to its end): whether the rungs stopped it, and its last result."""
    from trainables.digits_mlp import TRAINING_SIZE
    from trainables.digits_mlp import train as digits_mlp

    last: dict[str, Any] = {}

    def on_report(result: dict[str, Any]) -> None:
        last.update(result)
        if rungs is None:
            return
        # The first objective per step, written as our study writes it (a multi-objective
        # Optuna trial refuses Trial.report).
        write_intermediate_values(
            study._storage, trial._trial_id, {int(result["epoch"]): result["val_accuracy"]}
        )
        decision = rungs.judge_vector(str(trial.number), result["epoch"], [result[m] for m, _ in OBJECTIVES])
        if decision.action == STOP and result["epoch"] < EPOCHS:
            raise Stopped

    ctx = ContenderContext(
        on_report,
        shape=TrialShape(TRAINING_SIZE, BATCH_SIZE, EPOCHS, False),
        metric="val_accuracy",
        objectives=tuple(m for m, _ in OBJECTIVES),
        args={"report_parameters": True},
        seed=seed,
        report_iterations=frozenset(),  # epoch ends only: the rungs are whole epochs
        checkpoint_every_epochs=0,
    )
    try:
        digits_mlp({**trial.params, "batch_size": BATCH_SIZE, "epochs": EPOCHS}, ctx)
    except Stopped:
        return True, last
    return False, last


def summarise(runs: dict[str, list[dict[str, Any]]]) -> Scenario:
    """The B7 table from every contender's searches, one per seed (no training: unit-testable)."""
    scenario = Scenario("B7", "Pareto front of val_accuracy and parameters (median over seeds)", CONTENDERS)
    for fraction in FRACTIONS:
        row = scenario.row(f"hypervolume at {fraction:.0%} of the budget (higher is better)", "{:.4f}")
        for name in CONTENDERS:
            for r in runs[name]:
                row.add(name, hypervolume_within(r["events"], fraction * r["budget"]))
    for figure, count in (
        ("trials run", lambda r: r["trials"]),
        ("trials run to the end", lambda r: len(r["events"])),
        ("wall seconds", lambda r: r["wall_s"]),
    ):
        row = scenario.row(figure, "{:.0f}")
        for name in CONTENDERS:
            for r in runs[name]:
                row.add(name, count(r))
    ours_half = scenario.row("hypervolume at 50% of the budget (higher is better)").median(OURS)
    random_full = scenario.row("hypervolume at 100% of the budget (higher is better)").median(RANDOM)
    met = None if ours_half is None or random_full is None else ours_half >= random_full
    scenario.check(
        "hypervolume at 50% of the budget (higher is better)",
        "ours {:.2f}× random's at 100 %",
        None if ours_half is None or not random_full else ours_half / random_full,
        "ours at 50 % ≥ random at 100 %",
        met,
    )
    budget = runs[OURS][0]["budget"] if runs[OURS] else 0
    scenario.notes.append(
        f"B7: digits MLP (hidden_size {WIDTHS[0]}–{WIDTHS[1]} log in both layers, learning_rate 1e-4–0.3 "
        "log, "
        f"batch_size {BATCH_SIZE}, {EPOCHS} epochs), budget {budget:,} samples trained ({FULL_TRIALS} full "
        f"trials), {len(runs[OURS])} seed(s), one trial at a time in one process. Hypervolume in the plane "
        "(1 - val_accuracy, log10(parameters) / log10(REFERENCE_PARAMETERS)) up to (1, 1), of the trials "
        "that ran every epoch within that share of the budget. MO-ASHA: grace 1 epoch, eta 3."
    )
    return scenario


def run(reps: int, workdir: Path) -> Scenario:
    """``python -m benchmarks B7``: ``reps`` seeds per contender, alternating contenders."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in CONTENDERS}
    for seed in range(reps):
        for name in CONTENDERS:
            runs[name].append(search(name, seed))
    return summarise(runs)
