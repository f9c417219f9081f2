"""The graceful stop's decision (sweeps/runner/stopping.py), fast: no Ray, a real SIGUSR1."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

from sweeps.backend import TrialInfo
from sweeps.runner.ledger import TrialLedger
from sweeps.runner.stopping import GracefulStop
from sweeps.store.state import sweep_paths


@pytest.fixture
def interrupts() -> Iterator[list[int]]:
    """SIGUSR1s the stop raises in this process (Tune's graceful interruption in a real sweep)."""
    caught: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)

    previous = signal.signal(signal.SIGUSR1, handler)
    yield caught
    signal.signal(signal.SIGUSR1, previous)


def running(ledger: TrialLedger, *trial_ids: str) -> list[TrialInfo]:
    trials = [TrialInfo(t, {"batch_size": 16}) for t in trial_ids]
    for trial in trials:
        ledger.trial_started(trial)
    return trials


def test_the_stop_waits_for_checkpoints_taken_after_it_and_registered_by_the_backend(
    tmp_path: Path,
    interrupts: list[int],
) -> None:
    ledger = TrialLedger("val_accuracy", "max")
    old, new = running(ledger, "old", "new")
    stop = GracefulStop(ledger, sweep_paths(tmp_path, "s"))
    stop.observe("old", {"iteration": 23, "checkpoint_dir_name": "checkpoint_000000"})  # an epoch checkpoint
    stop.request("Ctrl-C")
    # Its registration arrives after the request: it was taken before the stop, so `old`
    # would restart from before it (found by the distributed Ctrl-C test, in CI).
    ledger.trial_checkpointed(old)
    assert stop.stop_all() is False and not stop.interrupted and interrupts == []
    # Both report their stop checkpoint; Tune has registered neither yet (its save round
    # trip to the trial's actor is still out), so a snapshot now would miss them.
    stop.observe("old", {"iteration": 26, "checkpoint_dir_name": "checkpoint_000001"})
    stop.observe("new", {"iteration": 3, "checkpoint_dir_name": "checkpoint_000000"})
    assert stop.stop_all() is False and interrupts == []
    ledger.trial_checkpointed(new)
    assert stop.stop_all() is False and interrupts == []  # `old` has not had its stop checkpoint registered
    ledger.trial_checkpointed(old)
    assert stop.stop_all() is False and stop.interrupted and interrupts == [signal.SIGUSR1]


def test_after_its_grace_period_the_stop_goes_on_without_the_missing_checkpoints(
    tmp_path: Path,
    interrupts: list[int],
) -> None:
    ledger = TrialLedger("val_accuracy", "max")
    running(ledger, "slow")
    stop = GracefulStop(ledger, sweep_paths(tmp_path, "s"), grace_seconds=0.0)
    stop.request("SIGTERM")
    assert stop.stop_all() is False and stop.interrupted and interrupts == [signal.SIGUSR1]
