"""Mend a crashed sweep's MLflow runs before it resumes.

The tracking writer batches records off the driver's hot path (and MLflow on SQLite
takes tens of milliseconds a call), so a driver killed with ``kill -9`` loses the
records still in its buffer: steps, whole child runs, and the end of runs whose trial
had finished. Before ``sweep resume`` reopens the runs, this module makes them agree
with the Optuna study and the result journal (:mod:`sweeps.store.journal`):

- every trial of the study gets its child run (same name, tags and params the tracker
  gives it), so the sweep ends with exactly one child run per trial;
- steps the journal holds but a run lacks are logged, so no step sequence has a hole;
- runs of trials that finished before the crash get their final ``sweep.*`` tags (with
  the bracket, and the rung, value and cut-off of a pruned trial, from the study) and
  status (with the error as ``error.txt`` for a failed trial), so none stays RUNNING.

Runs of trials that continue are reopened by the tracker (same run id) when the trial
starts again; its worker skips the iterations the journal holds, so none repeats.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from sweeps.outcomes import Outcome, TrialRecord
from sweeps.plan.planner import SweepPlan
from sweeps.ray_backend.formats import ray_trial_files
from sweeps.spec.loading import LoadedSpec
from sweeps.store.state import SweepPaths, is_embedded_tracking_uri
from sweeps.tracking.callback import trial_metrics
from sweeps.tracking.naming import run_name
from sweeps.tracking.preflight import open_experiment, tracking_uri, wait_for_store
from sweeps.tracking.runs import RUNS_FILE, RunsFile
from sweeps.tracking.trial_runs import ended_run_tags, run_params, run_status, schedule_tags, started_run_tags

_logger = logging.getLogger("sweeps.tracking")
_BATCH = 1000  # MLflow's limit of metrics per log_batch call


def recover_runs(loaded: LoadedSpec, plan: SweepPlan, paths: SweepPaths, resumption: Any) -> dict[str, int]:
    """Create lost runs, fill lost steps, close finished trials' runs; returns counts."""
    spec = loaded.spec
    uri = tracking_uri(spec, paths)
    wait_for_store(uri)  # preflight may still be importing mlflow on its thread
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    runs = RunsFile.load(paths.directory, uri)
    counts = {"runs_created": 0, "steps_filled": 0, "runs_closed": 0}
    if runs.parent is None:
        return counts  # the sweep never reached MLflow: the tracker starts it as new
    client = MlflowClient(uri)
    experiment_id = runs.experiment_id or open_experiment(client, spec, paths, loaded.source)
    ended = {record.trial_id: record for record in resumption.records}
    stamp = int(time.time() * 1000)
    for trial_id, config in resumption.trials:
        results = resumption.journal.get(trial_id, [])
        record = ended.get(trial_id)
        try:
            run_id = runs.trials.get(trial_id)
            if run_id is None:
                if record is None and not results:
                    continue  # it never reported; the tracker opens its run when it starts
                run_id = _create_run(
                    client,
                    runs,
                    experiment_id,
                    spec.name,
                    trial_id,
                    config,
                    plan,
                    resumption.schedule(trial_id),
                )
                counts["runs_created"] += 1
            counts["steps_filled"] += _fill_steps(client, run_id, spec.metric, results, stamp)
            # KILLED too: a trial that finished as the sweep was being stopped.
            if record is not None and client.get_run(run_id).info.status in (
                "RUNNING",
                "SCHEDULED",
                "KILLED",
            ):
                _close(
                    client,
                    run_id,
                    record,
                    plan.milestones(),
                    spec.budget_unit,
                    paths,
                    resumption.schedule(trial_id),
                )
                counts["runs_closed"] += 1
        except MlflowException as exc:
            _logger.warning(
                "Could not mend the MLflow run of trial %s: %s", trial_id, str(exc).splitlines()[0]
            )
    return counts


def _fill_steps(client: Any, run_id: str, metric: str, results: list[dict[str, Any]], stamp: int) -> int:
    """Log the journal's results that the run lacks (by step); returns how many steps were filled."""
    from mlflow.entities import Metric

    logged = {m.step for m in client.get_metric_history(run_id, metric)}
    metrics = [
        Metric(key, value, stamp, int(result["iteration"]))
        for result in results
        if int(result.get("iteration", -1)) not in logged and metric in result
        for key, value in trial_metrics(result).items()
    ]
    for start in range(0, len(metrics), _BATCH):
        client.log_batch(run_id, metrics=metrics[start : start + _BATCH], synchronous=True)
    return len({m.step for m in metrics})


def _create_run(
    client: Any,
    runs: RunsFile,
    experiment_id: str,
    sweep: str,
    trial_id: str,
    config: dict[str, Any],
    plan: SweepPlan,
    schedule: dict[str, Any],
) -> str:
    """The child run the tracker would have opened (see MlflowTracker.trial_started)."""
    from mlflow.entities import Param

    index = runs.indices.get(trial_id) or max(runs.indices.values(), default=0) + 1
    run = client.create_run(
        experiment_id,
        run_name=run_name(index, config),
        tags={
            **started_run_tags(sweep, trial_id),
            **schedule_tags(schedule),
            "mlflow.parentRunId": str(runs.parent),
        },
    )
    params = run_params(config, plan.dataset_size, plan.drop_last, plan.workers)
    client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()], synchronous=True)
    runs.note_index(trial_id, index)
    runs.record(trial_id, run.info.run_id)
    return str(run.info.run_id)


def _close(
    client: Any,
    run_id: str,
    record: TrialRecord,
    milestones: list[float],
    budget_unit: str,
    paths: SweepPaths,
    schedule: dict[str, Any],
) -> None:
    outcome = record.outcome or Outcome.FAILED
    tags = {
        **ended_run_tags(outcome, record.last_result, milestones, budget_unit),
        **schedule_tags(schedule, outcome),
    }
    for key, value in tags.items():
        client.set_tag(run_id, key, str(value))
    if outcome == Outcome.FAILED:
        client.log_text(run_id, _error_text(paths, record), "error.txt")
    client.set_terminated(run_id, status=run_status(outcome))


def _error_text(paths: SweepPaths, record: TrialRecord) -> str:
    text = ray_trial_files(paths).error_text(record.trial_id)
    if text is not None:
        return text
    return (record.error or "the trial failed; its driver died before recording the error") + "\n"


def rebase_embedded_store(paths: SweepPaths, loaded: LoadedSpec) -> None:
    """Point the runs file at the embedded store's new URI after the storage folder moved.

    The embedded store's URI is derived from the storage path, and the runs file keeps
    run ids only for the URI they were created under; a sweep copied elsewhere (say, off
    a full disk) keeps its store, so its run ids stay valid under the new URI.
    """
    path = paths.directory / RUNS_FILE
    if loaded.spec.tracking.uri is not None or not path.is_file():
        return
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    old = str(data.get("tracking_uri") or "")
    if old != paths.embedded_tracking_uri and is_embedded_tracking_uri(old):
        data["tracking_uri"] = paths.embedded_tracking_uri
        RunsFile(
            path,
            paths.embedded_tracking_uri,
            data.get("experiment_id"),
            data.get("parent"),
            dict(data.get("trials") or {}),
            {k: int(v) for k, v in (data.get("indices") or {}).items()},
        ).save()
