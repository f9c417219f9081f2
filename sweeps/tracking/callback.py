"""The Ray Tune callback that records a sweep in MLflow: one parent run, one child per trial.

What lands in MLflow (the tags are the public interface for the UI's search box):

- the **parent run** (tags ``sweep.name``, ``sweep.role=parent``): the spec file as an
  artifact; sampler, scheduler settings and seed as params; the counts of completed,
  pruned, diverged and failed trials and iterations used against the worst case as
  metrics; the best trial's id, metric and config at the end;
- one **child run per trial**, nested (``mlflow.parentRunId``), named from its config
  (``t007 bs=64 lr=3.2e-03 ep=8``), with tags ``sweep.name``, ``sweep.role=trial``,
  ``sweep.trial_id``, ``sweep.state`` (completed | pruned | diverged | failed, and
  interrupted for a sweep that was stopped), ``sweep.stopped_at_iteration``,
  ``sweep.rung`` and ``sweep.node``; params = the sampled hyperparameters plus
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

import logging
import math
import numbers
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ray.tune import Callback

from sweeps.plan.iterations import TrialShape
from sweeps.runner.ledger import classify_outcome, read_trial_error, rung_reached
from sweeps.tracking.naming import run_name
from sweeps.tracking.writer import TrackingWriter
from sweeps.training.batching import points_in

_logger = logging.getLogger("sweeps.tracking")

PARENT = "parent"
#: Context keys in every result that are bookkeeping, not metrics (``epoch`` and
#: ``samples_seen`` are logged; the rest are params or tags).
_CONTEXT_KEYS = frozenset({"iteration", "iterations_per_epoch", "total_iterations", "dataset_size",
                           "diverged", "node_id"})
#: Keys Ray Tune adds to every result (ray.tune.result.AUTO_RESULT_KEYS and friends).
_RAY_KEYS = frozenset({
    "training_iteration", "time_total_s", "time_this_iter_s", "time_since_restore", "timestamp",
    "date", "done", "trial_id", "experiment_id", "experiment_tag", "pid", "hostname", "node_ip",
    "config", "iterations_since_restore", "timesteps_since_restore", "timesteps_total",
    "episodes_total", "checkpoint_dir_name", "should_checkpoint", "warmup_time",
})
#: MLflow run status per trial outcome.
STATUS = {"completed": "FINISHED", "pruned": "FINISHED", "diverged": "FAILED", "failed": "FAILED",
          "interrupted": "KILLED"}


def trial_metrics(result: dict[str, Any]) -> dict[str, float]:
    """The metrics of one result worth a chart: the trainable's, plus epoch and samples_seen."""
    metrics = {}
    for key, value in result.items():
        if key in _CONTEXT_KEYS or key in _RAY_KEYS or "/" in key:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            continue
        metrics[key] = float(value)
    return metrics


@dataclass
class _TrialRun:
    index: int
    config: dict[str, Any]
    last_result: dict[str, Any] | None = None
    node: str | None = None
    checkpoint: Any = None  # the trial's latest ray.tune.Checkpoint
    outcome: str | None = None  # None while running


class MlflowTracker(Callback):
    """Records each trial as a child run of the sweep's parent run. Build it with
    :func:`sweeps.tracking.session.start_tracking`, which creates the parent run."""

    def __init__(self, writer: TrackingWriter, experiment_id: str, *, sweep_name: str, metric: str, mode: str,
                 dataset_size: int, drop_last: bool, milestones: list[float], budget_unit: str,
                 log_model: bool, indices: dict[str, int] | None = None,
                 on_index: Any = None, find_checkpoint: Callable[[str], str | None] | None = None) -> None:
        self.writer = writer
        self.experiment_id = experiment_id
        self.sweep_name = sweep_name
        self.metric, self.mode = metric, mode
        self._dataset_size, self._drop_last = dataset_size, drop_last
        self._milestones, self._budget_unit = milestones, budget_unit
        self._log_model = log_model
        self._indices = dict(indices or {})
        self._on_index = on_index
        self._find_checkpoint = find_checkpoint  # trial id → its latest checkpoint folder
        self.trials: dict[str, _TrialRun] = {}
        self._ended = 0
        self._closed = False

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its run config (callbacks included) into the experiment folder for
        # `Tuner.restore`; the writer's thread and lock cannot travel, and a restored sweep
        # builds a fresh tracker from mlflow_runs.json anyway.
        state = dict(self.__dict__)
        state.update(writer=None, _on_index=None, _find_checkpoint=None)
        return state

    # -- Ray Tune hooks (driver thread: each only appends to the writer's buffer) -----------

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
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
        config = run.config
        shape = TrialShape(self._dataset_size, int(config["batch_size"]), int(config["epochs"]), self._drop_last)
        self.writer.create_run(trial.trial_id, self.experiment_id, run_name(run.index, config), {
            "sweep.name": self.sweep_name,
            "sweep.role": "trial",
            "sweep.trial_id": trial.trial_id,
            "sweep.state": "running",
        }, parent_key=PARENT)
        self.writer.log(trial.trial_id, params={
            **config,
            "iterations_per_epoch": shape.iterations_per_epoch,
            "total_iterations": shape.total_iterations,
            "dataset_size": shape.dataset_size,
        })

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any],
                        **info: Any) -> None:
        # A worker delivers the reports it held with the one that crossed: each is one step.
        for point in points_in(result):
            self._log_point(trial, point)

    def _log_point(self, trial: Any, result: dict[str, Any]) -> None:
        run = self.trials.get(trial.trial_id)
        if run is None or "iteration" not in result:
            return
        node = result.get("node_id")
        tags = {}
        if node and node != run.node:
            run.node = tags["sweep.node"] = node
        step = int(result["iteration"])
        if run.last_result is not None and step <= int(run.last_result["iteration"]):
            # A trial retried after its worker died resumes from its last checkpoint and
            # repeats the reports between that checkpoint and the failure (the same values:
            # same seed, same batches). Each step is logged once; only the node moves.
            if tags:
                self.writer.log(trial.trial_id, tags=tags)
            return
        run.last_result = result
        self.writer.log(trial.trial_id, metrics=trial_metrics(result), step=step, tags=tags)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        run = self.trials.get(trial.trial_id)
        if run is None:
            return
        run.checkpoint = _latest_checkpoint(trial)
        outcome = classify_outcome(run.last_result, error=False)
        error = None
        if outcome == "diverged" and run.last_result:
            bad = sorted(k for k, v in trial_metrics(run.last_result).items() if not math.isfinite(v))
            error = f"diverged: {', '.join(bad) or 'a metric'} became non-finite at iteration " \
                    f"{run.last_result['iteration']}\n"
        self._end(trial.trial_id, run, outcome, error)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        run = self.trials.get(trial.trial_id)
        if run is not None:
            run.checkpoint = _latest_checkpoint(trial)
            self._end(trial.trial_id, run, "failed", read_trial_error(trial))

    # -- the end of the sweep (called by the runner) ----------------------------------------------

    def finish(self, summary: Any) -> None:
        """Log the sweep's totals and best trial on the parent run and end it."""
        trials = summary.trials
        metrics = {f"trials_{outcome}": trials.get(outcome, 0) for outcome in STATUS if outcome != "interrupted"}
        metrics.update(iterations_used=summary.iterations_used,
                       iterations_worst_case=summary.iterations_worst_case,
                       wall_seconds=summary.wall_seconds)
        # Trials still open at the end were cut off by an interrupted (Ctrl-C) or aborted sweep.
        interrupted = any(run.outcome is None for run in self.trials.values())
        state = "aborted" if summary.aborted else "interrupted" if interrupted else "finished"
        tags = {"sweep.state": state}
        best = summary.best
        if best:
            metrics[f"best_{self.metric}"] = best["value"]
            tags.update({"sweep.best_trial_id": best["trial_id"], "sweep.best_iterations": best["iterations"]})
            tags.update({f"best.{k}": v for k, v in best["config"].items()})
            best_run = self.trials.get(best["trial_id"])
            if best_run is not None:
                tags["sweep.best_run_name"] = run_name(best_run.index, best_run.config)
                if self._log_model:
                    self._store_model(best["trial_id"], best_run.checkpoint)
            elif best["trial_id"] in self._indices:
                # It ended before this sweep was resumed: its run exists, and maybe its model
                # was never stored (a killed driver never got here). Its checkpoints remain.
                tags["sweep.best_run_name"] = run_name(self._indices[best["trial_id"]], best["config"])
                if self._log_model and self._find_checkpoint is not None:
                    self._store_model(best["trial_id"], self._find_checkpoint(best["trial_id"]))
        self._close_open_trials()
        self.writer.log(PARENT, metrics=metrics, step=self._ended, tags=tags)
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

    def _end(self, key: str, run: _TrialRun, outcome: str, error: str | None) -> None:
        if run.outcome is not None:
            return
        run.outcome = outcome
        result = run.last_result
        stopped = int(result["iteration"]) if result else 0
        self.writer.log(key, tags={
            "sweep.state": outcome,
            "sweep.stopped_at_iteration": stopped,
            "sweep.rung": rung_reached(result, self._milestones, self._budget_unit),
        })
        if error:
            self.writer.log_text(key, error, "error.txt")
        self.writer.end_run(key, STATUS[outcome])
        self._ended += 1
        counts: dict[str, float] = {f"trials_{o}": 0 for o in STATUS if o != "interrupted"}
        for other in self.trials.values():
            if other.outcome in STATUS and other.outcome != "interrupted":
                counts[f"trials_{other.outcome}"] += 1
        # The parent's counts grow as trials end, one step per ended trial.
        self.writer.log(PARENT, metrics=counts, step=self._ended)

    def _close_open_trials(self) -> None:
        for key, run in self.trials.items():
            if run.outcome is None:
                self._end(key, run, "interrupted", None)

    def _store_model(self, key: str, checkpoint: Any) -> None:
        path = _checkpoint_file(checkpoint)
        if path is None:
            _logger.warning("The best trial %s left no checkpoint, so no model weights were stored "
                            "in MLflow (set `checkpoint.every_epochs` >= 1).", key)
            return
        self.writer.log_artifact(key, path, "model")


def _latest_checkpoint(trial: Any) -> Any:
    try:
        return trial.checkpoint
    except Exception:  # noqa: BLE001 - a trial without a checkpoint manager has none
        return None


def _checkpoint_file(checkpoint: Any) -> str | None:
    """The local ``state.pt`` of a Ray checkpoint or checkpoint folder (model, optimizer,
    iteration), if any."""
    if checkpoint is None:
        return None
    candidate = os.path.join(str(getattr(checkpoint, "path", checkpoint)), "state.pt")
    if os.path.exists(candidate):
        return candidate
    try:  # a checkpoint on remote storage (e.g. s3://): fetch it next to the sweep
        import tempfile

        local = checkpoint.to_directory(tempfile.mkdtemp(prefix="sweeps-best-model-"))
        candidate = os.path.join(local, "state.pt")
        return candidate if os.path.exists(candidate) else None
    except Exception:  # noqa: BLE001 - storing the model is best-effort
        return None
