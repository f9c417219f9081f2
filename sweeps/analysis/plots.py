"""The sweep-level pictures: how trials learned, where ASHA cut them, what mattered.

Each function takes a :class:`~sweeps.analysis.SweepData` and returns a matplotlib
``Figure`` built without pyplot (so no global state and no GUI backend: it renders with
Agg wherever it is saved). Save with ``fig.savefig("x.png")``; in Jupyter, ``display(fig)``.

Example:
    >>> from sweeps.analysis import load, plots
    >>> sweep = load("digits-mlp")  # doctest: +SKIP
    >>> plots.learning_curves(sweep).savefig("curves.png", dpi=120)  # doctest: +SKIP
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

from sweeps.analysis.importance import param_importances
from sweeps.analysis.loading import SweepData
from sweeps.iterations import TrialShape
from sweeps.numbers import is_finite_number
from sweeps.spec.models import CategoricalParam, FloatParam, IntParam

#: How strongly trials that did not run to the end are drawn (they still tell a story).
FADED = 0.3
STOPPED_STATES = ("pruned", "diverged", "failed", "interrupted")


def to_png(figure: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (for ``IPython.display.Image`` or an HTML report)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def batch_size_colours(data: SweepData) -> dict[Any, Any]:
    """One colour per batch size, ordered small → large along viridis."""
    sizes = sorted(data.trials["batch_size"].dropna().unique()) if not data.trials.empty else []
    cmap = colormaps["viridis"]
    # Stop before viridis' pale yellow end, which is hard to see on white.
    return {b: cmap(0.8 * i / max(len(sizes) - 1, 1)) for i, b in enumerate(sizes)}


def learning_curves(data: SweepData, metric: str | None = None) -> Figure:
    """The metric against iterations (left) and samples seen (right), coloured by batch size.

    Pruned, diverged and failed trials are faded, with an × where they stopped; dotted
    lines mark the ASHA rung milestones. Against iterations a small batch looks slow, as
    it sees fewer samples per step; against samples seen the batch sizes line up.
    """
    metric = metric or data.metric
    fig = Figure(figsize=(13, 4.8), layout="constrained")
    by_iteration, by_samples = fig.subplots(1, 2, sharey=True)
    colours = batch_size_colours(data)
    curves = data.history.merge(data.trials[["trial_id", "batch_size", "state"]], on="trial_id")
    for _trial_id, curve in curves.groupby("trial_id", sort=False):
        # NaN and inf cannot be drawn: a diverged trial's curve ends at its last finite
        # value, with the × every trial stopped early gets.
        curve = curve[curve[metric].map(is_finite_number)].sort_values("iteration")
        if curve.empty:
            continue
        state = curve["state"].iloc[0]
        stopped = state in STOPPED_STATES
        style = {
            "color": colours.get(curve["batch_size"].iloc[0]),
            "alpha": FADED if stopped else 0.95,
            "linewidth": 1.2 if stopped else 2.0,
            "marker": ".",
            "markersize": 4,
        }
        for ax, x in ((by_iteration, "iteration"), (by_samples, "samples_seen")):
            ax.plot(curve[x], curve[metric], **style)
            if stopped:
                ax.plot(curve[x].iloc[-1], curve[metric].iloc[-1], "x", color=style["color"], markersize=7)
    _mark_rungs(data, by_iteration, by_samples, colours)
    by_iteration.set(xlabel="iteration (optimizer steps)", ylabel=metric, title=f"{metric} per iteration")
    by_samples.set(xlabel="samples seen (iterations × batch size)", title=f"{metric} per sample seen")
    handles = [Line2D([], [], color=c, linewidth=2, label=f"batch size {b}") for b, c in colours.items()]
    handles += [
        Line2D([], [], color="grey", linewidth=2, label="ran to the end"),
        Line2D([], [], color="grey", alpha=FADED, marker="x", label="stopped early (pruned, diverged)"),
        Line2D([], [], color="grey", linestyle=":", label="ASHA rung milestone"),
        Line2D([], [], color="grey", marker="v", linestyle="none", label="rung milestone, by batch size"),
    ]
    by_samples.legend(handles=handles, loc="best", fontsize="small")
    for ax in (by_iteration, by_samples):
        ax.grid(alpha=0.3)
    fig.suptitle(f"Sweep {data.name}: learning curves of {len(data.trials)} trials")
    return fig


def _mark_rungs(data: SweepData, by_iteration: Any, by_samples: Any, colours: dict[Any, Any]) -> None:
    """Rung milestones: a dotted line on the panel of the budget's own unit (every trial meets
    the rung there at the same x), a ▼ per batch size on the other panel's top edge, which
    shows where each batch size gets there without drawing a forest of lines."""
    plan = data.plan
    if plan is None or not plan.rungs:
        return
    native = {"iterations": 0, "samples": 1}.get(plan.budget_unit)
    for k, rung in enumerate(plan.rungs):
        points = {
            b: (i, TrialShape(plan.dataset_size, b, max(plan.epochs), plan.drop_last).samples_at(i))
            for b, i in rung.milestone_iterations_by_batch_size.items()
            if i is not None and b in colours
        }
        for index, ax in enumerate((by_iteration, by_samples)):
            if index == native:
                ax.axvline(rung.milestone, color="grey", linestyle=":", linewidth=1)
                ax.annotate(
                    f"rung {k}",
                    (rung.milestone, 1),
                    xycoords=("data", "axes fraction"),
                    xytext=(2, -10),
                    textcoords="offset points",
                    fontsize="x-small",
                    color="grey",
                )
                continue
            for b, point in points.items():
                ax.plot(
                    [point[index]],
                    [1],
                    marker="v",
                    color=colours[b],
                    markersize=6,
                    clip_on=False,
                    transform=ax.get_xaxis_transform(),
                    linestyle="none",
                )


def rung_survival(data: SweepData) -> Figure:
    """How many trials reached each ASHA rung, by batch size, next to what `sweep plan` expected."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    plan = data.plan
    milestones = plan.milestones() if plan else []
    unit = plan.budget_unit if plan else "iterations"
    labels = ["started"] + [f"rung {k}\n{m:,.4g} {unit}" for k, m in enumerate(milestones)]
    x = np.arange(len(labels))
    width = 0.38
    colours = batch_size_colours(data)
    bottom = np.zeros(len(labels))
    for b, colour in colours.items():
        trials = data.trials[data.trials["batch_size"] == b]
        counts = np.array([len(trials)] + [int((trials["rung"] >= k).sum()) for k in range(len(milestones))])
        ax.bar(x - width / 2, counts, width, bottom=bottom, color=colour, label=f"reached: batch size {b}")
        bottom += counts
    for xi, total in zip(x, bottom, strict=False):
        ax.annotate(f"{int(total)}", (xi - width / 2, total), ha="center", va="bottom", fontsize="small")
    if plan:
        expected = [float(plan.num_samples)] + [r.expected_trials for r in plan.rungs]
        ax.bar(
            x + width / 2,
            expected,
            width,
            color="white",
            edgecolor="black",
            hatch="//",
            label="expected by `sweep plan`",
        )
        for xi, value in zip(x, expected, strict=False):
            ax.annotate(f"{value:.1f}", (xi + width / 2, value), ha="center", va="bottom", fontsize="small")
    ax.set_xticks(x, labels)
    ax.set(ylabel="trials", title=f"Sweep {data.name}: trials reaching each ASHA rung")
    if not milestones:
        ax.set_title(f"Sweep {data.name}: no ASHA rungs (scheduler: none), every trial runs to its end")
    ax.legend(fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    return fig


def learning_rate_vs_metric(data: SweepData) -> Figure:
    """Each trial's final metric against its learning rate (log x), by batch size."""
    fig = Figure(figsize=(8, 4.8), layout="constrained")
    ax = fig.subplots()
    colours = batch_size_colours(data)
    for b, colour in colours.items():
        trials = data.trials[data.trials["batch_size"] == b]
        for stopped, marker_face, alpha in ((False, colour, 0.95), (True, "none", 0.6)):
            subset = trials[trials["state"].isin(STOPPED_STATES) == stopped]
            if subset.empty:
                continue  # no legend entry for markers that are not there
            subset = subset[subset["value"].map(is_finite_number)]  # a diverged trial's inf has no place
            if subset.empty:
                continue
            ax.scatter(
                subset["learning_rate"],
                subset["value"],
                s=45,
                facecolors=marker_face,
                edgecolors=colour,
                alpha=alpha,
                label=f"batch size {b}" + (" (stopped early)" if stopped else ""),
            )
    best = data.best()
    if best is not None:
        ax.scatter(
            [best["learning_rate"]],
            [best["value"]],
            s=220,
            marker="*",
            color="gold",
            edgecolors="black",
            zorder=5,
            label="best trial",
        )
    ax.set_xscale("log")
    # Ticks at 1, 2, 5 × 10^k read better than bare powers of ten over a short range;
    # over more than two decades they would crowd, so powers of ten alone.
    rates = data.trials["learning_rate"].dropna()
    decades = np.log10(rates.max() / rates.min()) if len(rates) and rates.min() > 0 else 0.0
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if decades <= 2 else (1.0,)))
    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    scaled = "learning_rate_base" in data.hyperparameters  # the effective value is what trained
    ax.set(
        xlabel=f"{'effective ' if scaled else ''}learning rate (log scale)",
        ylabel=f"final {data.metric}",
        title=f"Sweep {data.name}: learning rate against final {data.metric}{_not_drawn(data)}",
    )
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.grid(alpha=0.3, which="both")
    return fig


def parallel_coordinates(data: SweepData) -> Figure:
    """One line per trial across the sampled hyperparameters and the metric, coloured by the metric."""
    axes_names = data.searched() or [p for p in data.hyperparameters if p in data.trials]
    columns = [*axes_names, "value"]
    # Finite values only: MLflow's 1.797e308 for inf overflowed the colour scale (OverflowError).
    trials = data.trials[data.trials["value"].map(is_finite_number)]
    fig = Figure(figsize=(max(7, 2.2 * len(columns)), 4.8), layout="constrained")
    ax = fig.subplots()
    scaled = {
        name: _scale_axis(data, name, trials["value"] if name == "value" else trials[name])
        for name in columns
    }
    values = trials["value"].to_numpy(dtype=float)
    norm_low, norm_high = (values.min(), values.max()) if len(values) else (0.0, 1.0)
    cmap = colormaps["plasma"]
    order = np.argsort(values if data.mode == "max" else -values)  # best drawn last, on top
    for position in order:
        row = trials.iloc[position]
        colour = cmap((row["value"] - norm_low) / ((norm_high - norm_low) or 1.0))
        stopped = row["state"] in STOPPED_STATES
        ax.plot(
            range(len(columns)),
            [scaled[c][0][position] for c in columns],
            color=colour,
            alpha=FADED if stopped else 0.9,
            linewidth=1 if stopped else 2,
        )
    for i, name in enumerate(columns):
        ax.axvline(i, color="black", linewidth=0.8)
        for y, text in scaled[name][1]:
            ax.annotate(
                text, (i, y), xytext=(3, 0), textcoords="offset points", fontsize="x-small", va="center"
            )
    ax.set_xticks(range(len(columns)), [*axes_names, f"final {data.metric}"])
    ax.set_yticks([])
    ax.set_xlim(-0.2, len(columns) - 0.5)
    ax.set_ylim(-0.05, 1.05)
    mappable = ax.scatter([], [], c=[], cmap=cmap, vmin=norm_low, vmax=norm_high)
    fig.colorbar(mappable, ax=ax, label=data.metric)
    ax.set_title(f"Sweep {data.name}: parallel coordinates (faded: stopped early){_not_drawn(data)}")
    return fig


def _not_drawn(data: SweepData) -> str:
    """The title's note on the trials left out because their final value is NaN or infinite."""
    if "diverged" not in data.trials:
        return ""
    diverged = int((data.trials["diverged"] & ~data.trials["value"].map(is_finite_number)).sum())
    return (
        f"\n{diverged} diverged trial(s) not drawn: their final value is NaN or infinite" if diverged else ""
    )


def _scale_axis(data: SweepData, name: str, column: Any) -> tuple[list[float], list[tuple[float, str]]]:
    """Map a column to [0, 1] (log for log-uniform params, index for categoricals) plus tick labels."""
    param = data.spec.spec.search_space.get(name) if data.spec else None
    numeric = column.map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)).all()
    if isinstance(param, CategoricalParam) or not numeric:
        choices = (
            list(param.values) if isinstance(param, CategoricalParam) else sorted(column.unique(), key=str)
        )
        index = {v: i / max(len(choices) - 1, 1) for i, v in enumerate(choices)}
        return [index.get(v, 0.5) for v in column], [(y, str(v)) for v, y in index.items()]
    log = isinstance(param, (FloatParam, IntParam)) and param.log
    low, high = (
        (param.low, param.high) if isinstance(param, (FloatParam, IntParam)) else (column.min(), column.max())
    )
    transform = np.log10 if log else (lambda v: v)
    span = (transform(high) - transform(low)) or 1.0
    scaled = [(transform(v) - transform(low)) / span for v in column.astype(float)]
    if isinstance(param, IntParam) and not log and len(param.values()) <= 12:
        return scaled, [((v - low) / span, str(v)) for v in param.values()]
    return scaled, [(0.0, f"{low:.3g}"), (1.0, f"{high:.3g}")]


def importance(data: SweepData, evaluator: Any = None) -> Figure:
    """Hyperparameter importance from Optuna's evaluators (fANOVA by default) on the persisted study."""
    result = param_importances(data, evaluator)
    fig = Figure(figsize=(8, 0.6 * max(len(result.importances), 3) + 1.5), layout="constrained")
    ax = fig.subplots()
    names = list(result.importances)[::-1]
    ax.barh(names, [result.importances[n] for n in names], color=colormaps["viridis"](0.35))
    for y, name in enumerate(names):
        ax.annotate(
            f"{result.importances[name]:.2f}",
            (result.importances[name], y),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize="small",
        )
    if not names:
        ax.text(0.5, 0.5, result.basis, ha="center", va="center", wrap=True, transform=ax.transAxes)
    ax.set(xlabel="importance (sums to 1)", xlim=(0, 1.1))
    ax.set_title(result.basis, fontsize="small", color="dimgrey", wrap=True)
    fig.suptitle(f"Sweep {data.name}: hyperparameter importance ({result.evaluator}, Optuna)")
    ax.grid(axis="x", alpha=0.3)
    return fig


#: Every plot of a report, in the order shown: (file stem, title, function).
ALL_PLOTS = (
    ("learning_curves", "Learning curves", learning_curves),
    ("rung_survival", "Rung survival", rung_survival),
    ("learning_rate", "Learning rate against the final metric", learning_rate_vs_metric),
    ("parallel_coordinates", "Parallel coordinates", parallel_coordinates),
    ("importance", "Hyperparameter importance", importance),
)
