"""Failed trials grouped by their error's first line, with what their configs share (no Ray)."""

from __future__ import annotations

import pytest

from sweeps.outcomes import Outcome, TrialRecord, error_headline
from sweeps.runner.failure_groups import failure_lines, group_failures, shared_conditions

RAY_ERROR = """Failure # 1 (occurred at 2026-12-04_09-50-01)
ray::ImplicitFunc.train() (pid=4242, ip=127.0.0.1, actor_id=abc, repr=train)
  File "/venv/ray/tune/trainable/trainable.py", line 331, in train
    raise skipped from exception_cause(skipped)
  File "/work/trainable.py", line 12, in train
    raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB
"""
OOM = "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"


@pytest.mark.parametrize(
    "text, headline",
    [
        (RAY_ERROR, OOM),
        # A message over several lines: its first line, not the last.
        (
            (
                'Traceback (most recent call last):\n  File "t.py", line 1, in <module>\n'
                "ValueError: bad\nsecond: line\n"
            ),
            "ValueError: bad",
        ),
        (
            "ray.exceptions.ActorDiedError: The actor died unexpectedly\n",
            "ray.exceptions.ActorDiedError: The actor died unexpectedly",
        ),
        ("", None),
        (None, None),
        # The reason the sweep added (a trial it stopped for failure.trial_timeout) comes first.
        (
            RAY_ERROR + "Stopped by the sweep: no report for 31 s (failure.trial_timeout = 30 s), so ...\n",
            "Stopped by the sweep: no report for 31 s (failure.trial_timeout = 30 s), so ...",
        ),
    ],
)
def test_the_error_headline_is_the_exceptions_first_line(text: str | None, headline: str | None) -> None:
    assert error_headline(text) == headline


def record(
    trial_id: str, batch_size: int, lr: float, outcome: Outcome, error: str | None = None
) -> TrialRecord:
    return TrialRecord(
        trial_id, {"batch_size": batch_size, "learning_rate": lr, "epochs": 2}, outcome=outcome, error=error
    )


def oom_sweep() -> list[TrialRecord]:
    """12 trials: every batch size of 128 and more runs out of memory (7), the others complete."""
    sizes = [16, 128, 32, 256, 64, 128, 256, 16, 128, 256, 32, 256]
    return [
        record(
            f"t{i}",
            b,
            0.001 * (i + 1),
            Outcome.FAILED if b >= 128 else Outcome.COMPLETED,
            RAY_ERROR if b >= 128 else None,
        )
        for i, b in enumerate(sizes)
    ]


def test_out_of_memory_failures_share_their_batch_size_threshold() -> None:
    groups = group_failures(oom_sweep())
    assert len(groups) == 1
    assert groups[0].headline == OOM and len(groups[0].trial_ids) == 7
    assert groups[0].shared == ["batch_size ≥ 128 in 7 of 7"]  # not the learning rate, not the fixed epochs
    assert failure_lines(oom_sweep()) == [f"7 × {OOM} (batch_size ≥ 128 in 7 of 7)"]


def test_groups_come_largest_first_and_the_rest_is_counted() -> None:
    records = [record(f"a{i}", 16, 0.1, Outcome.FAILED, f"E{i % 5}: x\n") for i in range(9)]
    records += [record(f"b{i}", 16, 0.1, Outcome.FAILED, "E0: x\n") for i in range(3)]
    lines = failure_lines(records, shown=2)
    assert lines[0].startswith("5 × E0: x") and lines[1].startswith("2 × E1: x")
    assert lines[2] == "5 more failed trial(s) with 3 other error(s): see `sweep status`"


def test_a_condition_the_completed_trials_meet_as_well_is_not_shown() -> None:
    # Every trial has batch_size 16: "batch_size = 16 in 3 of 3" tells nothing.
    group = [{"batch_size": 16, "optimizer": "adam"}] * 3
    others = [{"batch_size": 16, "optimizer": "sgd"}] * 3
    assert shared_conditions(group, others) == ["optimizer = adam in 3 of 3"]


def test_with_no_trial_that_did_not_fail_nothing_is_said_to_be_shared() -> None:
    assert shared_conditions([{"batch_size": 16}, {"batch_size": 32}], []) == []


def test_a_threshold_met_by_most_of_the_group_counts_them() -> None:
    group = [{"learning_rate": v} for v in (0.5, 0.8, 1.0, 0.9, 0.01)]
    others = [{"learning_rate": v} for v in (0.001, 0.002, 0.01, 0.02)]
    assert shared_conditions(group, others) == ["learning_rate ≥ 0.5 in 4 of 5"]


def test_running_and_diverged_trials_are_not_grouped() -> None:
    records = [record("r", 16, 0.1, None), record("d", 16, 0.1, Outcome.DIVERGED)]  # type: ignore[arg-type]
    assert group_failures(records) == []


def test_a_chance_condition_far_weaker_than_the_best_is_not_shown() -> None:
    # The e2e OOM sweep: batch size splits 5 of 5 from 0 of 7; a learning rate split 4 of 5
    # from 2 of 7 by chance (score 0.51) and was shown next to it.
    group = [
        {"batch_size": b, "learning_rate": lr}
        for b, lr in ((128, 0.03), (256, 0.5), (128, 0.7), (256, 0.1), (128, 0.001))
    ]
    others = [
        {"batch_size": b, "learning_rate": lr}
        for b, lr in ((16, 0.7), (32, 0.05), (64, 0.001), (16, 0.002), (32, 0.004), (64, 0.01), (16, 0.02))
    ]
    assert shared_conditions(group, others) == ["batch_size ≥ 128 in 5 of 5"]
