"""The warning for reports that miss ASHA's milestones (fast: trial events, no Ray)."""

from __future__ import annotations

from sweeps.backend import TrialInfo
from sweeps.runner.report_alignment import ReportAlignment


def a_trial(trial_id: str) -> TrialInfo:
    return TrialInfo(trial_id, {"batch_size": 10, "epochs": 10})


def feed(alignment: ReportAlignment, trial: TrialInfo, iterations: list[int]) -> None:
    for i in iterations:
        alignment.trial_reported(trial, [{"iteration": i}])


def alignment() -> ReportAlignment:
    # N = 1,000 at batch size 10: 100 iterations per epoch; milestones 20 and 40 iterations.
    return ReportAlignment(1000, False, [20, 40], "iterations")


def test_reports_on_the_milestones_raise_no_warning() -> None:
    watcher = alignment()
    feed(watcher, a_trial("a"), [10, 20, 30, 40, 50, 1000])
    assert watcher.warning is None


def test_a_loop_reporting_every_32_iterations_is_warned_once_naming_the_milestone() -> None:
    watcher = alignment()
    feed(watcher, a_trial("a"), [32, 64])
    assert watcher.warning is not None
    assert "iteration 32" in watcher.warning and "milestone at iteration 20" in watcher.warning
    assert "ctx.should_report" in watcher.warning
    first = watcher.warning
    feed(watcher, a_trial("b"), [33, 66])
    assert watcher.warning == first  # once per sweep


def test_held_reports_count_as_reports() -> None:
    watcher = alignment()
    watcher.trial_reported(a_trial("a"), [{"iteration": 10}, {"iteration": 20}, {"iteration": 40}])
    assert watcher.warning is None
    watcher.trial_reported(a_trial("b"), [{"iteration": 10}, {"iteration": 30}, {"iteration": 45}])
    assert watcher.warning is not None and "iterations 10 and 30" in watcher.warning


def test_samples_budget_milestones_are_converted_to_the_trial_s_iterations() -> None:
    # 250 samples at batch size 10 is iteration 25.
    watcher = ReportAlignment(1000, False, [250], "samples")
    feed(watcher, a_trial("a"), [20, 30])
    assert watcher.warning is not None and "iteration 25" in watcher.warning
