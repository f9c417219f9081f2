"""The terminal summary at the end of `sweep run` points to `sweep report` and `sweep ui`."""

from __future__ import annotations

import pytest

from sweeps.cli.outcome import print_summary
from sweeps.runner.summary import SweepSummary


def test_the_summary_points_to_the_report_and_the_mlflow_ui(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    summary = SweepSummary(
        name="digits-mlp", best=None, trials={"completed": 3, "pruned": 5, "diverged": 0, "failed": 0},
        iterations_used=500, iterations_worst_case=1200, storage="/data/my results/digits-mlp", wall_seconds=9.0,
    )
    print_summary(summary, "val_accuracy")
    out = capsys.readouterr().out
    assert "sweep report digits-mlp --storage '/data/my results'" in out
    assert "sweep ui --storage '/data/my results'" in out
