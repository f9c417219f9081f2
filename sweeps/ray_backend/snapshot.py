"""Ray Tune's experiment state on disk, read and corrected before ``Tuner.restore``.

Ray writes, under ``<storage>/<name>/ray/``, one set of files per driver session:

- ``experiment_state-<session>.json``: every trial (status, config, checkpoints) and the
  controller's own attributes, snapshotted every few seconds (not atomically);
- ``search_gen_state-<session>.json``: the trial generator's counter and total and the
  concurrency limiter's live trials (cloudpickle);
- ``searcher-state-<session>.pkl``: the pickled searcher, which we never read (the
  Optuna study is the truth, see :mod:`sweeps.ray_backend.searcher`).

The snapshot lags the study by up to a checkpoint period, so before Ray restores it
(:mod:`~sweeps.ray_backend.resume`, as the runner's reconcile decided) we mark the trials
the study finished as TERMINATED, add the trials Ray never recorded
(with their original ids, so Optuna, MLflow and the journal keep matching them), set the
generator's totals, and drop the pickled stopper, which would replace the live one.
Everything Ray-version-specific about resuming lives in this module.
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweeps.ray_backend.formats import RayTrialFiles
from sweeps.store.atomic import write_atomically
from sweeps.store.state import RAY_FOLDER

EXPERIMENT_STATE_GLOB = "experiment_state-*.json"
GENERATOR_STATE_GLOB = "search_gen_state-*.json"
UNFINISHED = ("PENDING", "RUNNING", "PAUSED")


@dataclass
class RayTrial:
    trial_id: str
    status: str
    config: dict[str, Any]
    last_result: dict[str, Any]
    relative_logdir: str | None


@dataclass
class RayExperimentState:
    """The newest readable experiment snapshot, with what is needed to correct it."""

    path: Path
    data: dict[str, Any]
    trials: dict[str, RayTrial] = field(default_factory=dict)
    set_aside: list[Path] = field(default_factory=list)  # unreadable newer snapshots

    @property
    def unfinished(self) -> list[str]:
        return [t.trial_id for t in self.trials.values() if t.status in UNFINISHED]


# compat: experiment-state-format
def load_experiment_state(
    ray_directory: Path, set_aside: list[Path] | None = None
) -> RayExperimentState | None:
    """The newest experiment snapshot that parses; torn newer ones are renamed aside
    (and added to ``set_aside``)."""
    set_aside = [] if set_aside is None else set_aside
    for name in sorted(glob.glob(str(ray_directory / EXPERIMENT_STATE_GLOB)), reverse=True):
        path = Path(name)
        try:
            data = json.loads(path.read_text())
            trials = {}
            for trial_json, metadata_json in data["trial_data"]:
                state, metadata = json.loads(trial_json), json.loads(metadata_json)
                trials[state["trial_id"]] = RayTrial(
                    state["trial_id"],
                    state["status"],
                    dict(state.get("config") or {}),
                    dict(metadata.get("last_result") or {}),
                    state.get("relative_logdir"),
                )
        except (OSError, ValueError, KeyError, TypeError):
            # Ray writes this file in place; a driver killed mid-write leaves it torn.
            aside = path.with_name(path.name + ".torn")
            os.replace(path, aside)
            set_aside.append(aside)
            continue
        return RayExperimentState(path, data, trials, set_aside)
    return None


def orphan_trial_json(
    paths_directory: Path,
    trial_id: str,
    config: dict[str, Any],
    evaluated: dict[str, Any],
    tag: str,
    restore_path: str | None,
    template: dict[str, Any],
) -> tuple[str, str]:
    """Ray's JSON state for a trial the study has but Ray's snapshot missed.

    It keeps its trial id and folder; ``restore_path`` (its last checkpoint the journal
    saw completed) makes Ray start it from there, or from scratch when None.
    """
    # compat: train-storage
    # compat: trial-internals
    from ray import tune
    from ray.train._internal.storage import StorageContext
    from ray.tune.execution.placement_groups import resource_dict_to_pg_factory
    from ray.tune.experiment.trial import Trial

    files = RayTrialFiles(paths_directory / RAY_FOLDER)
    folder = files.current_folder(trial_id)
    storage = StorageContext(
        storage_path=str(paths_directory),
        experiment_dir_name=RAY_FOLDER,
        trial_dir_name=folder.name if folder else None,
        # One past its highest checkpoint in any of its folders (sweeps.ray_backend.formats).
        current_checkpoint_index=files.next_checkpoint_index(trial_id) if folder else -1,
    )
    trial = Trial(
        template["trainable_name"],
        config=config,
        trial_id=trial_id,
        storage=storage,
        evaluated_params=evaluated,
        experiment_tag=tag,
        checkpoint_config=tune.CheckpointConfig(num_to_keep=template["num_to_keep"]),
        max_failures=template["max_failures"],
        restore_path=restore_path,
        stub=True,
    )
    # Ray's Trial initialises `relative_logdir = None` and assigns it a folder name itself.
    trial.relative_logdir = folder.name if folder else None  # type: ignore[assignment]
    # As for Ray's own trials of a `tune.with_resources` trainable: no default resource
    # request on the trial (the trainable carries it), the factory set directly.
    trial.placement_group_factory = resource_dict_to_pg_factory(template["resources"])
    state_json, metadata_json = trial.get_json_state()
    state = json.loads(state_json)
    state["stub"] = False  # built without the trainable registered; Ray restores it for real
    return json.dumps(state), metadata_json


def save_corrected_state(
    experiment: RayExperimentState,
    *,
    finished: set[str],
    added: list[tuple[str, str]],
    num_samples: int,
) -> None:
    """Write the corrected snapshot and generator state that ``Tuner.restore`` will read."""
    data = experiment.data
    trial_data = []
    for trial_json, metadata_json in data["trial_data"]:
        state = json.loads(trial_json)
        if state["trial_id"] in finished and state["status"] in UNFINISHED:
            state["status"] = "TERMINATED"
            trial_json = json.dumps(state)
        trial_data.append([trial_json, metadata_json])
    trial_data.extend([list(pair) for pair in added])
    data["trial_data"] = trial_data
    runner = data["runner_data"]
    # The pickled stopper would replace the live one (and its ledger); an interrupted
    # session may also have left the experiment flagged to stop.
    runner.pop("_stopper", None)
    runner["_should_stop_experiment"] = False
    _check_restorable(trial_data)
    write_atomically(experiment.path, json.dumps(data).encode())

    live = [json.loads(t)["trial_id"] for t, _ in trial_data if json.loads(t)["status"] in UNFINISHED]
    _correct_generator_state(experiment.path.parent, len(trial_data), num_samples, live)


def _check_restorable(trial_data: list[list[str]]) -> None:
    """Parse every trial as Ray will, so a bad state fails here rather than silently."""
    from ray.tune.experiment.trial import Trial

    for trial_json, metadata_json in trial_data:
        Trial.from_json_state(trial_json, stub=True).restore_run_metadata(metadata_json)


# compat: restore-failure-log
def guard_against_silent_restart() -> None:
    """Make a failed restore an error: Ray logs it and starts the experiment afresh instead.

    Ray's ``TuneController`` catches any exception while restoring, logs "Failed to
    restore the run state" and runs a new experiment of one trial. For a sweep that must
    end with exactly ``num_samples`` trials, that is data loss; raising from a logging
    filter is the one hook Ray leaves.
    """
    import logging

    logger = logging.getLogger("ray.tune.execution.tune_controller")
    if not any(isinstance(f, _RestoreFailure) for f in logger.filters):
        logger.addFilter(_RestoreFailure())
        logger.setLevel(logging.ERROR)  # let the record be made even when ray.tune is quieted


class _RestoreFailure:
    def filter(self, record: Any) -> bool:
        if str(record.msg).startswith("Failed to restore the run state"):
            from sweeps.errors import StateError

            raise StateError(
                "Ray Tune could not restore the sweep's experiment state "
                f"({record.exc_info[1] if record.exc_info else 'unknown error'}). "
                "Nothing was run. Report this with the sweep's `ray/` folder."
            )
        return False  # the runner keeps Tune's other errors off the terminal (see _quiet_tune_logs)


# compat: generator-state-format
def _correct_generator_state(ray_directory: Path, created: int, total: int, live: list[str]) -> None:
    from ray import cloudpickle

    names = sorted(glob.glob(str(ray_directory / GENERATOR_STATE_GLOB)))
    if not names:
        raise FileNotFoundError(f"no {GENERATOR_STATE_GLOB} in {ray_directory}")
    path = Path(names[-1])
    state = cloudpickle.loads(path.read_bytes())
    state.update(counter=created, total_samples=total, finished=created >= total)
    limiter = state.get("name:ConcurrencyLimiter")
    if isinstance(limiter, dict):
        limiter.update(live_trials=set(live), num_unfinished_live_trials=len(live), cached_results={})
    write_atomically(path, cloudpickle.dumps(state))  # type: ignore[no-untyped-call]  # unannotated in Ray's vendored copy


def clear_driver_staging(ray_directory: Path) -> None:
    """Remove stale copies of the state files from the driver's staging folder.

    Ray restores from ``<ray session>/artifacts/<first run's timestamp>/ray/driver_artifacts``
    after copying the storage's files there, then takes the newest file *by name*. In a Ray
    session that outlives one driver (a cluster, or the test session), that folder still
    holds files of earlier drivers, possibly newer-named than the corrected ones.
    """
    from ray import cloudpickle

    # A private helper that module imports rather than defines (so not an explicit export).
    from ray.train._internal.storage import _get_ray_train_session_dir  # type: ignore[attr-defined]

    experiment = load_experiment_state(ray_directory)
    if experiment is None or not experiment.data["trial_data"]:
        return
    stamps = set()
    for trial_json, _ in experiment.data["trial_data"]:
        storage = json.loads(trial_json).get("storage")
        if isinstance(storage, dict) and "value" in storage:
            stamps.add(getattr(cloudpickle.loads(bytes.fromhex(storage["value"])), "_timestamp", None))
    for stamp in stamps - {None}:
        staging = Path(_get_ray_train_session_dir()) / str(stamp) / ray_directory.name / "driver_artifacts"
        for pattern in (EXPERIMENT_STATE_GLOB, GENERATOR_STATE_GLOB, "searcher-state-*.pkl"):
            for stale in staging.glob(pattern):
                stale.unlink(missing_ok=True)


def has_generator_state(ray_directory: Path) -> bool:
    return bool(glob.glob(str(ray_directory / GENERATOR_STATE_GLOB)))
