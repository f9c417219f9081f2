"""Opening a sweep's MLflow record: experiment, parent run, writer and callback.

The parent run is created synchronously, before Ray starts: if MLflow cannot take it,
the user learns so at once (:class:`~sweeps.errors.TrackingError`, exit code 2) and no
trial runs. Everything after that goes through the background writer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sweeps.errors import TrackingError
from sweeps.plan.planner import SweepPlan
from sweeps.ray_backend.formats import ray_trial_files
from sweeps.spec.loading import LoadedSpec
from sweeps.spec.sampler_options import effective_options
from sweeps.store.checkpoints import latest_checkpoint
from sweeps.store.state import SweepPaths
from sweeps.tracking.callback import PARENT, MlflowTracker
from sweeps.tracking.parent_sessions import (
    SESSIONS_TAG,
    EarlierSessions,
    read_earlier_sessions,
    session_params,
)
from sweeps.tracking.preflight import experiment_name, open_experiment, tracking_uri, wait_for_store
from sweeps.tracking.runs import RunsFile
from sweeps.tracking.writer import TrackingWriter


def start_tracking(
    loaded: LoadedSpec,
    plan: SweepPlan,
    paths: SweepPaths,
    ended_before: dict[str, int] | None = None,
    **writer_options: Any,
) -> MlflowTracker:
    """Create (or, for a resumed sweep, reopen) the parent run and return the callback.

    ``ended_before``: outcome → trials that ended in the sweep's earlier sessions (a
    resumed sweep), so the parent's ``trials_*`` counts go on from them, not from 0.

    Example::

        tracker = start_tracking(loaded, plan, paths)
        try:
            ...  # tune.Tuner(..., run_config=RunConfig(callbacks=[tracker])).fit()
            tracker.finish(summary)
        finally:
            tracker.close()
    """
    spec = loaded.spec
    uri = tracking_uri(spec, paths)
    # First: importing mlflow here while preflight's thread imports it too leaves its
    # protobuf modules half-built ("Depends on file 'databricks.proto'").
    wait_for_store(uri)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment_id = open_experiment(client, spec, paths, loaded.source)
    runs = RunsFile.load(paths.directory, uri)
    runs.experiment_id = experiment_id
    earlier = _open_parent_run(client, runs, loaded, uri, experiment_id)

    writer = TrackingWriter(
        uri,
        known_runs={PARENT: runs.parent, **runs.trials},  # type: ignore[dict-item]
        on_run_created=runs.record,
        **writer_options,
    ).start()
    tracker = MlflowTracker(
        writer,
        experiment_id,
        sweep_name=spec.name,
        metric=spec.metric,
        mode=spec.mode,
        dataset_size=plan.dataset_size,
        drop_last=plan.drop_last,
        milestones=plan.milestones(),
        workers=plan.workers,
        budget_unit=spec.budget_unit,
        log_model=spec.tracking.log_model,
        indices=runs.indices,
        on_index=runs.note_index,
        find_checkpoint=lambda trial_id: _as_text(latest_checkpoint(ray_trial_files(paths), trial_id)),
        ended_before=ended_before,
        first_step=earlier.last_step if earlier else 0,
        find_trial_folder=lambda trial_id: paths.trials_directory / trial_id,
        model_folder=paths.directory / "best_model",
        checkpoint_every_epochs=spec.checkpoint.every_epochs,
    )
    _log_sweep_to_parent(writer, loaded, plan, earlier)
    return tracker


def _open_parent_run(
    client: Any, runs: RunsFile, loaded: LoadedSpec, uri: str, experiment_id: str
) -> EarlierSessions | None:
    """Create the sweep's parent run, or reopen a resumed sweep's.

    Returns what the earlier sessions of a resumed sweep logged, or None for a new sweep.
    """
    from mlflow.exceptions import MlflowException

    spec = loaded.spec
    try:
        if runs.parent is None:
            parent = client.create_run(
                experiment_id,
                run_name=spec.name,
                tags={
                    "sweep.name": spec.name,
                    "sweep.role": "parent",
                    "sweep.state": "running",
                },
            )
            runs.record(PARENT, parent.info.run_id)
        else:
            client.update_run(runs.parent, status="RUNNING")
            earlier = read_earlier_sessions(client, runs.parent)
            runs.save()
            return earlier
    except MlflowException as exc:
        raise TrackingError(
            f"{loaded.source}: MLflow at `tracking.uri` {uri!r} refused the sweep's parent run in "
            f"experiment {experiment_name(spec)!r} ({str(exc).splitlines()[0][:400]}). Check the "
            "server and its permissions. No trial was started."
        ) from None
    return None


def _log_sweep_to_parent(
    writer: TrackingWriter, loaded: LoadedSpec, plan: SweepPlan, earlier: EarlierSessions | None
) -> None:
    """The sweep's params, and its spec as given and as run, on the parent run."""
    params = sweep_params(loaded, plan)
    if earlier is None:
        writer.log(PARENT, params=params, tags={SESSIONS_TAG: 1})
    else:  # MLflow refuses to change a param: a changed setting is a new one, per session
        new_params, tags = session_params(params, earlier)
        writer.log(PARENT, params=new_params, tags=tags)
    if loaded.path.is_file():
        writer.log_artifact(PARENT, str(loaded.path), "spec")
    # The file as given plus any --set overrides: exactly what this sweep ran.
    writer.log_text(PARENT, yaml.safe_dump(loaded.raw, sort_keys=False), "spec/effective_spec.yaml")


def sweep_params(loaded: LoadedSpec, plan: SweepPlan) -> dict[str, Any]:
    """The parent run's params: what was searched, how, and with which seed."""
    from sweeps.spec.scaling import config_keys, learning_rate_scale

    spec = loaded.spec
    params: dict[str, Any] = {
        "trainable": spec.trainable,
        "metric": spec.metric,
        "mode": spec.mode,
        "num_samples": spec.num_samples,
        "max_concurrent": spec.max_concurrent,
        "seed": spec.seed,
        "sampler": spec.sampler.type,
        # failure.avoid as it applies: on for TPE unless turned off, never for the others.
        "failure.avoid": spec.sampler.type == "tpe" and spec.failure.avoid is not False,
        "scheduler": plan.scheduler,
        "scheduler.budget": spec.budget_unit,
        "dataset_size": plan.dataset_size,
        "search_space": ", ".join(config_keys(spec)),
    }
    # The sampler's options as it was built with them: the spec's plus our defaults
    # (`sampler.constant_liar` for TPE), so two sweeps' samplers can be compared in MLflow.
    options = effective_options(spec.sampler.type, spec.sampler.options)
    params.update({f"sampler.{option}": value for option, value in options.items()})
    scale = learning_rate_scale(spec)
    if scale is not None:
        params["learning_rate.scale"] = f"{scale.rule}, reference_batch_size {scale.reference_batch_size}"
    if plan.scheduler == "asha":
        params.update(
            {
                "scheduler.grace_period": plan.grace_period,  # the number used, derived or given
                "scheduler.grace_period_auto": plan.grace_period_auto,
                "scheduler.reduction_factor": plan.reduction_factor,
                "scheduler.max_t": plan.max_t,
                "scheduler.brackets": len(plan.brackets),
            }
        )
    return params


def _as_text(path: Path | None) -> str | None:
    return str(path) if path is not None else None
