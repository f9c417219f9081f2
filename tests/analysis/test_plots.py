"""The plots, drawn from a real sweep: each renders, and shows what it claims to show."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from matplotlib.figure import Figure

from sweeps.analysis import plots

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("stem, title, draw", plots.ALL_PLOTS, ids=[p[0] for p in plots.ALL_PLOTS])
def test_every_plot_renders_a_non_empty_png(sweep_data: Any, stem: str, title: str, draw: Any) -> None:
    figure = draw(sweep_data)
    assert isinstance(figure, Figure) and figure.axes
    png = plots.to_png(figure)
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_learning_curves_draw_each_trial_against_iterations_and_samples(sweep_data: Any) -> None:
    figure = plots.learning_curves(sweep_data)
    by_iteration, by_samples = figure.axes[:2]
    trials = sweep_data.trials.set_index("trial_id")
    curves = sweep_data.history.groupby("trial_id")
    for ax, x in ((by_iteration, "iteration"), (by_samples, "samples_seen")):
        lines = [
            line
            for line in ax.get_lines()
            if line.get_linestyle() == "-" and len(line.get_xdata()) >= 1 and line.get_marker() == "."
        ]
        assert len(lines) == len(trials)
        drawn = sorted(tuple(line.get_xdata()) for line in lines)
        assert drawn == sorted(tuple(curve[x]) for _, curve in curves)
        # Trials ASHA stopped are faded; those that ran to the end are not.
        faded = sum(1 for line in lines if line.get_alpha() == plots.FADED)
        assert faded == int((trials["state"] != "completed").sum())
    # One dotted line per rung milestone (both batch sizes reach each at the same iteration).
    milestones = [line.get_xdata()[0] for line in by_iteration.get_lines() if line.get_linestyle() == ":"]
    assert milestones == sweep_data.plan.milestones()
    assert "iteration" in by_iteration.get_xlabel() and "samples seen" in by_samples.get_xlabel()


def test_rung_survival_puts_actual_counts_next_to_the_plan(sweep_data: Any) -> None:
    ax = plots.rung_survival(sweep_data).axes[0]
    plan, trials = sweep_data.plan, sweep_data.trials
    rungs = len(plan.rungs)
    actual = np.zeros(rungs + 1)
    expected = []
    for bar in ax.patches:
        if bar.get_hatch():
            expected.append(bar.get_height())
        else:
            # The bars of what happened end at rung k's tick, the plan's start there; stacked by batch size.
            actual[round(bar.get_x() + bar.get_width())] += bar.get_height()
    assert list(actual) == [len(trials)] + [int((trials["rung"] >= k).sum()) for k in range(rungs)]
    assert expected == pytest.approx([plan.num_samples] + [r.expected_trials for r in plan.rungs])


def test_learning_rate_plot_is_log_x_with_every_trial(sweep_data: Any) -> None:
    ax = plots.learning_rate_vs_metric(sweep_data).axes[0]
    assert ax.get_xscale() == "log"
    points = sum(len(c.get_offsets()) for c in ax.collections)
    assert points == len(sweep_data.trials) + 1  # every trial, plus the star on the best


def test_parallel_coordinates_span_the_searched_hyperparameters_and_the_metric(sweep_data: Any) -> None:
    ax = plots.parallel_coordinates(sweep_data).axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["batch_size", "epochs", "learning_rate", "final val_accuracy"]
    assert len([line for line in ax.get_lines() if len(line.get_xdata()) == 4]) == len(sweep_data.trials)


def test_importance_ranks_the_sampled_hyperparameters(sweep_data: Any) -> None:
    from sweeps.analysis.importance import param_importances

    result = param_importances(sweep_data)
    assert set(result.importances) == {"batch_size", "epochs", "learning_rate"}
    assert sum(result.importances.values()) == pytest.approx(1.0)
    assert list(result.importances.values()) == sorted(result.importances.values(), reverse=True)
    assert result.evaluator == "Fanova" and result.trials_used >= 2
    ax = plots.importance(sweep_data).axes[0]
    assert sorted(t.get_text() for t in ax.get_yticklabels()) == sorted(result.importances)
