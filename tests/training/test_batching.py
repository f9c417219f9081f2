"""The worker's report batching: which reports cross at once, and that none is lost or reordered."""

from __future__ import annotations

from typing import Any

import pytest

from sweeps.training.batching import HELD_KEY, ReportBatcher, points_in


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def report(iteration: int, **extra: Any) -> dict[str, Any]:
    return {"iteration": iteration, "val_accuracy": iteration / 100, "diverged": False, **extra}


def offer_all(batcher: ReportBatcher, iterations: list[int]) -> list[dict[str, Any]]:
    return [sent for i in iterations if (sent := batcher.offer(report(i))) is not None]


def test_only_milestones_and_the_final_iteration_cross_and_they_carry_every_held_report() -> None:
    batcher = ReportBatcher([20, 60], total_iterations=80, clock=FakeClock())
    sent = offer_all(batcher, list(range(1, 81)))
    assert [s["iteration"] for s in sent] == [20, 60, 80]
    delivered = [p["iteration"] for s in sent for p in points_in(s)]
    assert delivered == list(range(1, 81))  # each report once, in order
    assert batcher.held == 0


def test_a_loop_that_misses_a_milestone_crosses_at_its_first_report_past_it() -> None:
    batcher = ReportBatcher([20, 40], total_iterations=100, clock=FakeClock())
    sent = offer_all(batcher, list(range(32, 101, 32)) + [100])  # 32, 64, 96, 100
    assert [s["iteration"] for s in sent] == [32, 64, 100]
    assert [p["iteration"] for s in sent for p in points_in(s)] == [32, 64, 96, 100]


def test_a_report_beyond_several_milestones_passes_them_all() -> None:
    batcher = ReportBatcher([10, 20, 30], total_iterations=100, clock=FakeClock())
    assert batcher.offer(report(35)) is not None
    assert batcher.offer(report(36)) is None  # no milestone left before 100


@pytest.mark.parametrize("urgent, extra", [(True, {}), (False, {"diverged": True})])
def test_checkpoints_stops_and_diverged_values_cross_at_once(urgent: bool, extra: dict[str, Any]) -> None:
    batcher = ReportBatcher([50], total_iterations=100, clock=FakeClock())
    assert batcher.offer(report(1)) is None
    sent = batcher.offer(report(2, **extra), urgent=urgent)
    assert sent is not None and [p["iteration"] for p in points_in(sent)] == [1, 2]


def test_held_reports_cross_once_the_flush_period_has_passed() -> None:
    clock = FakeClock()
    batcher = ReportBatcher([1000], total_iterations=2000, flush_seconds=2.0, clock=clock)
    assert batcher.offer(report(1)) is None
    clock.now = 1.9
    assert batcher.offer(report(2)) is None
    clock.now = 2.0
    sent = batcher.offer(report(3))
    assert sent is not None and [p["iteration"] for p in points_in(sent)] == [1, 2, 3]
    clock.now = 3.0
    assert batcher.offer(report(4)) is None  # the period restarts at each send


def test_drain_sends_what_is_held_when_the_trial_ends() -> None:
    batcher = ReportBatcher([50], total_iterations=100, clock=FakeClock())
    assert batcher.drain() is None
    offer_all(batcher, [1, 2, 3])
    sent = batcher.drain()
    assert sent is not None and sent["iteration"] == 3
    assert [p["iteration"] for p in points_in(sent)] == [1, 2, 3]
    assert batcher.drain() is None


def test_points_in_a_plain_result_is_the_result_and_the_last_point_drops_the_held_key() -> None:
    plain = report(5, done=True)
    assert points_in(plain) == [plain]
    carried = {**report(2, done=True), HELD_KEY: [report(1)]}
    points = points_in(carried)
    assert HELD_KEY not in points[-1] and points[-1]["done"] is True and HELD_KEY in carried
