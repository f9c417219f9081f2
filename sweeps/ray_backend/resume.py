"""The Ray backend's half of ``sweep resume``: Ray's experiment snapshot, read and corrected.

:meth:`RayBackend.saved_sweep <sweeps.ray_backend.backend.RayBackend.saved_sweep>` reads
the newest readable snapshot (:mod:`~sweeps.ray_backend.snapshot`) as a
:class:`~sweeps.backend.resume.SavedSweep`; once the runner has reconciled it with the
study and the journal (:mod:`sweeps.runner.reconcile`), :func:`prepare_resume` writes the
corrected snapshot that ``Tuner.restore`` reads (:mod:`~sweeps.ray_backend.restore`):
finished trials TERMINATED, trials Ray never saw added back under their own ids from
their last checkpoint the journal saw completed, the generator's totals set.
"""

from __future__ import annotations

import json
from typing import Any

from sweeps.backend.resume import (
    AddedTrial,
    ResumePlan,
    ResumeState,
    SavedStatus,
    SavedSweep,
    SavedTrial,
    delivered_for,
    fresh_start,
)
from sweeps.ray_backend.formats import RayTrialFiles
from sweeps.ray_backend.snapshot import (
    UNFINISHED,
    RayExperimentState,
    has_generator_state,
    load_experiment_state,
    orphan_trial_json,
    save_corrected_state,
)
from sweeps.store.state import SweepPaths

#: Ray's trial statuses as the runner's reconcile sees them.
_STATUS: dict[str, SavedStatus] = {
    "TERMINATED": "ended",
    "ERROR": "errored",
    **dict.fromkeys(UNFINISHED, "unfinished"),
}


def saved_sweep(paths: SweepPaths) -> SavedSweep:
    """Ray's newest readable snapshot of the sweep; torn newer ones are set aside (and noted).

    A snapshot without the trial generator's state cannot be restored (a driver killed
    before Ray's first complete snapshot): the sweep is then not continuable."""
    experiment, set_aside = _load(paths)
    notes = [f"set aside a torn Ray snapshot: {p.name}" for p in set_aside]
    if experiment is None:
        return SavedSweep(continuable=False, notes=notes)
    trials = {
        t.trial_id: SavedTrial(_STATUS.get(t.status, "unfinished"), t.last_result)
        for t in experiment.trials.values()
    }
    return SavedSweep(continuable=True, trials=trials, notes=notes)


def prepare_resume(plan: ResumePlan) -> ResumeState:
    """Correct Ray's snapshot as ``plan`` says, and say which trials continue from where."""
    if not plan.saved.continuable:
        return fresh_start(plan)
    experiment, _ = _load(plan.paths)
    assert experiment is not None  # it was read a moment ago, by saved_sweep
    added = [_added_back(plan, experiment, trial) for trial in plan.added]
    save_corrected_state(experiment, finished=plan.finished, added=added, num_samples=plan.backend_total)
    continued = [t for t in experiment.unfinished if t not in plan.finished] + [
        t.trial_id for t in plan.added
    ]
    known = {trial_id: trial.last_result for trial_id, trial in plan.saved.trials.items()}
    redo = sum(_iterations_to_redo(t, plan.journal.get(t, []), known.get(t), plan.paths) for t in continued)
    return ResumeState(
        restore=True,
        continued=continued,
        delivered=delivered_for(plan.journal, continued),
        journal=plan.journal,
        brackets=dict(plan.brackets),
        iterations_to_redo=redo,
    )


def _load(paths: SweepPaths) -> tuple[RayExperimentState | None, list[Any]]:
    set_aside: list[Any] = []
    experiment = load_experiment_state(paths.ray_directory, set_aside)
    if experiment is not None and not has_generator_state(paths.ray_directory):
        experiment = None
    return experiment, set_aside


def _added_back(plan: ResumePlan, experiment: RayExperimentState, trial: AddedTrial) -> tuple[str, str]:
    """Ray's JSON of a trial its snapshot missed, to restart from its last checkpoint the journal saw."""
    spec, paths = plan.spec, plan.paths
    restore = None
    for result in reversed(trial.results):  # the last checkpoint whose result reached the driver
        found = RayTrialFiles(paths.ray_directory).checkpoint(
            trial.trial_id, result.get("checkpoint_dir_name")
        )
        restore = str(found) if found is not None else None
        if restore:
            break
    template = {
        "trainable_name": _trainable_name(experiment),
        "resources": {"CPU": spec.resources.cpu, "GPU": spec.resources.gpu},
        "num_to_keep": spec.checkpoint.keep,
        "max_failures": spec.failure.max_retries,
    }
    tag = f"{trial.number + 1}_" + ",".join(f"{k}={v}" for k, v in sorted(trial.params.items()))
    return orphan_trial_json(
        paths.directory, trial.trial_id, trial.config, trial.params, tag, restore, template
    )


def _trainable_name(experiment: RayExperimentState) -> str:
    for trial_json, _ in experiment.data["trial_data"]:
        return str(json.loads(trial_json)["trainable_name"])
    return "run_trial"


def _iterations_to_redo(
    trial_id: str, results: list[dict[str, Any]], known: dict[str, Any] | None, paths: SweepPaths
) -> int:
    """Iterations delivered after the checkpoint the trial restarts from (an estimate for
    trials Ray knew: their checkpoint is the last one its snapshot saw)."""
    if not results:
        return 0
    delivered = int(results[-1].get("iteration", 0))
    horizon = int(known.get("iteration", 0)) if known else delivered
    for result in reversed(results):
        if (
            int(result.get("iteration", 0)) <= horizon
            and RayTrialFiles(paths.ray_directory).checkpoint(trial_id, result.get("checkpoint_dir_name"))
            is not None
        ):
            return delivered - int(result["iteration"])
    return delivered
