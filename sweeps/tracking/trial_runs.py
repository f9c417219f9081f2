"""What a trial's MLflow child run holds, written once for live tracking and for recovery.

The tracker (:mod:`sweeps.tracking.callback`) writes these through the tracking writer
as trials start and end; recovery (:mod:`sweeps.tracking.recovery`) writes the same through
an MLflow client for trials whose records a killed driver lost. Either way a trial's run
has the same name, tags, params and end, so the UI cannot tell them apart.
"""

from __future__ import annotations

import json
from typing import Any

from sweeps.iterations import TrialShape
from sweeps.outcomes import Outcome, rung_reached


def started_run_tags(sweep_name: str, trial_id: str) -> dict[str, str]:
    """The tags of a trial's run while it runs (``sweep.state`` changes when it ends)."""
    return {
        "sweep.name": sweep_name,
        "sweep.role": "trial",
        "sweep.trial_id": trial_id,
        "sweep.state": "running",
    }


def run_params(
    config: dict[str, Any], dataset_size: int, drop_last: bool, workers: int = 1
) -> dict[str, Any]:
    """The sampled hyperparameters plus the iteration arithmetic they imply (and, for a
    data-parallel trial, its workers and what each takes of the global batch)."""
    shape = TrialShape(dataset_size, int(config["batch_size"]), int(config["epochs"]), drop_last)
    params = {
        **config,
        "iterations_per_epoch": shape.iterations_per_epoch,
        "total_iterations": shape.total_iterations,
        "dataset_size": shape.dataset_size,
    }
    if workers > 1:
        params.update(workers=workers, per_worker_batch_size=shape.batch_size // workers)
    return params


def ended_run_tags(
    outcome: str, last_result: dict[str, Any] | None, milestones: list[float], budget_unit: str
) -> dict[str, Any]:
    """The tags that say how the trial ended: its outcome, last iteration and rung."""
    return {
        "sweep.state": str(outcome),
        "sweep.stopped_at_iteration": int(last_result["iteration"]) if last_result else 0,
        "sweep.rung": rung_reached(last_result, milestones, budget_unit),
    }


def run_status(outcome: str) -> str:
    """The MLflow status of a run whose trial ended with ``outcome``."""
    return Outcome(outcome).mlflow_status


def schedule_tags(schedule: dict[str, Any], outcome: str | None = None) -> dict[str, str]:
    """What ASHA said of the trial: its bracket (``sweep.bracket``, with brackets) and, for a
    trial it pruned, the rung it stopped at (in the budget unit), its value there and the
    rung's cut-off, the value it had to reach (``sweep.stopped_at_rung``, ``sweep.rung_value``,
    ``sweep.rung_cutoff``)."""
    tags: dict[str, str] = {}
    if "bracket" in schedule:
        tags["sweep.bracket"] = str(schedule["bracket"])
    if outcome == Outcome.PRUNED.value and "rung_rank" in schedule:
        # Several objectives (MOASHA): no cut-off, but its rank at the rung and how many went on.
        tags.update(
            {
                "sweep.stopped_at_rung": f"{schedule['stopped_at_rung']:.12g}",
                "sweep.rung_values": json.dumps([float(v) for v in schedule["rung_values"]]),
                "sweep.rung_rank": str(schedule["rung_rank"]),
                "sweep.rung_kept": str(schedule["rung_kept"]),
            }
        )
    elif outcome == Outcome.PRUNED.value and "stopped_at_rung" in schedule:
        # repr-exact numbers: the tag reads back as the very value ASHA compared.
        tags.update(
            {
                "sweep.stopped_at_rung": f"{schedule['stopped_at_rung']:.12g}",
                "sweep.rung_value": repr(float(schedule["rung_value"])),
                "sweep.rung_cutoff": repr(float(schedule["rung_cutoff"])),
            }
        )
    return tags
