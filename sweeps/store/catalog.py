"""Reading the sweeps under a storage folder, for ``sweep list``, ``status`` and ``best``.

Nothing here starts Ray or writes anything: it reads ``sweep.json``, the Optuna study
(whose trials carry their outcome, see :mod:`sweeps.ray_backend.searcher`) and, through
the :class:`~sweeps.store.checkpoints.TrialFiles` its caller names (for Ray,
:func:`sweeps.ray_backend.formats.ray_trial_files`), the trials' checkpoints and error
files, so it works while a sweep runs and on a read-only copy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweeps.errors import StateError
from sweeps.outcomes import best_trial, error_headline
from sweeps.spec.objectives import objectives_of
from sweeps.store.checkpoints import TrialFiles, latest_checkpoint
from sweeps.store.lifecycle import SweepState, driver_alive, observed_state
from sweeps.store.state import STATE_FILE, SweepPaths, read_state, sweep_paths

#: The states `sweep resume` continues (see sweeps.store.lifecycle; `crashed`: "running" with
#: no live driver). Not `aborted`: a sweep aborted because too many trials failed would fail
#: the same way again, so its fix is in the trainable or the spec, and a new run (see
#: ``aborted_advice``).
RESUMABLE = (SweepState.CRASHED.value, SweepState.STOPPED.value, SweepState.INTERRUPTED.value)

#: How to find a sweep's trial files (its checkpoints and errors) from its paths.
TrialFilesOf = Callable[[SweepPaths], TrialFiles]


@dataclass
class TrialRow:
    """One trial as `sweep status` and `sweep best` show it.

    (A running backend's own view of a trial is :class:`sweeps.backend.TrialInfo`.)
    """

    number: int
    trial_id: str
    state: str  # completed | pruned | diverged | failed | running (| interrupted: not running now)
    config: dict[str, Any]
    value: float | None
    iteration: int | None
    total_iterations: int | None
    error: str | None = None
    #: The Hyperband bracket ASHA drew the trial into (None without brackets).
    bracket: int | None = None
    #: Why ASHA pruned it: {"stopped_at_rung", "rung_value", "rung_cutoff"} (None otherwise).
    stopped: dict[str, Any] | None = None


@dataclass
class SweepInfo:
    name: str
    state: str
    num_samples: int
    metric: str
    mode: str
    started_at: str | None
    directory: Path
    trials: list[TrialRow] = field(default_factory=list)
    #: Why the sweep aborted (sweep.json's summary), when its state is `aborted`.
    aborted_reason: str | None = None
    spec_path: str | None = None
    overrides: tuple[str, ...] = ()
    #: The unit ASHA counts its budget (and places its rungs) in.
    budget_unit: str = "iterations"

    @property
    def done(self) -> int:
        return sum(1 for t in self.trials if t.state in ("completed", "pruned", "diverged", "failed"))

    def best(self) -> TrialRow | None:
        """The best trial, by :func:`sweeps.outcomes.best_trial` (as the runner's summary)."""
        return best_trial(self.trials, lambda t: t.state, lambda t: t.value, self.mode)


def list_sweeps(storage: str | Path, files: TrialFilesOf) -> list[SweepInfo]:
    """Every sweep under ``storage`` (a sweep whose files cannot be read shows as `unreadable`)."""
    root = Path(storage).expanduser().resolve()
    if not root.is_dir():
        raise StateError(
            f"{root}: no such storage folder. Pass the folder your sweeps were run with "
            "(`--storage PATH`; `sweep run` defaults to ./sweep_results)."
        )
    sweeps = []
    for state_file in sorted(root.glob(f"*/{STATE_FILE}")):
        try:
            sweeps.append(describe_sweep(root, state_file.parent.name, files))
        except StateError:
            sweeps.append(
                SweepInfo(state_file.parent.name, "unreadable", 0, "?", "max", None, state_file.parent)
            )
    return sweeps


def describe_sweep(storage: str | Path, name: str, files: TrialFilesOf) -> SweepInfo:
    paths = sweep_paths(storage, name)
    state = read_state(paths)
    spec = state["spec"]
    status = observed_state(paths, state).value
    alive = driver_alive(state)
    info = SweepInfo(
        name=name,
        state=status,
        num_samples=int(state.get("num_samples") or spec.get("num_samples") or 0),
        # Several objectives (`metric: [a, b]`): the first is the one a single value shows.
        metric=objectives_of(spec)[0][0],
        mode=objectives_of(spec)[0][1] if "mode" in spec else "max",
        started_at=state.get("started_at"),
        directory=paths.directory,
        aborted_reason=(state.get("summary") or {}).get("aborted")
        if status == SweepState.ABORTED.value
        else None,
        spec_path=state.get("spec_path"),
        overrides=tuple(state.get("overrides") or ()),
        budget_unit=str((spec.get("scheduler") or {}).get("budget", "iterations")),
    )
    info.trials = _trials(paths, name, spec, running_now=alive, files=files(paths))
    return info


def aborted_advice(info: SweepInfo) -> str:
    """What to do about an aborted sweep, which `sweep resume` would not bring further."""
    reason = f" ({info.aborted_reason})" if info.aborted_reason else ""
    spec = " ".join([info.spec_path or "SPEC.yaml", *(f"--set {o}" for o in info.overrides)])
    return (
        f"The sweep aborted{reason}, so it is not resumed: fix what made its trials fail (see "
        f"the error under each failed trial above and its error.txt), then start it again with "
        f"`sweep run {spec} --overwrite`."
    )


def best_trial_export(storage: str | Path, name: str, files: TrialFilesOf) -> dict[str, Any]:
    """The best trial as fixed values for a spec's ``search_space``, and where its weights are."""
    info = describe_sweep(storage, name, files)
    best = info.best()
    if best is None:
        raise StateError(
            f"{info.directory}: the sweep `{name}` has no completed or pruned trial with a "
            f"value of `{info.metric}` yet. See `sweep status {name}` for its trials."
        )
    from sweeps.spec.scaling import BASE_LEARNING_RATE, scale_from_raw

    paths = sweep_paths(storage, name)
    # A scaled learning rate is exported as the effective value, fixed: the config then
    # trains the same without the rule. The base value and the rule are kept beside it.
    search_space = dict(best.config)
    base = search_space.pop(BASE_LEARNING_RATE, None)
    export: dict[str, Any] = {
        "sweep": name,
        "trial_id": best.trial_id,
        "state": best.state,
        "metric": info.metric,
        "value": best.value,
        "iterations": best.iteration,
        "search_space": search_space,
    }
    scale = scale_from_raw(read_state(paths)["spec"].get("search_space")) if base is not None else None
    if scale is not None:
        export[BASE_LEARNING_RATE] = base
        export["learning_rate_scale"] = scale.model_dump()
    checkpoint = latest_checkpoint(files(paths), best.trial_id)
    export["checkpoint"] = str(checkpoint) if checkpoint is not None else None
    run_id = _mlflow_run_id(paths, best.trial_id)
    if run_id:
        export["mlflow_run_id"] = run_id
        export["model_uri"] = f"runs:/{run_id}/model"
    return export


def _trials(
    paths: SweepPaths, name: str, spec: dict[str, Any], running_now: bool, files: TrialFiles
) -> list[TrialRow]:
    import optuna

    from sweeps.spec.scaling import scale_from_raw, trial_config
    from sweeps.sqlite import open_study_read_only
    from sweeps.store.study_records import (
        BRACKET_ATTR,
        ERROR_ATTR,
        RECORD_ATTR,
        STOPPED_ATTR,
        backend_trial_id,
    )

    database = paths.study_file
    if not database.is_file():
        return []
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        # Read-only (sweeps/sqlite.py): a finished sweep on a read-only mount is listed too.
        frozen_trials = open_study_read_only(database, name).get_trials(deepcopy=False)
    except Exception as exc:  # noqa: BLE001 - a corrupt file raises sqlalchemy/sqlite errors
        raise StateError(
            f"{database}: the Optuna study cannot be read ({str(exc).splitlines()[0][:200]})."
        ) from None
    fixed = {k: v for k, v in (spec.get("search_space") or {}).items() if not isinstance(v, dict)}
    scale = scale_from_raw(spec.get("search_space"))
    trials = []
    for frozen in frozen_trials:
        record = frozen.user_attrs.get(RECORD_ATTR) or {}
        steps = frozen.intermediate_values
        if frozen.state.is_finished():
            state = record.get("outcome") or frozen.state.name.lower()
        else:
            state = "running" if running_now else "interrupted"
        value = frozen.values[0] if frozen.values is not None else record.get("value")  # the first objective
        if value is None and steps:
            value = steps[max(steps)]
        iteration = record.get("iteration")
        trial_id = backend_trial_id(frozen) or f"optuna-{frozen.number}"
        trials.append(
            TrialRow(
                number=frozen.number,
                trial_id=trial_id,
                state=str(state),
                config=trial_config(frozen.params, fixed, scale),
                value=None if value is None else float(value),
                iteration=int(iteration) if iteration is not None else (max(steps) if steps else None),
                total_iterations=record.get("total_iterations"),
                error=frozen.user_attrs.get(ERROR_ATTR)
                or (_first_error_line(files, trial_id) if state == "failed" else None),
                bracket=frozen.user_attrs.get(BRACKET_ATTR),
                # Recorded when ASHA stopped it; a trial whose last report was also its end completed.
                stopped=frozen.user_attrs.get(STOPPED_ATTR) if state == "pruned" else None,
            )
        )
    return trials


def _first_error_line(files: TrialFiles, trial_id: str) -> str | None:
    text = files.error_text(trial_id)
    return error_headline(text) if text is not None else None


def _mlflow_run_id(paths: SweepPaths, trial_id: str) -> str | None:
    import json

    try:
        data = json.loads((paths.directory / "mlflow_runs.json").read_text())
        return str(data["trials"][trial_id])
    except (OSError, ValueError, KeyError, TypeError):
        return None
