"""A backend without Ray: the runner, the truthful study and ASHA through whole sweeps in milliseconds.

It implements :class:`sweeps.backend.Backend` the way the Ray backend behaves, minus the
workers (as Syne Tune's simulated backend does): trials run one after another in this
process, their "training" is a made-up learning curve of the config (:func:`curve`), and
each report goes to the sweep's listeners, to ASHA's rungs
(:class:`~sweeps.search.asha.AshaBrackets`) and to the truthful study
(:class:`~sweeps.search.truthful_study.TruthfulStudy`), in Tune's order: the scheduler
decides on a result, the searcher hears it only if the trial goes on, and hears the end.

It resumes as the Ray backend does. Its own record of the sweep, ``simulated.json`` in
the sweep's folder, is saved every ``save_every`` reports and when the run ends, so it
lags the journal as Ray's experiment snapshot does; each report is a checkpoint (the
record keeps the trial's last result as its state). A graceful stop (SIGUSR1, as Tune's)
leaves the running trial unfinished in the record; :meth:`SimulatedBackend.prepare_resume`
corrects the record as the runner's reconcile says, and the next run continues the
unfinished trials from their checkpoint, delivering no iteration twice, then creates the
rest. ``crash_after`` ends a run as a killed driver would: at once, with no last save.

Example (no Ray is started)::

    from sweeps.backend.simulated import SimulatedBackend
    from sweeps.runner.runner import RunOptions, run_sweep

    summary = run_sweep(loaded, RunOptions(SimulatedBackend(), live=False))
"""

from __future__ import annotations

import json
import math
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sweeps.backend import StopRule, SweepJob, SweepListener, TrialInfo
from sweeps.backend.resources import NodeShape
from sweeps.backend.resume import ResumePlan, ResumeState, SavedSweep, SavedTrial, delivered_for, fresh_start
from sweeps.iterations import BUDGET_RESULT_KEY, TrialShape
from sweeps.search.asha import STOP, asha_rungs_for
from sweeps.search.truthful_study import TruthfulStudy, open_truthful_study
from sweeps.spec.models import SweepSpec
from sweeps.store.atomic import write_atomically
from sweeps.store.checkpoints import NoTrialFiles
from sweeps.store.state import SweepPaths

#: The simulator's own record of a sweep, in the sweep's folder.
RECORD_FILE = "simulated.json"


class SimulatedCrash(BaseException):
    """The simulated driver died (``crash_after``): nothing is cleaned up, as after ``kill -9``."""


def curve(config: dict[str, Any], iteration: int) -> float:
    """An accuracy that rises with training, faster near learning rate 1e-2 (a clear best)."""
    quality = 1.0 / (1.0 + abs(math.log10(float(config["learning_rate"])) + 2.0))
    return quality * (1.0 - math.exp(-iteration / 40.0))


class SimulatedBackend:
    """Runs a sweep's trials one at a time in this process, on :func:`curve`."""

    def __init__(
        self, report_every: int = 5, cpus: float = 2, save_every: int = 3, crash_after: int | None = None
    ) -> None:
        self.report_every = report_every
        self.cpus = cpus
        #: Reports between two saves of the simulator's record (its snapshot period).
        self.save_every = save_every
        #: Die as this run's report of this number reaches the listeners (a driver killed
        #: mid-sweep); None: never.
        self.crash_after = crash_after
        self.started = self.stopped = False
        #: Whether the runner began the start before its own start-up (the overlap).
        self.began_early = False
        #: (trial id, iteration, decision) for every result the scheduler saw.
        self.decisions: list[tuple[str, int, str]] = []
        #: (trial id, iteration) of every report delivered to the listeners, in order.
        self.delivered: list[tuple[str, int]] = []
        self._reports = 0
        self._interrupted = False
        self._record: dict[str, dict[str, Any]] = {}

    # -- the Backend protocol ----------------------------------------------------------

    def begin_start(self) -> None:
        self.began_early = True

    def start(self) -> bool:
        self.started = True
        return True

    def starting(self) -> str:
        return f"starting the simulator ({self.cpus:g} CPUs)"

    def node_shapes(self) -> list[NodeShape]:
        return [NodeShape("simulated", self.cpus, 0.0)]

    def shutdown(self) -> None:
        self.stopped = True

    def saved_sweep(self, paths: SweepPaths) -> SavedSweep:
        record = _read_record(paths)
        if record is None:
            return SavedSweep(continuable=False)
        return SavedSweep(
            True, {t: SavedTrial(r["status"], dict(r["last_result"])) for t, r in record.items()}
        )

    def trial_files(self, paths: SweepPaths) -> NoTrialFiles:
        return NoTrialFiles()  # its checkpoints are its record's last results, not files

    def prepare_resume(self, plan: ResumePlan) -> ResumeState:
        record = _read_record(plan.paths)
        if record is None or not plan.saved.continuable:
            return fresh_start(plan)
        for trial_id in plan.finished:
            if trial_id in record and record[trial_id]["status"] == "unfinished":
                record[trial_id]["status"] = "ended"
        for added in plan.added:  # from its last result the journal holds: each report is a checkpoint
            last = added.results[-1] if added.results else {}
            record[added.trial_id] = {"status": "unfinished", "config": added.config, "last_result": last}
        _write_record(plan.paths, record)
        continued = [t for t, r in record.items() if r["status"] == "unfinished"]
        return ResumeState(
            restore=True,
            continued=continued,
            delivered=delivered_for(plan.journal, continued),
            journal=plan.journal,
            brackets=dict(plan.brackets),
        )

    def run(self, job: SweepJob, listeners: list[SweepListener], rules: list[StopRule]) -> None:
        study = open_truthful_study(job.spec, job.paths, job.trials_so_far)
        rungs = asha_rungs_for(job.spec, job.plan)
        resume = job.resume
        self._record = (_read_record(job.paths) or {}) if resume is not None and resume.restore else {}
        if rungs is not None and resume is not None:  # the journal holds the rungs a resumed sweep reached
            rungs.replay(resume.journal, job.spec.metric, job.spec.budget_unit, resume.brackets)
        with self._interruptible():
            # First the trials that continue (from their checkpoint in the record), then new ones.
            continued = resume.continued if resume is not None and resume.restore else []
            trials = [(t, self._record[t]["config"], self._record[t]["last_result"]) for t in continued]
            trials += [(f"sim{job.trials_so_far + n:04d}", None, {}) for n in range(job.trials_to_create)]
            for trial_id, config, checkpoint in trials:
                stop = [rule.stop_all() for rule in rules]  # every rule asked, as the Ray backend does
                new = config is None  # a continued trial is not new: the rules' limit on new ones spares it
                if (
                    any(stop)
                    or self._interrupted
                    or (new and not all(rule.allows_new_trials() for rule in rules))
                ):
                    break
                config = config if config is not None else study.ask(trial_id)
                self._run_trial(job, trial_id, config, checkpoint, study, rungs, listeners, rules)
                if self._interrupted:
                    break
        self._save(job.paths)
        for listener in listeners:
            listener.sweep_ended()

    # -- one trial ---------------------------------------------------------------------

    def _run_trial(
        self,
        job: SweepJob,
        trial_id: str,
        config: dict[str, Any],
        checkpoint: dict[str, Any],
        study: TruthfulStudy,
        rungs: Any,
        listeners: list[SweepListener],
        rules: list[StopRule],
    ) -> None:
        spec = job.spec
        shape = TrialShape(
            job.plan.dataset_size, int(config["batch_size"]), int(config["epochs"]), job.plan.drop_last
        )
        already = job.resume.delivered.get(trial_id, 0) if job.resume else 0
        self._record[trial_id] = {"status": "unfinished", "config": config, "last_result": checkpoint}
        schedule: dict[str, Any] = {}
        if rungs is not None and len(rungs.brackets) > 1:  # drawn as Tune adds the trial; kept on a restart
            drawn = trial_id not in rungs.assignments
            schedule["bracket"] = rungs.assign(trial_id)
            if drawn:
                study.bracket_assigned(trial_id, schedule["bracket"])
        for listener in listeners:
            listener.trial_started(TrialInfo(trial_id, config, schedule=schedule))
        milestones = {shape.first_iteration_reaching(m, spec.budget_unit) for m in job.plan.milestones()}
        last: dict[str, Any] = dict(checkpoint)
        for iteration in range(int(checkpoint.get("iteration", 0)) + 1, shape.total_iterations + 1):
            if (
                iteration % self.report_every
                and iteration not in milestones
                and iteration != shape.total_iterations
            ):
                continue  # reports at the cadence, at every milestone and at the end, as `fit` does
            if iteration <= already:
                continue  # delivered before the stop: the worker does not send it twice
            last = simulated_result(spec, config, shape, iteration)
            decision = "continue"
            judged = (
                None
                if rungs is None
                else rungs.judge_result(
                    trial_id, last[BUDGET_RESULT_KEY[spec.budget_unit]], last, spec.metric
                )
            )
            if judged is not None:
                decision = judged.action if iteration < shape.total_iterations else "continue"
                if decision == STOP:  # before the study ends the trial, as the Ray scheduler does
                    schedule.update(judged.explanation())
                    study.trial_stopped(trial_id, judged.explanation())
            self.decisions.append((trial_id, iteration, decision))
            done = decision == STOP or iteration == shape.total_iterations
            last["done"] = done
            self._deliver(
                job, TrialInfo(trial_id, config, last, schedule=schedule), done, study, listeners, rules
            )
            if done:
                break
            stop = [rule.stop_all() for rule in rules]  # every rule asked, as Tune asks its stopper each step
            if any(stop) or self._interrupted:
                return  # stopped: the trial stays unfinished in the record, to continue from its checkpoint
        self._record[trial_id] = {"status": "ended", "config": config, "last_result": last}
        study.finish(trial_id, [last] if last else None, error=not last)
        for listener in listeners:
            listener.trial_completed(TrialInfo(trial_id, config, last or None, schedule=schedule))

    def _deliver(
        self,
        job: SweepJob,
        info: TrialInfo,
        done: bool,
        study: TruthfulStudy,
        listeners: list[SweepListener],
        rules: list[StopRule],
    ) -> None:
        trial_id, result = info.trial_id, info.last_result or {}
        self._reports += 1
        if not done:
            study.report(trial_id, [result])
        self.delivered.append((trial_id, int(result["iteration"])))
        for listener in listeners:
            listener.trial_reported(info, [result])
        if self.crash_after is not None and self._reports >= self.crash_after:
            # As Tune shows a result to the callbacks (the journal) before the searcher hears
            # of the trial's end: a driver killed here leaves the journal ahead of the study.
            raise SimulatedCrash(f"the simulated driver died at its report {self._reports}")
        for rule in rules:
            rule.observe(trial_id, result)
        # Each report is a checkpoint: the record's last result is the trial's state.
        self._record[trial_id]["last_result"] = result
        for listener in listeners:
            listener.trial_checkpointed(info)
        if self._reports % self.save_every == 0:
            self._save(job.paths)

    def _save(self, paths: SweepPaths) -> None:
        _write_record(paths, self._record)

    @contextmanager
    def _interruptible(self) -> Iterator[None]:
        """Take SIGUSR1 as Tune does: the graceful stop's signal to end the run now."""
        self._interrupted = False
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_interrupt(signum: int, frame: Any) -> None:
            self._interrupted = True

        previous = signal.signal(signal.SIGUSR1, on_interrupt)
        try:
            yield
        finally:
            signal.signal(signal.SIGUSR1, previous)


def _record_path(paths: SweepPaths) -> Path:
    return paths.directory / RECORD_FILE


def _read_record(paths: SweepPaths) -> dict[str, dict[str, Any]] | None:
    try:
        data: dict[str, dict[str, Any]] = json.loads(_record_path(paths).read_text())["trials"]
    except (OSError, ValueError, KeyError):
        return None
    return data


def _write_record(paths: SweepPaths, record: dict[str, dict[str, Any]]) -> None:
    write_atomically(_record_path(paths), json.dumps({"trials": record}).encode())


def simulated_result(
    spec: SweepSpec, config: dict[str, Any], shape: TrialShape, iteration: int
) -> dict[str, Any]:
    """The report a simulated trial sends at ``iteration``: the metric's curve, a cost for each
    further objective, a value for each constrained metric, and the vocabulary's figures."""
    result: dict[str, Any] = {
        spec.metric: curve(config, iteration),
        "iteration": iteration,
        "epoch": shape.epoch_at(iteration),
        "samples_seen": shape.samples_at(iteration),
        "iterations_per_epoch": shape.iterations_per_epoch,
        "total_iterations": shape.total_iterations,
        "dataset_size": shape.dataset_size,
    }
    for metric in spec.metrics[1:]:  # further objectives: a cost that grows with the learning rate
        result[metric] = 100.0 * float(config["learning_rate"])
    for constraint in spec.parsed_constraints:  # a constrained metric the objectives lack
        result.setdefault(constraint.metric, float(config["batch_size"]))
    return result
