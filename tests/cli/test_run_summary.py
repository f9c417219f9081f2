"""The terminal summary at the end of `sweep run` points to `sweep report` and `sweep ui`."""

from __future__ import annotations

import pytest

from sweeps.cli.outcome import print_summary
from sweeps.runner.summary import SweepSummary


def test_the_summary_points_to_the_report_and_the_mlflow_ui(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    summary = SweepSummary(
        name="digits-mlp",
        best=None,
        trials={"completed": 3, "pruned": 5, "diverged": 0, "failed": 0},
        iterations_used=500,
        iterations_worst_case=1200,
        storage="/data/my results/digits-mlp",
        wall_seconds=9.0,
    )
    print_summary(summary, "val_accuracy")
    out = capsys.readouterr().out
    assert "sweep report digits-mlp --storage '/data/my results'" in out
    assert "sweep ui --storage '/data/my results'" in out


def summary_of(**changes: object) -> SweepSummary:
    fields: dict = {
        "name": "oom",
        "best": None,
        "trials": {"completed": 5, "pruned": 0, "diverged": 0, "failed": 7},
        "iterations_used": 500,
        "iterations_worst_case": 1200,
        "storage": "/data/results/oom",
        "wall_seconds": 9.0,
    }
    fields.update(changes)
    return SweepSummary(**fields)  # type: ignore[arg-type]


def test_an_aborted_sweep_says_aborted_in_its_first_line_and_groups_its_errors(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    error = "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB [GPU 0]"
    print_summary(
        summary_of(
            aborted="7 trials failed, more than failure.max_failed_fraction allows (6)",
            failures=[f"7 × {error} (batch_size ≥ 128 in 7 of 7)"],
        ),
        "val_accuracy",
    )
    out = capsys.readouterr().out
    first = out.strip().splitlines()[0]
    assert first.startswith("Sweep oom aborted after 9.0 s") and "finished" not in first
    flat = " ".join(out.split())
    assert f"Failed trials by error: 7 × {error} (batch_size ≥ 128 in 7 of 7)" in flat  # [GPU 0] is no markup
    assert "ASHA saved" not in flat and "Iterations: 500 so far; the sweep aborted" in flat


@pytest.mark.parametrize("scheduler", ["asha", "none"])
def test_after_a_stop_the_iterations_line_claims_neither_completion_nor_saving(
    scheduler: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    print_summary(
        summary_of(stopped="sweep stop", trials={"completed": 2, "pruned": 0, "diverged": 0, "failed": 0}),
        "val_accuracy",
        scheduler,
    )
    out = capsys.readouterr().out
    assert "Iterations: 500 so far; the sweep stopped before its trials ended" in out
    assert "every trial ran to completion" not in out and "ASHA saved" not in out


def test_without_a_scheduler_failed_trials_are_not_said_to_have_run_to_completion(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    print_summary(summary_of(), "val_accuracy", "none")
    out = capsys.readouterr().out
    assert "every trial ran until it completed, failed or diverged; 7 failed or diverged" in out
    assert "every trial ran to completion" not in out


def test_a_huge_best_value_prints_compactly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    best = {"trial_id": "t1", "config": {"batch_size": 16}, "value": 3.97e24, "iterations": 10}
    print_summary(summary_of(best=best), "val_loss")
    assert "val_loss = 3.97e24 after 10 iterations" in " ".join(capsys.readouterr().out.split())
