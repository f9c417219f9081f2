"""Ending a sweep early because it cannot succeed: a broken trainable, or too many failures.

A contract error (the trainable never reported its metric, ended before its last
iteration, or saw another dataset size than it declared) proves the trainable or its
declaration wrong: every trial would hit it, so the first one ends the sweep with exit 2.
Failed trials beyond ``failure.max_failed_fraction`` end it with exit 1.
"""

from __future__ import annotations

from typing import Any

from sweeps.errors import DatasetSizeError, MetricNotReportedError, TrialEndedEarlyError
from sweeps.outcomes import Outcome
from sweeps.runner.ledger import TrialLedger
from sweeps.spec.models import SweepSpec

#: The errors that prove the trainable or its declaration wrong.
CONTRACT_ERRORS: tuple[type[Exception], ...] = (
    MetricNotReportedError,
    DatasetSizeError,
    TrialEndedEarlyError,
)


class AbortRule:
    """A stop rule (:class:`~sweeps.backend.StopRule`) that reads the ledger's failed trials."""

    def __init__(self, ledger: TrialLedger, spec: SweepSpec) -> None:
        self._ledger = ledger
        self._max_failed = spec.failure.max_failed_fraction * spec.num_samples
        self.reason: str | None = None
        #: Whether the reason is a trainable's broken contract (exit 2), not failed trials (exit 1).
        self.contract_broken = False
        self._errors_checked = -1  # the first call scans: a resumed ledger may hold failures

    def observe(self, trial_id: str, result: dict[str, Any]) -> None:
        pass

    def allows_new_trials(self) -> bool:
        return True  # an abort ends the running trials too (stop_all)

    def stop_all(self) -> bool:
        if self.reason:
            return True
        # Asked at every step of the backend's loop; only a trial error can change the
        # answer, so the scan of every trial (O(trials) per step) runs only after one.
        if self._ledger.errors_seen == self._errors_checked:
            return False
        self._errors_checked = self._ledger.errors_seen
        for trial_id, error in self._ledger.failures.items():
            record = self._ledger.trials.get(trial_id)
            if record is not None and record.outcome == Outcome.FAILED and error.raised(*CONTRACT_ERRORS):
                self.reason = f"the trainable broke its contract in trial {trial_id}: {error.message}"
                self.contract_broken = True
                return True
        failed = self._ledger.counts()["failed"]
        if failed > self._max_failed:
            self.reason = (
                f"{failed} trials failed, more than failure.max_failed_fraction allows "
                f"({self._max_failed:g}); `sweep status` shows each trial's error"
            )
            return True
        return False
