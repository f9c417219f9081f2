"""The DataFrames built from trial runs, on the awkward cases a real sweep can leave behind.

A trial that failed before its first report has no history; a trial still running has no
state tag yet; params come back from MLflow as strings. The plots must draw all of them.
"""

from __future__ import annotations

import math

import pytest

from sweeps.analysis import SweepData, plots
from sweeps.analysis.loading import history_frame, trials_frame
from sweeps.analysis.mlflow_reader import TrialRun, _state_from_status, unclamped
from sweeps.analysis.report import all_trials, best_trials


def run(
    trial_id: str,
    bs: int,
    lr: float,
    state: str,
    history: dict[int, dict[str, float]],
    stopped: int | None,
    rung: int = 0,
    epochs: int = 2,
) -> TrialRun:
    ipe = math.ceil(1000 / bs)
    params = {
        "batch_size": str(bs),
        "epochs": str(epochs),
        "learning_rate": repr(lr),
        "activation": "relu",
        "iterations_per_epoch": str(ipe),
        "total_iterations": str(ipe * epochs),
        "dataset_size": "1000",
    }
    return TrialRun(
        f"run-{trial_id}", trial_id, params, state, stopped, rung, "node-1", 1_700_000_000_000, history
    )


def curve(bs: int, *iterations: int) -> dict[int, dict[str, float]]:
    return {
        i: {
            "val_loss": 1.0 / i,
            "epoch": i / math.ceil(1000 / bs),
            "samples_seen": float(min(i * bs, 1000 * 2)),
        }
        for i in iterations
    }


RUNS = [
    run("a", 100, 0.01, "completed", curve(100, 10, 20), 20, rung=1),
    run("b", 50, 0.1, "pruned", curve(50, 10), 10),
    run("c", 100, 0.3, "failed", {}, 0, rung=-1),
    run("d", 50, 0.001, "running", curve(50, 10, 20), None),
]
HYPERPARAMETERS = ["batch_size", "epochs", "learning_rate", "activation"]


@pytest.fixture
def data() -> SweepData:
    return SweepData(
        name="edge",
        metric="val_loss",
        mode="min",
        tracking_uri="sqlite:///x.db",
        experiment_id="1",
        parent_run_id="p",
        trials=trials_frame(RUNS, "val_loss", HYPERPARAMETERS),
        history=history_frame(RUNS),
        hyperparameters=HYPERPARAMETERS,
    )


def test_params_get_their_types_back_and_missing_values_stay_missing(data: SweepData) -> None:
    trials = data.trials.set_index("trial_id")
    assert trials.loc["a", "batch_size"] == 100 and trials.loc["a", "learning_rate"] == 0.01
    assert trials.loc["a", "activation"] == "relu"
    assert math.isnan(trials.loc["c", "value"])  # failed before its first report
    assert trials.loc["c", "iterations"] == 0 and trials.loc["c", "rung"] == -1
    assert trials.loc["d", "iterations"] == 20  # no stop tag yet: its last logged step
    assert trials.loc["a", "budget_fraction"] == 1.0


def test_history_has_no_rows_for_a_trial_without_reports(data: SweepData) -> None:
    assert set(data.history["trial_id"]) == {"a", "b", "d"}
    assert list(data.history.columns[:2]) == ["trial_id", "iteration"]
    assert str(data.history["samples_seen"].dtype) == "Int64"


def test_best_prefers_completed_trials_in_the_sweeps_direction(data: SweepData) -> None:
    # d (running) has the lowest loss, b (pruned) a lower one than a; the completed a wins.
    assert data.best()["trial_id"] == "a"
    assert data.best_config() == {"batch_size": 100, "epochs": 2, "learning_rate": 0.01, "activation": "relu"}
    assert type(data.best_config()["batch_size"]) is int


@pytest.mark.parametrize("stem, title, draw", plots.ALL_PLOTS[:4], ids=[p[0] for p in plots.ALL_PLOTS[:4]])
def test_plots_draw_failed_and_running_trials_without_a_plan(
    data: SweepData, stem: str, title: str, draw
) -> None:
    assert plots.to_png(draw(data)).startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "status, state", [("RUNNING", "running"), ("FAILED", "failed"), ("KILLED", "failed")]
)
def test_a_run_without_a_state_tag_is_read_from_its_status(status: str, state: str) -> None:
    assert _state_from_status(status) == state


#: MLflow stores a reported inf as the largest float; `_trial_run` reads it back through `unclamped`.
MLFLOW_INF = 1.7976931348623157e308
DIVERGING_RUNS = [
    *RUNS,
    run("e", 100, 3.0, "diverged", {10: {"val_loss": unclamped(MLFLOW_INF)}}, 10),
    run("f", 50, 1.0, "completed", {10: {"val_loss": 3.97e24}, 20: {"val_loss": 3.97e24}}, 20),
    run("g", 50, 2.0, "completed", {10: {"val_loss": float("nan")}}, 10),
]


@pytest.fixture
def diverging() -> SweepData:
    return SweepData(
        name="edge",
        metric="val_loss",
        mode="max",
        tracking_uri="sqlite:///x.db",
        experiment_id="1",
        parent_run_id="p",
        trials=trials_frame(DIVERGING_RUNS, "val_loss", HYPERPARAMETERS),
        history=history_frame(DIVERGING_RUNS),
        hyperparameters=HYPERPARAMETERS,
    )


def test_mlflows_largest_float_is_read_back_as_inf() -> None:
    assert unclamped(MLFLOW_INF) == math.inf and unclamped(-MLFLOW_INF) == -math.inf
    assert unclamped(3.97e24) == 3.97e24 and math.isnan(unclamped(float("nan")))


def test_trials_with_nan_or_inf_values_are_marked_diverged_and_never_ranked_best(
    diverging: SweepData,
) -> None:
    marked = diverging.trials.set_index("trial_id")["diverged"]
    assert set(marked[marked].index) == {"c", "e", "g"}  # c: failed without a value
    # mode max: inf would win and NaN would tie; the huge but finite 3.97e24 is a real value.
    assert diverging.best()["trial_id"] == "f"
    assert list(best_trials(diverging)["trial"])[:1] == ["f"] and "e" not in set(
        best_trials(diverging)["trial"]
    )


@pytest.mark.parametrize("stem, title, draw", plots.ALL_PLOTS[:4], ids=[p[0] for p in plots.ALL_PLOTS[:4]])
def test_plots_draw_inf_nan_and_huge_values(diverging: SweepData, stem: str, title: str, draw) -> None:
    # parallel_coordinates raised OverflowError on MLflow's 1.797e308 for inf.
    assert plots.to_png(draw(diverging)).startswith(b"\x89PNG")


def test_the_report_shows_inf_and_huge_values_compactly(diverging: SweepData) -> None:
    shown = all_trials(diverging).set_index("trial")["val_loss"]
    assert (shown["e"], shown["f"], shown["g"]) == ("inf", "3.97e+24", "nan")
