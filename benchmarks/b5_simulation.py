"""B5's in-process contenders: one search at a time, one trial at a time, with the real parts.

Each contender is a sampler and a way of stopping trials early, run for the same budget
in **iterations** (the sum, over a contender's trials, of the iterations each ran):

- our ASHA is :class:`sweeps.search.asha.AshaRungs` (the rungs and decisions the sweep's
  scheduler uses), on :func:`sweeps.plan.asha.rung_milestones`; brackets are Ray's
  ``ASHAScheduler(brackets=K)`` arrangement (bracket s starts at grace·η^s; a trial goes to
  bracket s with a probability proportional to e^(rungs of s)), each bracket its own rungs;
- our samplers are what :func:`sweeps.search.space.make_sampler` builds (TPE with the
  sweep's constant liar, or :class:`sweeps.search.multi_fidelity.MultiFidelityTPESampler`),
  told each trial's real end as the sweep's study is (PRUNED or COMPLETE, with its
  intermediate values);
- Optuna's contenders use Optuna's own pruners through ``trial.should_prune()``.

Trials run one after another (as ``study.optimize`` with one worker): the sweep's 2
concurrent trials are left to the real ``sweep run`` of the same function. A contender's
curve holds one event per trial that ran to ``max_t``: (iterations spent so far, its final
value). The best of these is what a user gets: a trial stopped early has no final value.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import optuna

from benchmarks.b5_functions import BRANIN_BOUNDS, branin
from sweeps.plan.asha import bracket_probabilities, rung_milestones
from sweeps.search.asha import STOP, AshaRungs
from sweeps.search.multi_fidelity import MultiFidelityTPESampler
from sweeps.spec.models import AshaSpec
from sweeps.training.context import TrialDiverged

#: Trials of ``max_t`` iterations a contender's budget buys (as the issue's external benchmark).
FULL_TRIALS = 30
REDUCTION_FACTOR = 3


class Stopped(Exception):
    """Raised inside a trial when its scheduler stops it."""


class Problem(Protocol):
    name: str
    max_t: int
    mode: str

    def space(self) -> dict[str, optuna.distributions.BaseDistribution]: ...

    def run(self, config: dict[str, Any], steps: list[int], report: Callable[[int, float], None]) -> None:
        """Run the trial, calling ``report(step, value)`` at each of ``steps`` (the last is max_t)."""


@dataclass(frozen=True)
class BraninProblem:
    """Multi-fidelity Branin (minimised); iteration i is fidelity i / max_t (``linear``) or
    log(1 + i) / log(1 + max_t) (``log``: a learning curve that learns most early, as a
    long trial does, so a small absolute grace period ranks configs better there)."""

    max_t: int
    fidelity: str = "linear"
    mode: str = "min"

    @property
    def name(self) -> str:
        return f"Branin, max_t {self.max_t:,}" + (
            "" if self.fidelity == "linear" else f", {self.fidelity} fidelity"
        )

    def space(self) -> dict[str, optuna.distributions.BaseDistribution]:
        return {k: optuna.distributions.FloatDistribution(*bounds) for k, bounds in BRANIN_BOUNDS.items()}

    def z(self, step: int) -> float:
        if self.fidelity == "linear":
            return step / self.max_t
        return math.log1p(step) / math.log1p(self.max_t)

    def run(self, config: dict[str, Any], steps: list[int], report: Callable[[int, float], None]) -> None:
        for step in steps:
            report(step, branin(config["x1"], config["x2"], self.z(step)))


@dataclass(frozen=True)
class Contender:
    """A sampler (``tpe``, ``multi_fidelity``, ``random``) and a stopper (``asha``,
    ``optuna_sh``, ``optuna_hb``, ``none``). ``grace`` is ASHA's grace period or the SH
    pruner's min_resource in iterations, or ``auto:K`` for max_t / η^K; ``promotion`` is
    ASHA's rule at a rung (``scheduler.promotion``; the spec's default unless given)."""

    name: str
    sampler: str = "tpe"
    stopper: str = "asha"
    grace: str = "auto:3"
    brackets: int = 1
    promotion: str = AshaSpec.model_fields["promotion"].default

    def grace_for(self, max_t: int) -> float:
        if self.grace.startswith("auto:"):
            return auto_grace(max_t, int(self.grace.split(":")[1]))
        return min(float(self.grace), max_t)


def auto_grace(max_t: float, rungs: int) -> float:
    """:func:`sweeps.plan.asha.auto_grace_period` with K = ``rungs`` instead of the default's K."""
    exact = max_t / REDUCTION_FACTOR**rungs
    return float(min(max_t, max(1, math.ceil(exact * (1 - 1e-12)))))  # rounded as the plan rounds


def bracket_rungs(contender: Contender, max_t: int, mode: str) -> tuple[list[AshaRungs], list[float]]:
    """One :class:`AshaRungs` per bracket (bracket s starts at grace·η^s), and each one's chance."""
    grace = contender.grace_for(max_t)
    ladders = [
        [m for m in rung_milestones(grace, max_t, REDUCTION_FACTOR, s) if m < max_t]
        for s in range(contender.brackets)
    ]
    chances = bracket_probabilities([len(ladder) for ladder in ladders])
    return [
        AshaRungs(ladder, REDUCTION_FACTOR, max_t, mode, promotion=contender.promotion) for ladder in ladders
    ], chances


def _report_steps(milestones: list[float], max_t: int) -> list[int]:
    return sorted({min(max_t, math.ceil(m)) for m in milestones} | {max_t})


def _sampler(contender: Contender, seed: int, milestones: list[float]) -> optuna.samplers.BaseSampler:
    if contender.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if contender.sampler == "multi_fidelity":
        return MultiFidelityTPESampler(milestones=milestones, seed=seed)
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)  # the sweep's own default


def _pruner(contender: Contender, max_t: int) -> optuna.pruners.BasePruner:
    if contender.stopper == "optuna_sh":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=max(1, round(contender.grace_for(max_t))), reduction_factor=REDUCTION_FACTOR
        )
    if contender.stopper == "optuna_hb":
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=max_t, reduction_factor=REDUCTION_FACTOR
        )
    return optuna.pruners.NopPruner()


def search(problem: Problem, contender: Contender, seed: int, budget: int | None = None) -> dict[str, Any]:
    """Run ``contender`` on ``problem`` until its budget (FULL_TRIALS × max_t iterations) is spent."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    max_t = problem.max_t
    budget = budget or FULL_TRIALS * max_t
    brackets, chances = (
        bracket_rungs(contender, max_t, problem.mode) if contender.stopper == "asha" else ([], [])
    )
    if contender.stopper == "asha":
        steps = _report_steps([r.milestone for r in brackets[0].rungs], max_t)
    elif contender.stopper in ("optuna_sh", "optuna_hb"):
        lowest = max(1, round(contender.grace_for(max_t))) if contender.stopper == "optuna_sh" else 1
        steps = _report_steps(rung_milestones(lowest, max_t, REDUCTION_FACTOR), max_t)
    else:
        steps = [max_t]
    milestones = [float(s) for s in steps if s < max_t]
    # A fixed study name: Optuna's HyperbandPruner draws each trial's bracket from a hash of
    # the study name and the trial number, and a default name is a fresh UUID per run.
    study = optuna.create_study(
        study_name=f"b5-seed-{seed}",
        direction="minimize" if problem.mode == "min" else "maximize",
        sampler=_sampler(contender, seed, milestones),
        pruner=_pruner(contender, max_t),
    )
    assigner = random.Random(seed)  # Ray's bracket draw (the plan's probabilities), seeded
    spent, events, trials = 0, [], 0
    while spent < budget:
        trial = study.ask(problem.space())
        trials += 1
        rungs = assigner.choices(brackets, chances)[0] if brackets else None
        state, used, value = run_trial(problem, trial, steps, rungs, contender.stopper.startswith("optuna"))
        spent += used
        study.tell(trial, value if state == optuna.trial.TrialState.COMPLETE else None, state=state)
        if state == optuna.trial.TrialState.COMPLETE:
            events.append((spent, round(value, 6)))
    return {"events": events, "trials": trials, "spent": spent, "budget": budget}


def run_trial(
    problem: Problem, trial: optuna.Trial, steps: list[int], rungs: AshaRungs | None, optuna_pruner: bool
) -> tuple[optuna.trial.TrialState, int, float]:
    """Run one trial to its end or its stop: its state, the iterations it ran, its last value."""
    last = {"step": 0, "value": math.nan}

    def report(step: int, value: float) -> None:
        last.update(step=step, value=value)
        trial.report(value, step)  # every intermediate value, as the sweep's study records them
        if step >= problem.max_t:
            return
        if rungs is not None and rungs.decide(str(trial.number), step, value) == STOP:
            raise Stopped
        if optuna_pruner and trial.should_prune():
            raise Stopped

    try:
        problem.run(trial.params, steps, report)
    except Stopped:
        return optuna.trial.TrialState.PRUNED, int(last["step"]), float(last["value"])
    except TrialDiverged:  # the metric or loss went NaN: a FAIL, as in a sweep
        return optuna.trial.TrialState.FAIL, int(last["step"]), math.nan
    return optuna.trial.TrialState.COMPLETE, int(last["step"]), float(last["value"])
