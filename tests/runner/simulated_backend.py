"""A backend without Ray, for fast tests of the runner, the searcher and ASHA together.

It implements :class:`sweeps.backend.Backend` the way the Ray backend behaves, minus the
workers: trials run one after another in this process, their "training" is a made-up
learning curve of the config, and each report goes to the sweep's listeners, to ASHA's
rungs (:class:`~sweeps.search.asha.AshaRungs`) and to the truthful study
(:class:`~sweeps.search.truthful_study.TruthfulStudy`), in Tune's order: the scheduler
decides on a result, the searcher hears it only if the trial goes on, and hears the end.
"""

from __future__ import annotations

import math
from typing import Any

from sweeps.backend import StopRule, SweepJob, SweepListener, TrialInfo
from sweeps.backend.resources import NodeShape
from sweeps.iterations import BUDGET_RESULT_KEY, TrialShape
from sweeps.search.asha import STOP, asha_rungs_for
from sweeps.search.truthful_study import open_truthful_study


def curve(config: dict[str, Any], iteration: int) -> float:
    """An accuracy that rises with training, faster near learning rate 1e-2 (a clear best)."""
    quality = 1.0 / (1.0 + abs(math.log10(float(config["learning_rate"])) + 2.0))
    return quality * (1.0 - math.exp(-iteration / 40.0))


class SimulatedBackend:
    def __init__(self, report_every: int = 5, cpus: float = 2) -> None:
        self.report_every = report_every
        self.cpus = cpus
        self.started = self.stopped = False
        #: Whether the runner began the start before its own start-up (the overlap).
        self.began_early = False
        #: (trial id, iteration, decision) for every result the scheduler saw.
        self.decisions: list[tuple[str, int, str]] = []

    def begin_start(self) -> None:
        self.began_early = True

    def start(self) -> bool:
        self.started = True
        return True

    def node_shapes(self) -> list[NodeShape]:
        return [NodeShape("simulated", self.cpus, 0.0)]

    def shutdown(self) -> None:
        self.stopped = True

    def run(self, job: SweepJob, listeners: list[SweepListener], rules: list[StopRule]) -> None:
        study = open_truthful_study(job.spec, job.paths, job.trials_so_far)
        rungs = asha_rungs_for(job.spec, job.plan)
        for number in range(job.trials_to_create):
            stop = [rule.stop_all() for rule in rules]  # every rule asked, as the Ray backend does
            if any(stop) or not all(rule.allows_new_trials() for rule in rules):
                break
            trial_id = f"sim{job.trials_so_far + number:04d}"
            self._run_trial(job, trial_id, study.ask(trial_id), study, rungs, listeners, rules)
        for listener in listeners:
            listener.sweep_ended()

    def _run_trial(self, job: SweepJob, trial_id: str, config: dict[str, Any], study: Any, rungs: Any,
                   listeners: list[SweepListener], rules: list[StopRule]) -> None:
        shape = TrialShape(job.plan.dataset_size, int(config["batch_size"]), int(config["epochs"]), job.plan.drop_last)
        info = TrialInfo(trial_id, config)
        for listener in listeners:
            listener.trial_started(info)
        milestones = {shape.first_iteration_reaching(m, job.spec.budget_unit) for m in job.plan.milestones()}
        last: dict[str, Any] = {}
        for iteration in range(1, shape.total_iterations + 1):
            if iteration % self.report_every and iteration not in milestones and iteration != shape.total_iterations:
                continue  # reports at the cadence, at every milestone and at the end, as `fit` does
            last = {
                job.spec.metric: curve(config, iteration), "iteration": iteration,
                "epoch": shape.epoch_at(iteration), "samples_seen": shape.samples_at(iteration),
                "iterations_per_epoch": shape.iterations_per_epoch, "total_iterations": shape.total_iterations,
                "dataset_size": shape.dataset_size,
            }
            budget = last[BUDGET_RESULT_KEY[job.spec.budget_unit]]
            decision = rungs.decide(trial_id, budget, last[job.spec.metric]) if rungs else "continue"
            self.decisions.append((trial_id, iteration, decision))
            done = decision == STOP or iteration == shape.total_iterations
            last["done"] = done
            if not done:
                study.report(trial_id, [last])
            for listener in listeners:
                listener.trial_reported(TrialInfo(trial_id, config, last), [last])
            for rule in rules:
                rule.observe(trial_id, last)
            if done:
                break
        study.finish(trial_id, [last] if last else None, error=not last)
        for listener in listeners:
            listener.trial_completed(TrialInfo(trial_id, config, last or None))
