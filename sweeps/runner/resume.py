"""``sweep resume``: continue a sweep whose driver died, was stopped, or whose machine rebooted.

Three records survive a driver, each with its own lag:

- the **Optuna study** (SQLite, written synchronously): which trials exist, their
  configs, and which finished, with their outcome (:mod:`sweeps.search.truthful_study`);
- the **result journal** (:mod:`sweeps.store.journal`): every result the driver received;
- the **backend's own record** (:meth:`sweeps.backend.Backend.saved_sweep`; for Ray its
  experiment snapshot, :mod:`sweeps.ray_backend.resume`): trials and checkpoints, up to
  one checkpoint period old.

Reconciling them (:mod:`sweeps.runner.reconcile`), the study and the journal win: a trial
the study or the journal shows finished is not rerun (and the study is told, if the
driver died before telling it); a trial the backend's record shows unfinished restarts
from its last checkpoint; a trial that record never saw is added back under its own id,
from its last completed checkpoint (:meth:`sweeps.backend.Backend.prepare_resume`).
So the sweep ends with exactly ``num_samples`` trials, no config twice, and each trial's
MLflow run continues with no step repeated (the worker skips iterations the journal
already holds).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import optuna

from sweeps.backend import Backend
from sweeps.errors import StateError
from sweeps.runner.limits import spent_before
from sweeps.runner.reconcile import Resumption, reconcile
from sweeps.spec.changes import check_resume_changes
from sweeps.spec.loading import LoadedSpec, apply_overrides, load_spec, validate_spec
from sweeps.sqlite import count_study_trials
from sweeps.store.journal import JOURNAL_FILE, read_journal
from sweeps.store.lifecycle import (
    SweepState,
    check_transition,
    check_transition_from,
    rewrite_unchanged,
    transition,
)
from sweeps.store.state import SweepPaths, read_state, sweep_paths, utc_now
from sweeps.store.stop_request import clear_stop_request
from sweeps.tracking.recovery import rebase_embedded_store


def prepare_resume(
    storage: str | Path,
    name: str,
    overrides: list[str] | None = None,
    given: LoadedSpec | None = None,
    force: bool = False,
    *,
    backend: Backend,
) -> tuple[LoadedSpec, Resumption]:
    """Check that ``name`` can be resumed, reconcile its records with ``backend``'s, and
    return its spec and plan (run it on the same kind of backend).

    ``given`` is a spec passed on the command line (``sweep run SPEC --resume``); without
    it the sweep's own spec is used, with any edits of its spec file. ``force`` resumes a
    sweep recorded as running on another host (whose driver cannot be checked from here).
    """
    paths = sweep_paths(storage, name)
    state = read_state(paths)
    _refuse_remote_driver(paths, state, force)
    # Before anything is read or written: a live driver, an aborted sweep (see store/lifecycle.py).
    check_transition_from(paths, state, SweepState.RUNNING)
    loaded, notes = reload_spec(paths, state, list(overrides or []), given)
    _check_writable(paths)
    if loaded.spec.tracking.enabled:
        rebase_embedded_store(paths, loaded)
    study = open_study(paths, loaded)
    trials_so_far = len(study.get_trials(deepcopy=False))
    # A finished sweep goes on only with num_samples raised above the trials it has.
    check_transition(paths, state, SweepState.RUNNING, num_samples=loaded.spec.num_samples)
    resumption = reconcile(paths, loaded, study, read_journal(paths.directory / JOURNAL_FILE), backend)
    resumption.notes[:0] = notes
    resumption.trials_so_far = trials_so_far
    return loaded, resumption


def reload_spec(
    paths: SweepPaths,
    state: dict[str, Any],
    overrides: list[str],
    given: LoadedSpec | None = None,
) -> tuple[LoadedSpec, list[str]]:
    """The spec the sweep ran with, plus ``--set`` overrides and edits of its spec file.

    The spec is read back from ``sweep.json``. If the original spec file still exists and
    still names this sweep, its edits are taken too, and all changes are checked.
    """
    source = f"{paths.state_file}"
    stored = validate_spec(dict(state["spec"]), paths.state_file, tuple(state.get("overrides") or ()))
    raw = dict(state["spec"])
    spec_path = Path(state.get("spec_path") or paths.state_file)
    if spec_path.is_file():
        try:
            edited = load_spec(spec_path, list(state.get("overrides") or ()))
        except Exception:  # noqa: BLE001 - an unreadable file is not this sweep's spec any more
            edited = None
        if edited is not None and edited.spec.name == paths.name:
            raw, source = dict(edited.raw), edited.source
    if given is not None:
        raw, source, spec_path = dict(given.raw), given.source, given.path
    raw = apply_overrides(raw, overrides, spec_path)
    raw["storage"] = str(paths.storage)  # the folder may have moved; it is where we found it
    loaded = validate_spec(raw, spec_path, tuple(state.get("overrides") or ()) + tuple(overrides))
    trials = count_study_trials(paths.study_file)
    changes = check_resume_changes(stored.spec, loaded.spec, loaded.source if overrides else source, trials)
    return loaded, [f"changed since the last run: {change}" for change in changes]


def open_study(paths: SweepPaths, loaded: LoadedSpec) -> Any:
    database = paths.study_file
    if not database.is_file():
        raise StateError(
            f"{database}: the sweep's Optuna study is missing, so its trials cannot be "
            "recovered. Start the sweep again with `sweep run ... --overwrite`."
        )
    try:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = optuna.storages.RDBStorage(paths.optuna_url)
        return optuna.load_study(study_name=loaded.spec.name, storage=storage)
    except Exception as exc:  # noqa: BLE001 - sqlalchemy/sqlite raise many kinds
        raise StateError(
            f"{database}: the sweep's Optuna study cannot be read ({str(exc).splitlines()[0][:300]}). "
            "The file is corrupt or truncated: restore it from a backup, or start the sweep "
            "again with `sweep run ... --overwrite`."
        ) from None


def _refuse_remote_driver(paths: SweepPaths, state: dict[str, Any], force: bool) -> None:
    """A driver on another host cannot be checked from here: only ``--force`` resumes its sweep."""
    host = state.get("driver_host")
    if (
        state.get("state") == SweepState.RUNNING.value
        and host not in (None, socket.gethostname())
        and not force
    ):
        raise StateError(
            f"{paths.directory}: the sweep `{paths.name}` is recorded as running on host {host} "
            f"(driver pid {state.get('driver_pid')}), which cannot be checked from here. Stop it "
            f"there (`sweep stop {paths.name}`), or, if that driver is gone, resume with `--force`."
        )


def _check_writable(paths: SweepPaths) -> None:
    try:
        rewrite_unchanged(paths)
    except OSError as exc:
        raise StateError(
            f"{paths.directory}: the sweep's folder cannot be written ({exc.strerror}), so the "
            "sweep cannot continue there. Nothing was changed. Make the folder writable or free "
            "some space, or copy the folder to a writable place and pass `--storage` there."
        ) from None


def reclaim_sweep_directory(paths: SweepPaths, loaded: LoadedSpec, address: str | None) -> None:
    """Mark the sweep running again under this driver (``sweep resume``)."""
    state = read_state(paths)
    spent = spent_before(state, paths.directory / JOURNAL_FILE)  # before `resumed_at` moves on
    resumes = int(state.get("resumes", 0)) + 1
    try:
        transition(
            paths,
            SweepState.RUNNING,
            spec=loaded.raw,
            overrides=list(loaded.overrides),
            address=address,
            num_samples=loaded.spec.num_samples,
            driver_pid=os.getpid(),
            driver_host=socket.gethostname(),
            resumed_at=utc_now(),
            resumes=resumes,
            spent_seconds=spent,
        )
        clear_stop_request(paths)
    except OSError as exc:
        raise StateError(
            f"{paths.directory}: the sweep's folder cannot be written ({exc.strerror}). "
            "Make it writable or free some space, then resume again."
        ) from None
