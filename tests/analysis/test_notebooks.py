"""The notebooks, executed top to bottom by a real Jupyter kernel (nbclient), against real sweeps.

A failing cell fails the test (nbclient raises CellExecutionError). Each notebook shows its
figures as PNG outputs and, when ``SWEEPS_FIGURES`` is set, saves them there too; both
are checked to exist and be non-empty.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from tests.analysis.conftest import FinishedSweep
from tests.conftest import REPO, TradeoffSweep

NOTEBOOKS = REPO / "notebooks"
COMPARE_FIGURES = ["learning_curves", "rung_survival", "learning_rate", "parallel_coordinates", "importance"]
QUICKSTART_FIGURES = ["learning_curves", "rung_survival"]


def execute(name: str, **env: str) -> Any:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute(env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **env})
    return notebook


def png_outputs(notebook: Any) -> list[bytes]:
    return [
        base64.b64decode(output["data"]["image/png"])
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "image/png" in output.get("data", {})
    ]


def assert_figures(notebook: Any, folder: Path, stems: list[str]) -> None:
    shown = png_outputs(notebook)
    assert len(shown) == len(stems)
    for stem, png in zip(stems, shown, strict=False):
        saved = (folder / f"{stem}.png").read_bytes()
        assert saved == png and png.startswith(b"\x89PNG") and len(png) > 10_000, stem


@pytest.mark.parametrize("name", ["compare_trials.ipynb", "quickstart.ipynb", "pareto_front.ipynb"])
def test_notebooks_are_committed_without_outputs(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


@pytest.mark.slow
def test_compare_trials_runs_against_a_finished_sweep(finished_sweep: FinishedSweep, tmp_path: Path) -> None:
    notebook = execute(
        "compare_trials.ipynb",
        SWEEPS_STORAGE=str(finished_sweep.storage),
        SWEEPS_NAME=finished_sweep.name,
        SWEEPS_FIGURES=str(tmp_path),
    )
    assert_figures(notebook, tmp_path, COMPARE_FIGURES)
    text = "\n".join(
        str(output.get("data", {}).get("text/markdown", ""))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    # The prose is computed from this sweep: N of the digits trainable, its best trial's batch size.
    best = finished_sweep.summary.best
    assert "N = 1,438 samples" in text
    assert f"batch size **{best['config']['batch_size']}**" in text
    assert f"{finished_sweep.summary.iterations_used:,.0f} iterations" in text


@pytest.mark.slow
def test_quickstart_runs_a_tiny_sweep_from_python(tmp_path: Path) -> None:
    storage, figures = tmp_path / "results", tmp_path / "figures"
    notebook = execute(
        "quickstart.ipynb", SWEEPS_STORAGE=str(storage), SWEEPS_NUM_SAMPLES="4", SWEEPS_FIGURES=str(figures)
    )
    assert_figures(notebook, figures, QUICKSTART_FIGURES)
    assert (storage / "quickstart" / "sweep.json").is_file() and (storage / "mlflow.db").is_file()
    from sweeps.analysis import load

    assert len(load("quickstart", storage=storage).trials) == 4


@pytest.mark.slow
def test_pareto_front_runs_against_a_finished_two_objective_sweep(
    tradeoff_sweep: TradeoffSweep, tmp_path: Path
) -> None:
    notebook = execute(
        "pareto_front.ipynb",
        SWEEPS_STORAGE=str(tradeoff_sweep.storage),
        SWEEPS_NAME=tradeoff_sweep.name,
        SWEEPS_FIGURES=str(tmp_path),
    )
    assert_figures(notebook, tmp_path, ["pareto_front"])
    printed = "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    # The table the notebook shows is the front `sweep run --json` printed.
    front = tradeoff_sweep.summary["pareto_front"]
    assert f"tradeoff: {len(front)} trial(s) on the front of val_accuracy, train_loss" in printed
    table = next(
        output["data"]["text/plain"]
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "trial_id" in output.get("data", {}).get("text/plain", "")
    )
    assert all(member["trial_id"] in table for member in front)
