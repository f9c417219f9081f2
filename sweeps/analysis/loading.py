"""Read a finished (or running) sweep back from MLflow as tidy pandas DataFrames.

MLflow is the single source of truth: the trial table and every learning curve come from
the sweep's parent run and its child runs, so the same code reads the embedded SQLite
store (``<storage>/mlflow.db``) and a tracking server. The sweep's own folder
(``<storage>/<name>/``) only tells where to look (spec, tracking URI, run ids) and holds
the Optuna study for hyperparameter importance.

Example:
    >>> from sweeps.analysis import load
    >>> sweep = load("digits-mlp", storage="./sweep_results")  # doctest: +SKIP
    >>> sweep.trials[["trial_id", "batch_size", "state", "val_accuracy"]]  # doctest: +SKIP
    >>> sweep.history.query("trial_id == @sweep.best()['trial_id']")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sweeps.analysis.mlflow_reader import ParentRun, TrialRun, read_parent, read_trial_runs, spec_from_parent
from sweeps.errors import SweepError, TrackingError
from sweeps.numbers import is_finite_number
from sweeps.outcomes import best_trial
from sweeps.plan.planner import SweepPlan, make_plan, plan_spec
from sweeps.spec.loading import LoadedSpec, validate_spec
from sweeps.spec.scaling import config_keys
from sweeps.store.state import SweepPaths, is_embedded_tracking_uri, read_state, sweep_paths

DEFAULT_STORAGE = "./sweep_results"
#: Params every trial run carries besides its hyperparameters (derived, not sampled).
DERIVED_PARAMS = ("iterations_per_epoch", "total_iterations", "dataset_size")
#: Metrics the orchestrator logs next to the trainable's own, all with step = iteration.
PROGRESS_METRICS = ("epoch", "samples_seen")

Progress = Callable[[int, int], None]


@dataclass
class SweepData:
    """A sweep read back from MLflow.

    Attributes:
        trials: One row per trial: ``trial_id``, ``run_id``, the sampled hyperparameters,
            ``iterations_per_epoch``, ``total_iterations``, ``dataset_size``, ``state``
            (completed | pruned | diverged | failed, or interrupted / running), ``iterations`` (where it
            stopped), ``rung`` (highest ASHA rung reached, -1 for none), ``node``, the
            final value of every metric (``value`` is the sweep's metric), ``epoch`` and
            ``samples_seen`` at the end, ``budget_fraction`` = iterations / total, and
            ``diverged``: the trial diverged, or its last value is NaN or infinite (MLflow's
            1.797e308 is read back as inf: :func:`sweeps.analysis.mlflow_reader.unclamped`).
        history: One row per (trial, iteration): ``trial_id``, ``iteration``, every
            metric logged at that step, ``epoch`` and ``samples_seen``.
        hyperparameters: Names of the sampled hyperparameters (the spec's search space;
            with a learning-rate ``scale``, ``learning_rate`` is the effective value a trial
            trained with and ``learning_rate_base`` the sampled one right after it).
    """

    name: str
    metric: str
    mode: str
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    trials: pd.DataFrame
    history: pd.DataFrame
    hyperparameters: list[str]
    spec: LoadedSpec | None = None
    plan: SweepPlan | None = None
    paths: SweepPaths | None = None
    notes: list[str] = field(default_factory=list)
    #: The parent run is still RUNNING: what was read is a snapshot of a sweep in progress.
    running: bool = False

    @property
    def optuna_url(self) -> str | None:
        """The persisted Optuna study (study name = sweep name), if the sweep's folder is here."""
        if self.paths is None or not (self.paths.study_file).exists():
            return None
        return self.paths.optuna_url

    def searched(self) -> list[str]:
        """Hyperparameters that actually vary across trials (a fixed `epochs: 5` does not)."""
        return [p for p in self.hyperparameters if p in self.trials and self.trials[p].nunique() > 1]

    def best(self) -> pd.Series | None:
        """The best trial, by :func:`sweeps.outcomes.best_trial` (the rule of ``sweep run``)."""
        rows = (row for _, row in self.trials.iterrows())

        def value(row: pd.Series) -> float | None:
            return float(row["value"]) if is_finite_number(row["value"]) else None

        return best_trial(rows, lambda row: str(row["state"]), value, self.mode)

    def best_config(self) -> dict[str, Any]:
        """The best trial's hyperparameters as plain Python values (ready for a spec or JSON)."""
        best = self.best()
        if best is None:
            return {}
        return {k: _plain(best[k]) for k in self.hyperparameters if k in best}

    def budget(self) -> dict[str, float | None]:
        """Iterations used against the worst case (every trial run to the end) and the plan."""
        used = float(self.trials["iterations"].sum())
        worst = float(self.trials["total_iterations"].sum())
        return {
            "iterations_used": used,
            "iterations_worst_case": worst,
            "saving_ratio": worst / used if used else None,
            "planned_worst_case": self.plan.worst_case_iterations if self.plan else None,
            "planned_expected": self.plan.expected_iterations if self.plan else None,
        }


def load(
    name_or_uri: str | Path,
    storage: str | Path | None = None,
    tracking_uri: str | None = None,
    *,
    experiment: str | None = None,
    progress: Progress | None = None,
) -> SweepData:
    """Load a sweep's trials and learning curves from MLflow.

    Args:
        name_or_uri: A sweep name (looked up under ``storage``), the path of a sweep's
            folder (``<storage>/<name>``), or ``runs:/<parent_run_id>`` for a sweep known
            only to a tracking server (then pass ``tracking_uri``).
        storage: The sweep's storage folder (default ``./sweep_results``).
        tracking_uri: Where the runs live; default: the spec's ``tracking.uri``, else the
            embedded ``sqlite:///<storage>/mlflow.db``.
        experiment: The MLflow experiment; default the spec's ``tracking.experiment``,
            else the sweep name.
        progress: Called as ``progress(done, total)`` while trial runs are read.
    """
    text = str(name_or_uri)
    if text.startswith("runs:/"):
        if not tracking_uri:
            raise SweepError(
                f"{text}: a parent run id needs the tracking server that holds it. Pass "
                "`tracking_uri=...` (CLI: `--tracking-uri`)."
            )
        parent = read_parent(tracking_uri, run_id=text.removeprefix("runs:/").strip("/"))
        return _assemble(parent, tracking_uri, None, None, progress)

    paths = _locate(text, storage)
    if not paths.exists() and tracking_uri:
        # Only a tracking server knows this sweep: find its latest parent run by name.
        parent = read_parent(tracking_uri, experiment=experiment or paths.name, sweep=paths.name)
        return _assemble(parent, tracking_uri, None, None, progress)

    state = read_state(paths)
    loaded = validate_spec(
        state["spec"], Path(state.get("spec_path") or paths.state_file), tuple(state.get("overrides") or ())
    )
    spec = loaded.spec
    recorded_uri, recorded_parent = _recorded_runs(paths)
    if recorded_uri and spec.tracking.uri is None and is_embedded_tracking_uri(recorded_uri):
        # Recorded with the folder's path at the time: a folder moved or copied since (off a
        # cluster's head node, say) holds its store under its new path, with the same run ids.
        recorded_uri = paths.embedded_tracking_uri
    uri = tracking_uri or recorded_uri or spec.tracking.uri or paths.embedded_tracking_uri
    parent = read_parent(
        uri,
        experiment=experiment or spec.tracking.experiment or spec.name,
        sweep=spec.name,
        run_id=recorded_parent if uri == recorded_uri else None,
    )
    return _assemble(parent, uri, loaded, paths, progress)


def _locate(text: str, storage: str | Path | None) -> SweepPaths:
    folder = Path(text).expanduser()
    if storage is None and (folder / "sweep.json").exists():
        return sweep_paths(folder.parent, folder.name)
    return sweep_paths(storage or DEFAULT_STORAGE, text)


def _recorded_runs(paths: SweepPaths) -> tuple[str | None, str | None]:
    """The tracking URI and parent run id the tracking callback persisted in ``mlflow_runs.json``.

    Reading the recorded parent (rather than the latest parent of that name) keeps an
    older sweep of the same name, or a later one, from being read by mistake.
    """
    import json

    try:
        recorded = json.loads((paths.directory / "mlflow_runs.json").read_text())
    except (OSError, ValueError):
        return None, None
    if not isinstance(recorded, dict):
        return None, None
    uri, parent = recorded.get("tracking_uri"), recorded.get("parent")
    return (uri if isinstance(uri, str) else None), (parent if isinstance(parent, str) else None)


def _assemble(
    parent: ParentRun,
    uri: str,
    loaded: LoadedSpec | None,
    paths: SweepPaths | None,
    progress: Progress | None,
) -> SweepData:
    runs = read_trial_runs(uri, parent, progress)
    if not runs:
        raise TrackingError(
            f"{uri}: the parent run {parent.run_id} of sweep `{parent.name}` has no trial runs yet. "
            "Wait for the first trial to start, or check that this is the sweep you meant."
        )
    if loaded is None:
        loaded = spec_from_parent(uri, parent)
    metric = loaded.spec.metric if loaded else parent.metric
    mode = loaded.spec.mode if loaded else parent.mode
    if metric is None or mode not in ("min", "max"):
        raise SweepError(
            f"{uri}: parent run {parent.run_id} of sweep `{parent.name}` does not record the "
            "sweep's metric and mode, and no sweep folder was given. Load it by name with "
            "`storage=` pointing at the folder that holds `<name>/sweep.json`."
        )
    hyperparameters = (
        config_keys(loaded.spec)
        if loaded
        else parent.search_space or sorted({k for run in runs for k in run.params} - set(DERIVED_PARAMS))
    )
    trials = trials_frame(runs, metric, hyperparameters)
    history = history_frame(runs)
    data = SweepData(
        name=parent.name,
        metric=metric,
        mode=mode,
        tracking_uri=uri,
        experiment_id=parent.experiment_id,
        parent_run_id=parent.run_id,
        trials=trials,
        history=history,
        hyperparameters=hyperparameters,
        spec=loaded,
        paths=paths,
        running=parent.status == "RUNNING",
    )
    data.plan = _plan(data)
    return data


def trials_frame(runs: list[TrialRun], metric: str, hyperparameters: list[str]) -> pd.DataFrame:
    """One row per trial, typed (MLflow stores params as strings)."""
    rows = []
    for run in runs:
        row: dict[str, Any] = {"trial_id": run.trial_id, "run_id": run.run_id}
        row.update({k: _parse(run.params.get(k)) for k in hyperparameters})
        row.update({k: _parse(run.params.get(k)) for k in DERIVED_PARAMS})
        last = run.last_step_values()
        row.update(
            state=run.state,
            iterations=run.stopped_at_iteration
            if run.stopped_at_iteration is not None
            else last.get("_step", 0),
            rung=run.rung,
            node=run.node,
            value=last.get(metric),
        )
        row.update({k: v for k, v in last.items() if k != "_step"})
        row["start_time"] = pd.to_datetime(run.start_time, unit="ms", utc=True) if run.start_time else pd.NaT
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["iterations"] = frame["iterations"].astype(int)
    frame["rung"] = frame["rung"].astype(int)
    frame["budget_fraction"] = frame["iterations"] / frame["total_iterations"]
    # A trial whose metric went NaN or infinite, whether the trainable saw it (state
    # `diverged`) or only its last value shows it: plots draw it apart, rankings skip it.
    frame["diverged"] = (frame["state"] == "diverged") | ~frame["value"].map(is_finite_number)
    return frame.sort_values("start_time", kind="stable").reset_index(drop=True)


def history_frame(runs: list[TrialRun]) -> pd.DataFrame:
    """One row per (trial, iteration), one column per metric."""
    rows = [
        {"trial_id": run.trial_id, "iteration": step, **values}
        for run in runs
        for step, values in sorted(run.history.items())
    ]
    if not rows:
        return pd.DataFrame(columns=["trial_id", "iteration", *PROGRESS_METRICS])
    frame = pd.DataFrame(rows)
    frame["iteration"] = frame["iteration"].astype(int)
    if "samples_seen" in frame:
        frame["samples_seen"] = frame["samples_seen"].round().astype("Int64")
    return frame.sort_values(["trial_id", "iteration"]).reset_index(drop=True)


def _plan(data: SweepData) -> SweepPlan | None:
    """The plan `sweep plan` printed, to set expectation next to what happened."""
    if data.spec is None:
        return None
    try:
        return plan_spec(data.spec, reject_impossible=False)[1]
    except SweepError as exc:
        # The trainable may not import here (another machine, a moved file); the trial runs
        # carry its N and iterations per epoch, which is all the plan needs.
        data.notes.append(f"plan recomputed from MLflow params: the trainable did not resolve ({exc})")
    if data.trials.empty:
        return None
    first = data.trials.iloc[0]
    size, batch = int(first["dataset_size"]), int(first["batch_size"])
    drop_last = int(first["iterations_per_epoch"]) * batch < size
    return make_plan(data.spec.spec, size, drop_last)


def _parse(text: str | None) -> Any:
    """MLflow params are strings; give numbers back their type."""
    if text is None:
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"True": True, "False": False, "None": None}.get(text, text)


def _plain(value: Any) -> Any:
    # numpy scalars (np.int64, np.float64) print and serialise badly; give back Python ones.
    return value.item() if hasattr(value, "item") else value
