"""The machine-ceiling probe B2 reports: bare training processes, alone and side by side."""

from __future__ import annotations

from benchmarks import ceiling
from benchmarks.b2_compute import HIDDEN


def test_each_copy_reports_its_own_training_rate() -> None:
    rates = ceiling.samples_per_second(2, HIDDEN, seconds=0.5)
    assert len(rates) == 2
    # At least a few hundred steps of batch 64 a second on any CPU this project targets.
    assert all(1_000 < rate < 10_000_000 for rate in rates), rates
