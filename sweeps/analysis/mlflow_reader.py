"""The MLflow side of :func:`sweeps.analysis.load`: find a sweep's parent run, read its trials.

It relies on the tags the tracking callback writes (``sweeps/tracking``): the parent run
carries ``sweep.name`` and ``sweep.role=parent``; each trial is a nested child run
(``mlflow.parentRunId``) with ``sweep.trial_id``, ``sweep.state``,
``sweep.stopped_at_iteration``, ``sweep.rung`` and ``sweep.node``, its hyperparameters as
params, and every metric logged with step = iteration.
"""

from __future__ import annotations

import math
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweeps.errors import TrackingError
from sweeps.numbers import INFINITE_MAGNITUDE
from sweeps.sqlite import read_only_url


@dataclass(frozen=True)
class ParentRun:
    run_id: str
    experiment_id: str
    name: str
    metric: str | None
    mode: str | None
    search_space: list[str] = field(default_factory=list)
    #: MLflow's status of the parent run: RUNNING while the sweep's driver runs.
    status: str = "FINISHED"


@dataclass
class TrialRun:
    run_id: str
    trial_id: str
    params: dict[str, str]
    state: str
    stopped_at_iteration: int | None
    rung: int
    node: str | None
    start_time: int | None
    history: dict[int, dict[str, float]] = field(default_factory=dict)

    def last_step_values(self) -> dict[str, float]:
        """Each metric's value at the last step it was logged, plus ``_step`` = the last step."""
        values: dict[str, float] = {}
        for step in sorted(self.history):
            values.update(self.history[step])
        values["_step"] = max(self.history, default=0)
        return values


def client(uri: str) -> Any:
    """An MlflowClient for ``uri``, refusing stores that do not exist rather than creating them."""
    from mlflow import MlflowClient

    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.exists():
            raise TrackingError(
                f"{uri}: there is no MLflow store at {path}. The sweep may have run with "
                "`tracking.enabled: false` or a `tracking.uri` elsewhere; pass that URI as "
                "`tracking_uri=` (CLI: `--tracking-uri`)."
            )
        # Read-only (sweeps/sqlite.py): the analysis only reads, also on a read-only mount.
        return MlflowClient(tracking_uri=read_only_url(path))
    if uri.startswith(("http://", "https://")):
        _check_server(uri)
    return MlflowClient(tracking_uri=uri)


def _check_server(uri: str) -> None:
    # MLflow's own client retries for minutes against a dead server; one quick probe
    # turns that into an immediate, readable error.
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=10) as response:
            response.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingError(
            f"{uri}: cannot reach the MLflow tracking server there ({reason}). Start it "
            "(`mlflow server --backend-store-uri ...`) or correct `--tracking-uri`."
        ) from None


def read_parent(
    uri: str, *, experiment: str | None = None, sweep: str | None = None, run_id: str | None = None
) -> ParentRun:
    """The sweep's parent run: by id when known, else the latest parent of ``sweep`` in ``experiment``."""
    from mlflow.exceptions import MlflowException

    mlflow_client = client(uri)
    run = None
    if run_id:
        try:
            run = mlflow_client.get_run(run_id)
        except MlflowException:
            if experiment is None:
                raise TrackingError(
                    f"{uri}: no MLflow run with id {run_id}. Check the id (the parent run of "
                    "a sweep is tagged sweep.role=parent) and the tracking URI."
                ) from None
    if run is None:
        found = mlflow_client.get_experiment_by_name(experiment)
        if found is None:
            raise TrackingError(
                f"{uri}: no MLflow experiment named `{experiment}`. The sweep may have run "
                "with `tracking.enabled: false`, under another `tracking.experiment`, or "
                "against another tracking URI; pass `experiment=` or `tracking_uri=`."
            )
        parents = mlflow_client.search_runs(
            [found.experiment_id],
            filter_string=f"tags.`sweep.role` = 'parent' AND tags.`sweep.name` = '{sweep}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if not parents:
            raise TrackingError(
                f"{uri}: experiment `{experiment}` holds no parent run of sweep `{sweep}` "
                "(tags sweep.role=parent, sweep.name). Check the sweep name."
            )
        run = parents[0]
    tags, params = run.data.tags, run.data.params
    return ParentRun(
        run_id=run.info.run_id,
        experiment_id=run.info.experiment_id,
        name=tags.get("sweep.name") or sweep or run.info.run_name,
        metric=params.get("metric") or tags.get("sweep.metric"),
        mode=params.get("mode") or tags.get("sweep.mode"),
        search_space=[p.strip() for p in params.get("search_space", "").split(",") if p.strip()],
        status=run.info.status,
    )


#: Where the tracking callback stores the spec as run (file plus ``--set`` overrides).
EFFECTIVE_SPEC_ARTIFACT = "spec/effective_spec.yaml"


def spec_from_parent(uri: str, parent: ParentRun) -> Any:
    """The sweep's spec from its parent run's artifact, or None if it cannot be read.

    Only the plan (rung milestones, expected survivors) and the parameter scales depend
    on it, so a sweep whose artifact is missing still loads.
    """
    import tempfile

    import yaml

    from sweeps.spec.loading import validate_spec

    try:
        with tempfile.TemporaryDirectory(prefix="sweeps-spec-") as folder:
            local = client(uri).download_artifacts(parent.run_id, EFFECTIVE_SPEC_ARTIFACT, folder)
            raw = yaml.safe_load(Path(local).read_text())
        return validate_spec(raw, Path(f"{uri} run {parent.run_id} {EFFECTIVE_SPEC_ARTIFACT}"))
    except Exception:  # noqa: BLE001 - a missing or unreadable spec only costs the plan
        return None


def read_trial_runs(
    uri: str, parent: ParentRun, progress: Callable[[int, int], None] | None = None
) -> list[TrialRun]:
    """Every child run of ``parent`` with its full metric history."""
    mlflow_client = client(uri)
    runs: list[Any] = []
    token = None
    while True:
        page = mlflow_client.search_runs(
            [parent.experiment_id],
            filter_string=f"tags.`mlflow.parentRunId` = '{parent.run_id}'",
            max_results=1000,
            page_token=token,
        )
        runs.extend(r for r in page if r.data.tags.get("sweep.role", "trial") == "trial")
        token = page.token
        if not token:
            break
    done = 0
    if progress:
        progress(0, len(runs))

    def read(run: Any) -> TrialRun:
        return _trial_run(mlflow_client, run)

    # A tracking server answers one metric history per request: read trials in parallel.
    workers = 8 if uri.startswith(("http://", "https://")) else 1
    trials = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for trial in pool.map(read, runs):
            trials.append(trial)
            done += 1
            if progress:
                progress(done, len(runs))
    return trials


def _trial_run(mlflow_client: Any, run: Any) -> TrialRun:
    tags = run.data.tags
    history: dict[int, dict[str, float]] = {}
    for key in run.data.metrics:
        for point in mlflow_client.get_metric_history(run.info.run_id, key):
            history.setdefault(int(point.step), {})[key] = unclamped(float(point.value))
    stopped = tags.get("sweep.stopped_at_iteration")
    return TrialRun(
        run_id=run.info.run_id,
        trial_id=tags.get("sweep.trial_id") or run.info.run_name,
        params=dict(run.data.params),
        state=tags.get("sweep.state") or _state_from_status(run.info.status),
        stopped_at_iteration=int(float(stopped)) if stopped not in (None, "") else None,
        rung=int(float(tags.get("sweep.rung", -1))),
        node=tags.get("sweep.node"),
        start_time=run.info.start_time,
        history=history,
    )


def unclamped(value: float) -> float:
    """``value`` as the trial reported it: MLflow stores ``±inf`` as ``±1.797e308`` (the
    largest float), which turns into an overflow as soon as a plot computes with it."""
    if abs(value) >= INFINITE_MAGNITUDE and math.isfinite(value):
        return math.copysign(math.inf, value)
    return value


def _state_from_status(status: str) -> str:
    # A trial still running (or whose driver died) has no sweep.state tag yet.
    return {"RUNNING": "running", "SCHEDULED": "running", "FAILED": "failed", "KILLED": "failed"}.get(
        status, "running"
    )
