"""Read a sweep back from MLflow with ``MlflowClient`` and check the tracking contract.

Shared by the embedded-store, tracking-server and server-outage tests, so all three hold
the store to the same promises.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

#: Nothing of Ray's bookkeeping may appear as a metric.
RAY_BOOKKEEPING = {
    "training_iteration",
    "time_total_s",
    "time_this_iter_s",
    "time_since_restore",
    "timestamp",
    "done",
    "pid",
    "trial_id",
    "node_ip",
    "hostname",
    "date",
    "iterations_since_restore",
    "checkpoint_dir_name",
    "config",
    "iteration",
    "iterations_per_epoch",
    "total_iterations",
    "dataset_size",
    "diverged",
    "node_id",
}
RUN_NAME = re.compile(r"^t\d{3} bs=\d+ lr=\d\.\de[-+]\d\d ep=\d+( \S+=\S+)*$")


@dataclass
class SweepRecord:
    client: Any
    parent: Any
    children: list[Any]

    def child(self, trial_id: str) -> Any:
        return next(r for r in self.children if r.data.tags["sweep.trial_id"] == trial_id)

    def steps(self, run: Any, key: str) -> list[int]:
        return [m.step for m in self.client.get_metric_history(run.info.run_id, key)]


def read_sweep(uri: str, name: str, experiment: str | None = None) -> SweepRecord:
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment or name)
    assert found is not None, f"no experiment {experiment or name!r} at {uri}"
    runs = client.search_runs(
        [found.experiment_id], filter_string=f"tags.`sweep.name` = '{name}'", max_results=1000
    )
    parents = [r for r in runs if r.data.tags.get("sweep.role") == "parent"]
    assert len(parents) == 1, [r.info.run_name for r in parents]
    children = [r for r in runs if r.data.tags.get("sweep.role") == "trial"]
    return SweepRecord(client, parents[0], children)


def check_contract(
    record: SweepRecord,
    summary: Any,
    results: dict[str, list[dict[str, Any]]],
    metric: str,
    milestones: list[float],
    dataset_size: int,
) -> None:
    """Every promise of the tracking contract, checked against the runner's own summary and
    ``results``, the ground truth of every result Ray delivered (trial id → results)."""
    parent = record.parent
    outcomes = {r["trial_id"]: r for r in summary.trial_records}
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["sweep.state"] == "finished"
    assert {r.data.tags["sweep.trial_id"] for r in record.children} == set(outcomes)
    for run in record.children:
        tags, params = run.data.tags, run.data.params
        trial = outcomes[tags["sweep.trial_id"]]
        reported = results.get(tags["sweep.trial_id"], [])
        # Nested under the parent, readable name, never left RUNNING, honest state.
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert RUN_NAME.match(run.info.run_name), run.info.run_name
        assert tags["sweep.state"] == trial["outcome"]
        assert run.info.status == {"completed": "FINISHED", "pruned": "FINISHED"}.get(
            trial["outcome"], "FAILED"
        )
        assert int(tags["sweep.stopped_at_iteration"]) == trial["iterations"]
        assert int(tags["sweep.rung"]) == sum(1 for m in milestones if trial["iterations"] >= m) - 1
        # Params: every sampled hyperparameter plus the derived counts.
        config = trial["config"]
        for key, value in config.items():
            assert params[key] == str(value)
        per_epoch = math.ceil(dataset_size / config["batch_size"])
        assert params["iterations_per_epoch"] == str(per_epoch)
        assert params["total_iterations"] == str(per_epoch * config["epochs"])
        assert params["dataset_size"] == str(dataset_size)
        if trial["outcome"] in ("failed", "diverged"):
            assert "error.txt" in {a.path for a in record.client.list_artifacts(run.info.run_id)}
        if not reported:  # failed before its first report
            assert trial["outcome"] == "failed" and not run.data.metrics
            continue
        assert tags["sweep.node"] == reported[-1]["node_id"]
        # Metrics: the trainable's plus epoch and samples_seen, nothing of Ray's, step = iteration.
        assert set(run.data.metrics) == {metric, "val_loss", "train_loss", "epoch", "samples_seen"}
        assert not set(run.data.metrics) & RAY_BOOKKEEPING
        steps = record.steps(run, metric)
        assert steps == [int(r["iteration"]) for r in reported], "a result is missing or extra"
        assert record.steps(run, "samples_seen") == steps
        if trial["outcome"] == "pruned":
            assert steps[-1] == int(tags["sweep.stopped_at_iteration"]) < int(params["total_iterations"])
            # Why ASHA stopped it: the rung its last report reached, its value there, and the
            # cut-off it fell below (these sweeps maximise, and count iterations).
            rung, value, cutoff = (
                float(tags[f"sweep.{key}"]) for key in ("stopped_at_rung", "rung_value", "rung_cutoff")
            )
            assert rung in milestones and steps[-1] >= rung
            assert value == reported[-1][metric] < cutoff
        else:
            assert not {"sweep.stopped_at_rung", "sweep.rung_value", "sweep.rung_cutoff"} & set(tags)
        if trial["outcome"] == "completed":
            assert steps[-1] == int(params["total_iterations"])
        for point in record.client.get_metric_history(run.info.run_id, "epoch"):
            assert abs(point.value - point.step / per_epoch) < 1e-9  # epoch = iteration / per epoch
    # The parent: sampler, scheduler and seed; counts; iterations; best trial.
    params, metrics, tags = parent.data.params, parent.data.metrics, parent.data.tags
    assert {
        "sampler",
        "scheduler",
        "seed",
        "scheduler.grace_period",
        "scheduler.reduction_factor",
        "scheduler.max_t",
        "scheduler.brackets",
        "scheduler.grace_period_auto",
        "metric",
        "mode",
    } <= set(params)
    for outcome, count in summary.trials.items():
        assert metrics[f"trials_{outcome}"] == count
    assert metrics["iterations_used"] == summary.iterations_used
    assert metrics["iterations_worst_case"] == summary.iterations_worst_case
    if summary.best:
        assert tags["sweep.best_trial_id"] == summary.best["trial_id"]
        assert metrics[f"best_{metric}"] == summary.best["value"]
        for key, value in summary.best["config"].items():
            assert tags[f"best.{key}"] == str(value)
    artifacts = {a.path for a in record.client.list_artifacts(parent.info.run_id, "spec")}
    assert "spec/effective_spec.yaml" in artifacts


def check_runs_file(directory: Path, record: SweepRecord, uri: str) -> None:
    """``mlflow_runs.json`` names the parent and every child run."""
    saved = json.loads((directory / "mlflow_runs.json").read_text())
    assert saved["tracking_uri"] == uri
    assert saved["parent"] == record.parent.info.run_id
    assert saved["trials"] == {r.data.tags["sweep.trial_id"]: r.info.run_id for r in record.children}
