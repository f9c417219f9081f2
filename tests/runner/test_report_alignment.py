"""The warning for reports that miss ASHA's milestones (fast: fake trials, no Ray)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sweeps.runner.report_alignment import ReportAlignment
from sweeps.training.batching import HELD_KEY


@dataclass
class FakeTrial:
    trial_id: str
    config: dict[str, Any] = field(default_factory=lambda: {"batch_size": 10, "epochs": 10})


def feed(alignment: ReportAlignment, trial: FakeTrial, iterations: list[int]) -> None:
    for i in iterations:
        alignment.on_trial_result(0, [], trial, {"iteration": i})


def alignment() -> ReportAlignment:
    # N = 1,000 at batch size 10: 100 iterations per epoch; milestones 20 and 40 iterations.
    return ReportAlignment(1000, False, [20, 40], "iterations")


def test_reports_on_the_milestones_raise_no_warning() -> None:
    watcher = alignment()
    feed(watcher, FakeTrial("a"), [10, 20, 30, 40, 50, 1000])
    assert watcher.warning is None


def test_a_loop_reporting_every_32_iterations_is_warned_once_naming_the_milestone() -> None:
    watcher = alignment()
    feed(watcher, FakeTrial("a"), [32, 64])
    assert watcher.warning is not None
    assert "iteration 32" in watcher.warning and "milestone at iteration 20" in watcher.warning
    assert "ctx.should_report" in watcher.warning
    first = watcher.warning
    feed(watcher, FakeTrial("b"), [33, 66])
    assert watcher.warning == first  # once per sweep


def test_held_reports_count_as_reports() -> None:
    watcher = alignment()
    watcher.on_trial_result(0, [], FakeTrial("a"), {"iteration": 40, HELD_KEY: [{"iteration": 10}, {"iteration": 20}]})
    assert watcher.warning is None
    watcher.on_trial_result(0, [], FakeTrial("b"), {"iteration": 45, HELD_KEY: [{"iteration": 10}, {"iteration": 30}]})
    assert watcher.warning is not None and "iterations 10 and 30" in watcher.warning


def test_samples_budget_milestones_are_converted_to_the_trial_s_iterations() -> None:
    # 250 samples at batch size 10 is iteration 25.
    watcher = ReportAlignment(1000, False, [250], "samples")
    feed(watcher, FakeTrial("a"), [20, 30])
    assert watcher.warning is not None and "iteration 25" in watcher.warning
