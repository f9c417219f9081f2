"""The listener that records a sweep in MLflow: one parent run, one child per trial.

What lands in MLflow (the tags are the public interface for the UI's search box):

- the **parent run** (tags ``sweep.name``, ``sweep.role=parent``): the spec file as an
  artifact; sampler, scheduler settings and seed as params; the counts of completed,
  pruned, diverged and failed trials and iterations used against the worst case as
  metrics; the best trial's id, metric and config at the end;
- one **child run per trial**, nested (``mlflow.parentRunId``), named from its config
  (``t007 bs=64 lr=3.2e-03 ep=8``), with tags ``sweep.name``, ``sweep.role=trial``,
  ``sweep.trial_id``, ``sweep.state`` (completed | pruned | diverged | failed, and
  interrupted for a sweep that was stopped), ``sweep.stopped_at_iteration``,
  ``sweep.rung`` and ``sweep.node``; with brackets, ``sweep.bracket``; for a trial ASHA
  pruned, ``sweep.stopped_at_rung`` (the rung, in the budget unit), ``sweep.rung_value``
  (its value there) and ``sweep.rung_cutoff`` (the value it had to reach); params = the
  sampled hyperparameters plus
  ``iterations_per_epoch``, ``total_iterations`` and ``dataset_size``; metrics = what the
  trainable reported plus ``epoch`` and ``samples_seen``, each with **step = iteration**,
  so curves of different batch sizes share one axis. None of Ray's bookkeeping
  (``pid``, ``done``, ``time_this_iter_s``, ``config/*``...) is logged.

Status: completed and pruned trials end FINISHED (told apart by ``sweep.state``); failed
and diverged ones FAILED, with the error as ``error.txt``; trials cut off by an
interrupted sweep KILLED. :meth:`MlflowTracker.close` ends every run still open, so no run
stays RUNNING however the sweep ended. All MLflow calls happen on the
:class:`~sweeps.tracking.writer.TrackingWriter` thread, off the driver's hot path.
"""

from __future__ import annotations

import json
import math
import numbers
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweeps.backend import SweepListener, TrialError, TrialInfo
from sweeps.outcomes import Outcome, classify_outcome
from sweeps.store.journal import BACKEND_KEYS_KEPT
from sweeps.store.trial_output import output_files
from sweeps.tracking.best_model import BestModel, prepare_best_model
from sweeps.tracking.naming import run_name
from sweeps.tracking.trial_runs import ended_run_tags, run_params, run_status, schedule_tags, started_run_tags
from sweeps.tracking.writer import TrackingWriter

PARENT = "parent"
#: Context keys in every result that are bookkeeping, not metrics (``epoch`` and
#: ``samples_seen`` are logged; the rest are params or tags).
_CONTEXT_KEYS = frozenset(
    {"iteration", "iterations_per_epoch", "total_iterations", "dataset_size", "diverged", "node_id"}
)
#: The backend's keys that are not metrics even though they are numbers.
_BACKEND_KEYS = frozenset(BACKEND_KEYS_KEPT)
#: Both, for one lookup per key of every report.
_NOT_METRICS = _CONTEXT_KEYS | _BACKEND_KEYS
#: MLflow run status per trial outcome.
STATUS = {outcome.value: outcome.mlflow_status for outcome in Outcome}


def trial_metrics(result: dict[str, Any]) -> dict[str, float]:
    """The metrics of one result worth a chart: the trainable's, plus epoch and samples_seen."""
    metrics = {}
    for key, value in result.items():
        if key in _NOT_METRICS or "/" in key:
            continue
        # Called for every report: plain floats and ints skip the slower ABC check.
        kind = type(value)
        if kind is float or kind is int or (kind is not bool and isinstance(value, numbers.Real)):
            metrics[key] = float(value)
    return metrics


@dataclass
class _TrialRun:
    index: int
    config: dict[str, Any]
    last_result: dict[str, Any] | None = None
    node: str | None = None
    #: Gives the trial's latest checkpoint folder (TrialInfo.latest_checkpoint), kept from its end.
    checkpoint: Callable[[], str | None] | None = None
    outcome: str | None = None  # None while running
    #: What the scheduler said of the trial (TrialInfo.schedule): bracket, rung, value, cut-off.
    schedule: dict[str, Any] | None = None


class MlflowTracker(SweepListener):
    """Records each trial as a child run of the sweep's parent run. Build it with
    :func:`sweeps.tracking.session.start_tracking`, which creates the parent run."""

    def __init__(
        self,
        writer: TrackingWriter,
        experiment_id: str,
        *,
        sweep_name: str,
        metric: str,
        mode: str,
        dataset_size: int,
        drop_last: bool,
        milestones: list[float],
        budget_unit: str,
        log_model: bool,
        indices: dict[str, int] | None = None,
        on_index: Any = None,
        find_checkpoint: Callable[[str], str | None] | None = None,
        workers: int = 1,
        ended_before: dict[str, int] | None = None,
        first_step: int = 0,
        find_trial_folder: Callable[[str], Path | None] | None = None,
        model_folder: Path | None = None,
        checkpoint_every_epochs: int = 1,
    ) -> None:
        self.writer = writer
        self.experiment_id = experiment_id
        self.sweep_name = sweep_name
        self.metric, self.mode = metric, mode
        self._dataset_size, self._drop_last, self._workers = dataset_size, drop_last, workers
        self._milestones, self._budget_unit = milestones, budget_unit
        self._log_model = log_model
        self._indices = dict(indices or {})
        self._on_index = on_index
        self._find_checkpoint = find_checkpoint  # trial id → its latest checkpoint folder
        self._find_trial_folder = find_trial_folder  # trial id → its folder (its output files)
        self._model_folder, self._every_epochs = model_folder, checkpoint_every_epochs
        #: Warnings for the sweep's summary (printed after it, through the CLI's console).
        self.notes: list[str] = []
        self.trials: dict[str, _TrialRun] = {}
        self._ended = 0
        # A resumed sweep's parent run goes on from its earlier sessions: the counts from
        # the trials they ended, the steps from the last one they logged
        # (sweeps/tracking/parent_sessions.py).
        self._ended_before = {f"trials_{o}": n for o, n in (ended_before or {}).items()}
        self._first_step = first_step
        self._closed = False

    # -- trial events (driver thread: each only appends to the writer's buffer) -------------

    def trial_started(self, trial: TrialInfo) -> None:
        run = self.trials.get(trial.trial_id)
        if run is not None and run.outcome is None:
            return  # a retry of a trial whose run is still open
        if run is None:
            index = self._indices.get(trial.trial_id) or max(self._indices.values(), default=0) + 1
            self._indices[trial.trial_id] = index
            if self._on_index is not None:
                self._on_index(trial.trial_id, index)
            run = self.trials[trial.trial_id] = _TrialRun(index, dict(trial.config))
        run.outcome = None
        self.writer.create_run(
            trial.trial_id,
            self.experiment_id,
            run_name(run.index, run.config),
            {**started_run_tags(self.sweep_name, trial.trial_id), **schedule_tags(trial.schedule)},
            parent_key=PARENT,
        )
        self.writer.log(
            trial.trial_id, params=run_params(run.config, self._dataset_size, self._drop_last, self._workers)
        )

    def trial_reported(self, trial: TrialInfo, points: list[dict[str, Any]]) -> None:
        # A worker delivers the reports it held with the one that crossed: each is one step,
        # and the whole delivery is one record for the writer (one lock, one stamp): for
        # 800 reports in deliveries of 5, 360 records instead of 1,000 and 3.8 ms of the
        # driver's thread instead of 8.4.
        run = self.trials.get(trial.trial_id)
        if run is None:
            return
        steps: list[tuple[int, dict[str, float]]] = []
        tags = {}
        last = -math.inf if run.last_result is None else int(run.last_result["iteration"])
        for point in points:
            if "iteration" not in point:
                continue
            node = point.get("node_id")
            if node and node != run.node:
                run.node = tags["sweep.node"] = node
            step = int(point["iteration"])
            if step <= last:
                # A trial retried after its worker died resumes from its last checkpoint and
                # repeats the reports between that checkpoint and the failure (the same values:
                # same seed, same batches). Each step is logged once; only the node moves.
                continue
            last = step
            run.last_result = point
            steps.append((step, trial_metrics(point)))
        if steps or tags:
            self.writer.log_steps(trial.trial_id, steps, tags=tags)

    def trial_completed(self, trial: TrialInfo) -> None:
        run = self.trials.get(trial.trial_id)
        if run is None:
            return
        run.checkpoint = trial.latest_checkpoint
        run.schedule = trial.schedule
        outcome = classify_outcome(run.last_result, error=False)
        error = None
        if outcome == "diverged" and run.last_result:
            bad = sorted(k for k, v in trial_metrics(run.last_result).items() if not math.isfinite(v))
            error = (
                f"diverged: {', '.join(bad) or 'a metric'} became non-finite at iteration "
                f"{run.last_result['iteration']}\n"
            )
        self._end(trial.trial_id, run, outcome, error)

    def trial_failed(self, trial: TrialInfo, error: TrialError) -> None:
        run = self.trials.get(trial.trial_id)
        if run is not None:
            run.checkpoint = trial.latest_checkpoint
            self._end(trial.trial_id, run, "failed", error.text)

    # -- the end of the sweep (called by the runner) ----------------------------------------------

    def finish(self, summary: Any) -> None:
        """Log the sweep's totals and best trial on the parent run and end it."""
        trials = summary.trials
        metrics = {
            f"trials_{outcome}": trials.get(outcome, 0) for outcome in STATUS if outcome != "interrupted"
        }
        metrics.update(
            iterations_used=summary.iterations_used,
            iterations_worst_case=summary.iterations_worst_case,
            wall_seconds=summary.wall_seconds,
        )
        # Trials still open at the end were cut off by an interrupted (Ctrl-C) or aborted sweep.
        interrupted = any(run.outcome is None for run in self.trials.values())
        state = "aborted" if summary.aborted else "interrupted" if interrupted else "finished"
        tags = {"sweep.state": state}
        best = summary.best
        if best:
            metrics[f"best_{self.metric}"] = best["value"]
            tags.update(
                {"sweep.best_trial_id": best["trial_id"], "sweep.best_iterations": best["iterations"]}
            )
            tags.update({f"best.{k}": v for k, v in best["config"].items()})
            best_run = self.trials.get(best["trial_id"])
            if best_run is not None:
                tags["sweep.best_run_name"] = run_name(best_run.index, best_run.config)
                if self._log_model:
                    self._store_model(
                        best["trial_id"],
                        best_run.checkpoint() if best_run.checkpoint else None,
                        best["config"].get("epochs"),
                    )
            elif best["trial_id"] in self._indices:
                # It ended before this sweep was resumed: its run exists, and maybe its model
                # was never stored (a killed driver never got here). Its checkpoints remain.
                tags["sweep.best_run_name"] = run_name(self._indices[best["trial_id"]], best["config"])
                if self._log_model and self._find_checkpoint is not None:
                    self._store_model(
                        best["trial_id"],
                        self._find_checkpoint(best["trial_id"]),
                        best["config"].get("epochs"),
                    )
        self._close_open_trials()
        if getattr(summary, "pareto_front", None) is not None:
            self._log_front(summary.pareto_front)
        self.writer.log(PARENT, metrics=metrics, step=self._first_step + self._ended, tags=tags)
        self.writer.end_run(PARENT, {"aborted": "FAILED", "interrupted": "KILLED"}.get(state, "FINISHED"))
        self._closed = True

    def close(self, interrupted: bool = False, flush_timeout: float = 120.0) -> int:
        """End every run still open (KILLED), write everything, stop the writer.

        Returns how many records could not be written (0 unless the server stayed away).
        """
        if not self._closed:
            self._close_open_trials()
            self.writer.log(PARENT, tags={"sweep.state": "interrupted" if interrupted else "failed"})
            self.writer.end_run(PARENT, "KILLED" if interrupted else "FAILED")
            self._closed = True
        return self.writer.close(timeout=flush_timeout)

    def parent_run_id(self) -> str | None:
        return self.writer.run_id(PARENT)

    # -- helpers ---------------------------------------------------------------------------------

    def _log_front(self, front: list[dict[str, Any]]) -> None:
        """A multi-objective sweep's front: the parent's ``pareto_front.json`` table (MLflow's
        ``log_table`` format: columns and rows, shown as a table in the UI), and the tag
        ``sweep.pareto=true`` on each member's run, to filter for in the MLflow UI."""
        objectives = list(front[0]["values"]) if front else []
        params = sorted({name for member in front for name in member["config"]})
        table = {
            "columns": ["trial_id", "run_name", *objectives, *params],
            "data": [
                [
                    member["trial_id"],
                    self._run_name_of(member["trial_id"], member["config"]),
                    *(member["values"].get(o) for o in objectives),
                    *(member["config"].get(p) for p in params),
                ]
                for member in front
            ],
        }
        self.writer.log_text(PARENT, json.dumps(table, indent=1, default=str), "pareto_front.json")
        self.writer.log(PARENT, tags={"sweep.pareto_front_size": len(front)})
        for member in front:
            if (
                member["trial_id"] in self.trials
            ):  # a run of this session (earlier ones: see docs/tracking.md)
                self.writer.log(member["trial_id"], tags={"sweep.pareto": "true"})

    def _run_name_of(self, trial_id: str, config: dict[str, Any]) -> str | None:
        index = self._indices.get(trial_id)
        return None if index is None else run_name(index, config)

    def _end(self, key: str, run: _TrialRun, outcome: str, error: str | None) -> None:
        if run.outcome is not None:
            return
        run.outcome = outcome
        self.writer.log(
            key,
            tags={
                **ended_run_tags(outcome, run.last_result, self._milestones, self._budget_unit),
                **schedule_tags(run.schedule or {}, outcome),
            },
        )
        if error:
            self.writer.log_text(key, error, "error.txt")
        folder = self._find_trial_folder(key) if self._find_trial_folder is not None else None
        for path in output_files(folder) if folder is not None else []:
            self.writer.log_artifact(key, str(path), "output")  # what the trial printed
        self.writer.end_run(key, run_status(outcome))
        self._ended += 1
        counts: dict[str, float] = {
            f"trials_{o}": self._ended_before.get(f"trials_{o}", 0) for o in STATUS if o != "interrupted"
        }
        for other in self.trials.values():
            if other.outcome in STATUS and other.outcome != "interrupted":
                counts[f"trials_{other.outcome}"] += 1
        # The parent's counts grow as trials end, one step per ended trial.
        self.writer.log(PARENT, metrics=counts, step=self._first_step + self._ended)

    def _close_open_trials(self) -> None:
        for key, run in self.trials.items():
            if run.outcome is None:
                self._end(key, run, "interrupted", None)

    def _store_model(self, key: str, checkpoint: str | None, epochs: Any = None) -> None:
        folder = self._model_folder or Path(tempfile.mkdtemp(prefix="sweeps-best-model-"))
        try:
            model = prepare_best_model(
                key,
                checkpoint,
                self._every_epochs,
                folder,
                int(epochs) if isinstance(epochs, (int, float)) else None,
            )
        except Exception as exc:  # noqa: BLE001  # a module that no longer unpickles: the record goes on
            model = BestModel(
                note=f"The best trial {key}'s model could not be saved as an MLflow model "
                f"({type(exc).__name__}: {exc})."
            )
        if model.note:
            self.notes.append(model.note)
        if model.mlflow_model:
            self.writer.log_artifacts(key, model.mlflow_model, "model")
        if model.state_file:
            self.writer.log_artifact(key, model.state_file, "model")
