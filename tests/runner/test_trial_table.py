"""The live view's per-trial table: running first, then the latest ended, within the terminal's height."""

from __future__ import annotations

import io

from rich.console import Console

from sweeps.outcomes import Outcome, TrialRecord
from sweeps.runner.ledger import TrialLedger
from sweeps.runner.progress import LiveView
from sweeps.runner.trial_table import trial_table


def record(trial_id: str, iteration: int, outcome: Outcome | None, value: float = 0.5) -> TrialRecord:
    result = {"iteration": iteration, "total_iterations": 300, "val_accuracy": value}
    return TrialRecord(trial_id, {"batch_size": 64, "learning_rate": 0.0032, "epochs": 8}, result, outcome)


def render(table: object, width: int = 100) -> str:
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    console.print(table)
    return console.export_text()


def test_rows_show_id_config_progress_rung_metric_and_state() -> None:
    records = [
        record("a", 60, None, 0.9123),
        record("b", 20, Outcome.PRUNED),
        record("c", 300, Outcome.COMPLETED),
    ]
    text = render(trial_table(records, ["b", "c"], "val_accuracy", [20, 60, 180], "iterations", max_rows=10))
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines[0].split() == ["trial", "config", "iteration", "rung", "val_accuracy", "state"]
    assert lines[1].split() == ["a", "bs=64", "lr=3.2e-03", "ep=8", "60/300", "1", "0.9123", "running"]
    # The most recently ended trial comes right under the running ones.
    assert lines[2].split()[0] == "c" and lines[2].split()[-1] == "completed"
    assert lines[3].split()[0] == "b" and lines[3].split()[-3:] == ["0", "0.5000", "pruned"]


def test_the_table_fits_the_rows_it_is_given_and_says_how_many_are_hidden() -> None:
    records = [record(f"r{i}", 10, None) for i in range(5)] + [
        record(f"e{i}", 300, Outcome.COMPLETED) for i in range(5)
    ]
    text = render(
        trial_table(records, [f"e{i}" for i in range(5)], "val_accuracy", [20], "iterations", max_rows=6)
    )
    shown = [line.split()[0] for line in text.splitlines() if line.strip() and line.split()[0][0] in "re"]
    assert shown == ["r0", "r1", "r2", "r3", "r4", "e4"]
    assert "4 more trial(s) not shown" in text
    assert trial_table(records, [], "val_accuracy", [20], "iterations", max_rows=0) is None


def test_the_live_view_stays_within_a_short_terminal() -> None:
    ledger = TrialLedger(metric="val_accuracy", mode="max")
    for i in range(30):
        ledger.trials[f"t{i}"] = record(f"t{i}", 10, None)
    console = Console(file=io.StringIO(), width=100, height=20, color_system=None)
    view = LiveView(ledger, "tiny", 40, console=console, milestones=[20], budget_unit="iterations")
    text = render(view._render())
    assert len(text.rstrip("\n").splitlines()) <= 20
    assert "t0" in text and "more trial(s) not shown" in text
