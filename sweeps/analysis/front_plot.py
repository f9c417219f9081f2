"""The Pareto front of a multi-objective sweep, drawn: ``sweep report``'s front plot.

Two objectives: one scatter of every trial, the front's members joined by its staircase,
pruned trials marked apart (their values are from the rung that stopped them, not final).
Three: the three pairwise scatters, front members highlighted in each. The front is the
one ``sweep best`` shows, read from the sweep's study (:mod:`sweeps.runner.front_reader`);
without the sweep's folder, it is computed from the completed trials' final values
(constraints then unknown).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sweeps.analysis.loading import SweepData
from sweeps.errors import SweepError
from sweeps.search.pareto import pareto_front


def objectives_of(data: SweepData) -> list[tuple[str, str]]:
    """(metric, mode) of each objective of the sweep (one for a single-objective sweep)."""
    return list(data.spec.spec.objectives) if data.spec is not None else [(data.metric, data.mode)]


def front_ids(data: SweepData, objectives: list[tuple[str, str]]) -> set[str]:
    """The trial ids on the sweep's front: the study's when the sweep's folder is here."""
    if data.paths is not None and data.paths.study_file.exists():
        from sweeps.runner.front_reader import read_front

        return {member.trial_id for member in read_front(data.paths.storage, data.name)[1]}
    done = data.trials[data.trials["state"] == "completed"].dropna(subset=[m for m, _ in objectives])
    signs = [1.0 if mode == "max" else -1.0 for _, mode in objectives]
    points = [
        [s * float(row[m]) for s, (m, _) in zip(signs, objectives, strict=True)] for _, row in done.iterrows()
    ]
    return {str(done.iloc[i]["trial_id"]) for i in pareto_front(points)}


def pareto_front_plot(data: SweepData) -> Figure:
    """Every trial in the objectives' plane(s), the front highlighted and pruned trials marked."""
    objectives = objectives_of(data)
    if len(objectives) < 2:
        raise SweepError(f"the sweep `{data.name}` has one objective: there is no Pareto front to draw")
    members = front_ids(data, objectives)
    pairs = list(itertools.combinations(range(len(objectives)), 2))
    figure = Figure(figsize=(6.4 * len(pairs), 4.8), layout="constrained")
    axes = figure.subplots(1, len(pairs), squeeze=False)[0]
    trials = data.trials
    for ax, (i, j) in zip(axes, pairs, strict=True):
        (x_name, x_mode), (y_name, y_mode) = objectives[i], objectives[j]
        if x_name not in trials or y_name not in trials:
            raise SweepError(f"the trials of `{data.name}` have no `{x_name}` or `{y_name}` to draw")
        on_front = trials["trial_id"].astype(str).isin(members)
        pruned = trials["state"] == "pruned"
        rest = ~on_front & ~pruned
        ax.scatter(
            trials.loc[rest, x_name],
            trials.loc[rest, y_name],
            s=24,
            color="tab:blue",
            alpha=0.6,
            label="completed (and other) trials",
        )
        ax.scatter(
            trials.loc[pruned, x_name],
            trials.loc[pruned, y_name],
            s=28,
            marker="x",
            color="tab:grey",
            label="pruned (value at the rung that stopped it)",
        )
        front = trials.loc[on_front].sort_values(x_name)
        ax.scatter(
            front[x_name],
            front[y_name],
            s=60,
            color="tab:red",
            edgecolor="black",
            zorder=3,
            label=f"Pareto front ({len(front)})",
        )
        if len(objectives) == 2 and len(front) > 1:
            _staircase(ax, front[x_name].to_numpy(float), front[y_name].to_numpy(float), x_mode, y_mode)
        ax.set(xlabel=f"{x_name} ({x_mode})", ylabel=f"{y_name} ({y_mode})")
        ax.legend(fontsize="small")
    figure.suptitle(f"Sweep {data.name}: Pareto front of {', '.join(m for m, _ in objectives)}")
    return figure


def _staircase(ax: Axes, x: np.ndarray, y: np.ndarray, x_mode: str, y_mode: str) -> None:
    """The front's attainment line through its members, sorted along the first objective."""
    order = np.argsort(x if x_mode == "max" else -x)[::-1]
    xs, ys = x[order], y[order]
    ax.step(
        xs,
        ys,
        where="post" if (x_mode == "max") == (y_mode == "max") else "pre",
        color="tab:red",
        alpha=0.7,
        linewidth=1.2,
    )


def has_front(data: SweepData) -> bool:
    """Whether the report should draw a front (a sweep with several objectives)."""
    return len(objectives_of(data)) > 1 and isinstance(data.trials, pd.DataFrame)
