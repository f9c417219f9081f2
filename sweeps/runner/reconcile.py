"""Reconcile a dead driver's records before resuming (see :mod:`sweeps.runner.resume`).

Every trial of the study ends up in exactly one of four groups:

- **finished**: the study says so, or the journal's last result does (the scheduler
  stopped it, it ran all its iterations, or it diverged), or the backend's record shows
  it ended; the study is told now if it missed the end;
- **continued**: the backend's record (:meth:`~sweeps.backend.Backend.saved_sweep`) holds
  it unfinished; the backend restarts it from its checkpoint;
- **added back**: the backend's record never saw it; the backend adds it under its own
  id, to restart from its last checkpoint the journal saw (:class:`~sweeps.backend.resume.AddedTrial`);
- **lost**: it was running and the backend has no record to continue (a driver killed
  before the backend's first one): recorded as failed ("lost with the driver").

The backend then brings its record in line (:meth:`~sweeps.backend.Backend.prepare_resume`),
and creates the remaining trials, so the study still ends with exactly ``num_samples``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import optuna

from sweeps.backend import Backend
from sweeps.backend.resume import AddedTrial, ResumePlan, ResumeState, SavedSweep, SavedTrial
from sweeps.outcomes import TrialRecord, classify_outcome
from sweeps.search.space import fixed_values, optuna_distributions
from sweeps.search.truthful_study import new_intermediate_values, step_key
from sweeps.spec.loading import LoadedSpec
from sweeps.spec.scaling import learning_rate_scale, trial_config
from sweeps.store.journal import JOURNAL_FILE, journal_brackets
from sweeps.store.state import SweepPaths
from sweeps.store.study import write_intermediate_values
from sweeps.store.study_records import (
    BACKEND_TRIAL_ID_ATTR,
    RECORD_ATTR,
    backend_trial_id,
    classify_trial,
    recorded_brackets,
    recorded_stops,
    trial_record,
)

LOST_WITH_DRIVER = "lost with the driver before the backend's first record of the sweep"


@dataclass
class Resumption:
    """What the runner needs to continue a sweep (see :func:`sweeps.runner.resume.prepare_resume`)."""

    #: How the backend continues the sweep (:attr:`sweeps.backend.SweepJob.resume`).
    state: ResumeState
    remaining: int  # trials still to create
    trials_so_far: int
    #: Every result delivered before (the result journal).
    journal: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: Trial id → the last iteration a continued trial delivered before: not recorded twice.
    delivered: dict[str, int] = field(default_factory=dict)
    records: list[TrialRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Every trial of the study, in order: (trial id, config).
    trials: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: Trial id → its Hyperband bracket, as the study (else the journal) recorded it.
    brackets: dict[str, int] = field(default_factory=dict)
    #: Trial id → why ASHA stopped it (rung, value, cut-off), as the study recorded it.
    stops: dict[str, dict[str, Any]] = field(default_factory=dict)

    def schedule(self, trial_id: str) -> dict[str, Any]:
        """What the scheduler said of a trial before: its bracket and why it stopped it."""
        bracket = {"bracket": self.brackets[trial_id]} if trial_id in self.brackets else {}
        return {**bracket, **self.stops.get(trial_id, {})}


def reconcile(
    paths: SweepPaths,
    loaded: LoadedSpec,
    study: Any,
    journal: dict[str, list[dict[str, Any]]],
    backend: Backend,
) -> Resumption:
    """Put every trial of the study in one of the four groups, and have the backend follow."""
    saved = backend.saved_sweep(paths)
    groups = _sort_trials(loaded, study, journal, saved)
    trials = study.get_trials(deepcopy=False)
    fixed, scale = fixed_values(loaded.spec), learning_rate_scale(loaded.spec)
    # The study records a bracket before the trial starts, the journal as it starts.
    brackets = {**journal_brackets(paths.directory / JOURNAL_FILE), **recorded_brackets(trials)}
    # Trials added back are the backend's now; those that finished outside its view are
    # not, and it must create that many fewer.
    outside = sum(1 for t in trials if t.state.is_finished() and backend_trial_id(t) not in saved.trials)
    state = backend.prepare_resume(
        ResumePlan(
            spec=loaded.spec,
            paths=paths,
            saved=saved,
            finished=groups.finished,
            added=groups.added,
            backend_total=loaded.spec.num_samples - outside,
            journal=journal,
            brackets=brackets,
        )
    )
    records = [
        record_from_study(
            t,
            trial_config(t.params, fixed, scale),
            journal.get(backend_trial_id(t) or "", []),
            loaded.spec.metric,
        )
        for t in trials
        if t.state.is_finished()
    ]
    notes = list(saved.notes)
    if groups.lost:
        notes.append(f"{len(groups.lost)} trial(s) {LOST_WITH_DRIVER}; recorded as failed")
    notes.append(
        f"{len(records)} trial(s) finished before; {len(state.continued)} continue from their last "
        f"checkpoint ({len(groups.added)} of them restored from the study and the journal); about "
        f"{state.iterations_to_redo} iteration(s) between those checkpoints and the crash are computed again"
    )
    return Resumption(
        state=state,
        remaining=loaded.spec.num_samples - len(trials),
        trials_so_far=len(trials),
        journal=journal,
        delivered=dict(state.delivered),
        records=records,
        notes=notes,
        trials=[(str(backend_trial_id(t)), trial_config(t.params, fixed, scale)) for t in trials],
        brackets=brackets,
        stops=recorded_stops(trials),
    )


@dataclass
class _Groups:
    finished: set[str] = field(default_factory=set)  # trial ids not to run again
    added: list[AddedTrial] = field(default_factory=list)  # for the backend's record
    lost: list[str] = field(default_factory=list)  # unfinished, and no record to restart them from


def _sort_trials(
    loaded: LoadedSpec, study: Any, journal: dict[str, list[dict[str, Any]]], saved: SavedSweep
) -> _Groups:
    """Finished, continued by the backend (not listed), added back or lost; tells the study what it missed."""
    spec = loaded.spec
    fixed, distributions, scale = fixed_values(spec), optuna_distributions(spec), learning_rate_scale(spec)
    groups = _Groups()
    for frozen in study.get_trials(deepcopy=False):
        trial_id = backend_trial_id(frozen)
        if trial_id is None:  # the driver died between Optuna's ask and the backend's trial
            trial_id = new_trial_id()
            if not frozen.state.is_finished():
                frozen = _with_every_parameter(study, frozen, distributions)
            study._storage.set_trial_user_attr(frozen._trial_id, BACKEND_TRIAL_ID_ATTR, trial_id)
        results = journal.get(trial_id, [])
        known = saved.trials.get(trial_id) if saved.continuable else None
        if not frozen.state.is_finished():
            _catch_up_intermediate_values(study, frozen, results, spec.metric, step_key(spec.budget_unit))
            ending = _finished_by_journal(results, known)
            if ending is not None:
                _tell(study, frozen, spec.metric, ending[0], ending[1])
        if _is_finished(study, frozen):
            groups.finished.add(trial_id)
        elif known is not None:
            continue  # the backend restarts it from its last checkpoint
        elif not saved.continuable:
            _tell(study, frozen, spec.metric, results[-1] if results else None, True, LOST_WITH_DRIVER)
            groups.lost.append(trial_id)
        else:
            config = trial_config(frozen.params, fixed, scale)
            groups.added.append(AddedTrial(trial_id, frozen.number, config, dict(frozen.params), results))
    return groups


def new_trial_id() -> str:
    """A fresh trial id for a trial the driver died creating (8 hex digits, as Ray Tune makes them)."""
    return uuid.uuid4().hex[:8]


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


def _catch_up_intermediate_values(
    study: Any, frozen: Any, results: list[dict[str, Any]], metric: str, key: str
) -> None:
    """Write the journal's reports the study missed, while the trial is still running there.

    Tune shows a result to the callbacks (the journal among them) before the searcher hears
    of the trial's end, and skips the searcher's per-result hook for a result on which the
    trial stops (ASHA at a rung or at its last iteration). A driver killed in between left
    the study without the last delivery's values. A trial that continues would never send
    them again (the worker skips what the journal holds), and one the journal shows
    finished is told its end next: both need them now."""
    values = new_intermediate_values(results, metric, key, set(frozen.intermediate_values))
    if values:
        write_intermediate_values(
            study._storage, frozen._trial_id, values
        )  # compat: optuna-storage-internals


def _finished_by_journal(
    results: list[dict[str, Any]], known: SavedTrial | None
) -> tuple[dict[str, Any] | None, bool] | None:
    """(last result, error) if the trial ended before the driver died but the study missed it."""
    if known is not None and known.status == "errored":
        return (results[-1] if results else None), True
    if known is not None and known.status == "ended":
        return (results[-1] if results else known.last_result or None), False
    if not results:
        return None
    last = results[-1]
    if (
        last.get("done")
        or last.get("diverged")
        or last.get("iteration", 0) >= last.get("total_iterations", float("inf"))
    ):
        return last, False
    return None


def _tell(
    study: Any, frozen: Any, metric: str, result: dict[str, Any] | None, error: bool, why: str | None = None
) -> None:
    state, value = classify_trial(result, error, metric)
    record = trial_record(result, error, metric)
    if why:
        record["error"] = why
    study._storage.set_trial_user_attr(frozen._trial_id, RECORD_ATTR, record)
    study.tell(frozen.number, value, state=state, skip_if_finished=True)


def _is_finished(study: Any, frozen: Any) -> bool:
    finished: bool = study._storage.get_trial(frozen._trial_id).state.is_finished()
    return finished


def record_from_study(
    frozen: Any, config: dict[str, Any], journal: list[dict[str, Any]], metric: str
) -> TrialRecord:
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
        trial_id=backend_trial_id(frozen) or f"optuna-{frozen.number}",
        config=config,
        last_result=last or None,
        outcome=outcome,
        error=record.get("error"),
    )
