"""Reconcile a dead driver's records before resuming (see :mod:`sweeps.runner.resume`).

Every trial of the study ends up in exactly one of three groups:

- **finished**: the study says so, or the journal's last result does (Ray stopped it,
  it ran all its iterations, or it diverged) and the study is told now;
- **continued**: Ray's snapshot knows it unfinished; Ray restarts it from its checkpoint;
- **added back**: the snapshot never saw it; it is written into the snapshot under its
  own id and restarts from its last checkpoint the journal saw completed.

Without a usable snapshot (a driver killed before Ray's first one), the trials that were
running are recorded as failed ("lost with the driver") and a fresh Tuner runs the
remaining ones, so the study still ends with exactly ``num_samples`` trials.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import optuna

from sweeps.outcomes import TrialRecord, classify_outcome
from sweeps.ray_backend.snapshot import (
    RayExperimentState,
    has_generator_state,
    load_experiment_state,
    new_trial_id,
    orphan_trial_json,
    save_corrected_state,
)
from sweeps.search.space import fixed_values, optuna_distributions
from sweeps.search.truthful_study import new_intermediate_values, step_key
from sweeps.spec.loading import LoadedSpec
from sweeps.spec.scaling import learning_rate_scale, trial_config
from sweeps.store.checkpoints import checkpoint_path
from sweeps.store.journal import JOURNAL_FILE, delivered_iterations, journal_brackets
from sweeps.store.state import SweepPaths
from sweeps.store.study import write_intermediate_values
from sweeps.store.study_records import (
    RAY_TRIAL_ID_ATTR,
    RECORD_ATTR,
    classify_trial,
    recorded_brackets,
    recorded_stops,
    trial_record,
)

LOST_WITH_DRIVER = "lost with the driver before Ray's first snapshot of the sweep"


@dataclass
class Resumption:
    """What the runner needs to continue a sweep (see :func:`prepare_resume`)."""

    restore: bool  # Ray's corrected snapshot can be restored (else a fresh Tuner runs the rest)
    remaining: int  # trials still to create when there is no snapshot to restore
    trials_so_far: int
    delivered: dict[str, int] = field(default_factory=dict)
    records: list[TrialRecord] = field(default_factory=list)
    journal: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: Every trial of the study, in order: (Ray trial id, config).
    trials: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: Trial id → its Hyperband bracket, as the study (else the journal) recorded it.
    brackets: dict[str, int] = field(default_factory=dict)
    #: Trial id → why ASHA stopped it (rung, value, cut-off), as the study recorded it.
    stops: dict[str, dict[str, Any]] = field(default_factory=dict)

    def schedule(self, trial_id: str) -> dict[str, Any]:
        """What the scheduler said of a trial before: its bracket and why it stopped it."""
        bracket = {"bracket": self.brackets[trial_id]} if trial_id in self.brackets else {}
        return {**bracket, **self.stops.get(trial_id, {})}




def reconcile(paths: SweepPaths, loaded: LoadedSpec, study: Any, journal: dict[str, list[dict[str, Any]]]) -> Resumption:
    """Put every trial of the study in one of the three groups, and say how to continue."""
    set_aside: list[Any] = []
    experiment = load_experiment_state(paths.ray_directory, set_aside)
    notes = [f"set aside a torn Ray snapshot: {p.name}" for p in set_aside]
    if experiment is not None and not has_generator_state(paths.ray_directory):
        experiment = None
    groups = _sort_trials(paths, loaded, study, journal, experiment)
    ray_trials = experiment.trials if experiment else {}
    trials = study.get_trials(deepcopy=False)
    if experiment is not None:
        # Trials added back are Ray trials now; those that finished outside Ray's view
        # are not, and Ray must create that many fewer.
        ray_total = loaded.spec.num_samples - sum(
            1 for t in trials
            if t.state.is_finished() and t.user_attrs.get(RAY_TRIAL_ID_ATTR) not in ray_trials
        )
        save_corrected_state(experiment, finished=groups.finished, added=groups.added, num_samples=ray_total)
    continued = [t for t in (experiment.unfinished if experiment else []) if t not in groups.finished]
    continued += [_trial_id_of(json_state) for json_state, _ in groups.added]
    fixed, scale = fixed_values(loaded.spec), learning_rate_scale(loaded.spec)
    records = [
        record_from_study(t, trial_config(t.params, fixed, scale), journal.get(t.user_attrs.get(RAY_TRIAL_ID_ATTR, ""), []), loaded.spec.metric)
        for t in trials if t.state.is_finished()
    ]
    if groups.lost:
        notes.append(f"{len(groups.lost)} trial(s) {LOST_WITH_DRIVER}; recorded as failed")
    redo = sum(_iterations_to_redo(t, journal.get(t, []), ray_trials.get(t), paths) for t in continued)
    notes.append(
        f"{len(records)} trial(s) finished before; {len(continued)} continue from their last "
        f"checkpoint ({len(groups.added)} of them restored from the study and the journal); about "
        f"{redo} iteration(s) between those checkpoints and the crash are computed again"
    )
    return Resumption(
        restore=experiment is not None,
        remaining=loaded.spec.num_samples - len(trials),
        trials_so_far=len(trials),
        delivered=delivered_for(journal, continued),
        records=records,
        journal=journal,
        notes=notes,
        trials=[(str(t.user_attrs[RAY_TRIAL_ID_ATTR]), trial_config(t.params, fixed, scale)) for t in trials],
        # The study records a bracket before the trial starts, the journal as it starts.
        brackets={**journal_brackets(paths.directory / JOURNAL_FILE), **recorded_brackets(trials)},
        stops=recorded_stops(trials),
    )


@dataclass
class _Groups:
    finished: set[str] = field(default_factory=set)  # Ray trial ids not to run again
    added: list[tuple[str, str]] = field(default_factory=list)  # (trial JSON, runner JSON) for Ray's snapshot
    lost: list[str] = field(default_factory=list)  # unfinished, and no snapshot to restart them from


def _sort_trials(paths: SweepPaths, loaded: LoadedSpec, study: Any, journal: dict[str, list[dict[str, Any]]],
                 experiment: RayExperimentState | None) -> _Groups:
    """Finished, continued by Ray (not listed), added back or lost; tells the study what it missed."""
    spec = loaded.spec
    fixed, distributions, scale = fixed_values(spec), optuna_distributions(spec), learning_rate_scale(spec)
    ray_trials = experiment.trials if experiment else {}
    groups = _Groups()
    for frozen in study.get_trials(deepcopy=False):
        trial_id = frozen.user_attrs.get(RAY_TRIAL_ID_ATTR)
        if trial_id is None:  # the driver died between Optuna's ask and Ray's trial
            trial_id = new_trial_id()
            if not frozen.state.is_finished():
                frozen = _with_every_parameter(study, frozen, distributions)
            study._storage.set_trial_user_attr(frozen._trial_id, RAY_TRIAL_ID_ATTR, trial_id)
        results = journal.get(trial_id, [])
        known = ray_trials.get(trial_id)
        if not frozen.state.is_finished():
            _catch_up_intermediate_values(study, frozen, results, spec.metric, step_key(spec.budget_unit))
            ending = _finished_by_journal(results, known)
            if ending is not None:
                _tell(study, frozen, spec.metric, ending[0], ending[1])
        if _is_finished(study, frozen):
            groups.finished.add(trial_id)
        elif known is not None:
            continue  # Ray restarts it from its last checkpoint
        elif experiment is None:
            _tell(study, frozen, spec.metric, results[-1] if results else None, True, LOST_WITH_DRIVER)
            groups.lost.append(trial_id)
        else:
            groups.added.append(_added_back(paths, experiment, loaded, frozen, trial_id, trial_config(frozen.params, fixed, scale), results))
    return groups


# compat: optuna-storage-internals
def _with_every_parameter(study: Any, frozen: Any, distributions: dict[str, Any]) -> Any:
    """The trial with the parameters Optuna had not sampled yet when the driver died.

    Optuna writes each parameter as it samples it, so a driver killed inside `ask` leaves
    a trial with only some of them. Ray never saw that trial (its id is written after the
    last parameter), so it can still start from scratch, once its config is whole.
    """
    missing = {name: d for name, d in distributions.items() if name not in frozen.params}
    if not missing:
        return frozen
    trial = optuna.trial.Trial(study, frozen._trial_id)
    for name, distribution in missing.items():
        trial._suggest(name, distribution)
    return study._storage.get_trial(frozen._trial_id)


def _catch_up_intermediate_values(study: Any, frozen: Any, results: list[dict[str, Any]], metric: str, key: str) -> None:
    """Write the journal's reports the study missed, while the trial is still running there.

    Tune shows a result to the callbacks (the journal among them) before the searcher hears
    of the trial's end, and skips the searcher's per-result hook for a result on which the
    trial stops (ASHA at a rung or at its last iteration). A driver killed in between left
    the study without the last delivery's values. A trial that continues would never send
    them again (the worker skips what the journal holds), and one the journal shows
    finished is told its end next: both need them now."""
    values = new_intermediate_values(results, metric, key, set(frozen.intermediate_values))
    if values:
        write_intermediate_values(study._storage, frozen._trial_id, values)  # compat: optuna-storage-internals


def _finished_by_journal(results: list[dict[str, Any]], known: Any) -> tuple[dict[str, Any] | None, bool] | None:
    """(last result, error) if the trial ended before the driver died but the study missed it."""
    if known is not None and known.status == "ERROR":
        return (results[-1] if results else None), True
    if known is not None and known.status == "TERMINATED":
        return (results[-1] if results else known.last_result or None), False
    if not results:
        return None
    last = results[-1]
    if last.get("done") or last.get("diverged") or last.get("iteration", 0) >= last.get("total_iterations", float("inf")):
        return last, False
    return None


def _tell(study: Any, frozen: Any, metric: str, result: dict[str, Any] | None, error: bool, why: str | None = None) -> None:
    state, value = classify_trial(result, error, metric)
    record = trial_record(result, error, metric)
    if why:
        record["error"] = why
    study._storage.set_trial_user_attr(frozen._trial_id, RECORD_ATTR, record)
    study.tell(frozen.number, value, state=state, skip_if_finished=True)


def _is_finished(study: Any, frozen: Any) -> bool:
    finished: bool = study._storage.get_trial(frozen._trial_id).state.is_finished()
    return finished


def _added_back(
    paths: SweepPaths, experiment: RayExperimentState, loaded: LoadedSpec, frozen: Any, trial_id: str,
    config: dict[str, Any], results: list[dict[str, Any]],
) -> tuple[str, str]:
    spec = loaded.spec
    restore = None
    for result in reversed(results):  # the last checkpoint whose result reached the driver
        restore = checkpoint_path(paths.ray_directory, trial_id, result.get("checkpoint_dir_name"))
        if restore:
            break
    template = {
        "trainable_name": _trainable_name(experiment),
        "resources": {"CPU": spec.resources.cpu, "GPU": spec.resources.gpu},
        "num_to_keep": spec.checkpoint.keep,
        "max_failures": spec.failure.max_retries,
    }
    tag = f"{frozen.number + 1}_" + ",".join(f"{k}={v}" for k, v in sorted(frozen.params.items()))
    return orphan_trial_json(paths.directory, trial_id, config, dict(frozen.params), tag, restore, template)


def _trainable_name(experiment: RayExperimentState) -> str:
    for trial_json, _ in experiment.data["trial_data"]:
        return str(json.loads(trial_json)["trainable_name"])
    return "run_trial"


def _trial_id_of(json_state: str) -> str:
    return str(json.loads(json_state)["trial_id"])


def _iterations_to_redo(trial_id: str, results: list[dict[str, Any]], known: Any, paths: SweepPaths) -> int:
    """Iterations delivered after the checkpoint the trial restarts from (an estimate for
    trials Ray knew: their checkpoint is the last one its snapshot saw)."""
    if not results:
        return 0
    delivered = int(results[-1].get("iteration", 0))
    horizon = int(known.last_result.get("iteration", 0)) if known is not None and known.last_result else delivered
    for result in reversed(results):
        if int(result.get("iteration", 0)) <= horizon and checkpoint_path(
                paths.ray_directory, trial_id, result.get("checkpoint_dir_name")) is not None:
            return delivered - int(result["iteration"])
    return delivered


def record_from_study(frozen: Any, config: dict[str, Any], journal: list[dict[str, Any]], metric: str) -> TrialRecord:
    """A ledger record of a trial the study holds, for summaries that span resumed runs.

    ``config`` is the trial's config, made from the study's parameters by
    :func:`sweeps.spec.scaling.trial_config`.
    """
    record = frozen.user_attrs.get(RECORD_ATTR) or {}
    last = dict(journal[-1]) if journal else {}
    if "iteration" in record and int(record["iteration"]) >= int(last.get("iteration", -1)):
        last.update({k: v for k, v in record.items() if k not in ("outcome", "value", "error")})
        if record.get("value") is not None:
            last[metric] = record["value"]
    outcome = record.get("outcome") or classify_outcome(last or None, error=not frozen.state.is_finished())
    return TrialRecord(
        trial_id=frozen.user_attrs.get(RAY_TRIAL_ID_ATTR) or f"optuna-{frozen.number}",
        config=config,
        last_result=last or None,
        outcome=outcome,
        error=record.get("error"),
    )


def delivered_for(journal: dict[str, list[dict[str, Any]]], trial_ids: list[str]) -> dict[str, int]:
    delivered = delivered_iterations(journal)
    return {trial_id: delivered[trial_id] for trial_id in trial_ids if trial_id in delivered}
