"""Remove the checkpoints an ended trial no longer needs, so a sweep's storage stays bounded.

Ray keeps the newest ``checkpoint.keep`` checkpoints of every trial, ended or not, so a
sweep's checkpoints grow with its number of trials: users of every tuner report disks
filled this way (ray-project/ray#4381 and #30506; keras-tuner#481, over 700 GB). Once a
trial has ended nothing restarts it (Ray never does, and ``sweep resume`` restarts only the
unfinished ones), so as each trial ends this listener keeps:

- the best trial's last checkpoint (``sweep best`` and MLflow's model read it), and no
  older one of it; when a better trial ends, the former best's goes;
- the pruned trials' checkpoints only with ``checkpoint.keep_pruned: true``.

Running trials, and a trial being retried, keep all of Ray's ``keep``: a restart needs
them. The listener comes after the MLflow tracker, so each trial's run is closed before
its checkpoints go (nothing of MLflow reads them but the best trial's model, kept).
The sweep's checkpoints then take at most about ``keep`` × the trials running at once,
plus one.
"""

from __future__ import annotations

import logging

from sweeps.backend import SweepListener, TrialError, TrialInfo
from sweeps.outcomes import Outcome
from sweeps.runner.ledger import TrialLedger
from sweeps.spec.models import CheckpointSpec
from sweeps.store.checkpoints import TrialFiles, prune_ended_trial

_logger = logging.getLogger(__name__)


class CheckpointPruner(SweepListener):
    """Keeps only the checkpoints an ended trial can still be of use for (see the module)."""

    def __init__(self, ledger: TrialLedger, files: TrialFiles, settings: CheckpointSpec) -> None:
        self._ledger = ledger
        self._files = files  # where the backend keeps the trials' checkpoints
        self._keep_pruned = settings.keep_pruned
        #: The trial whose last checkpoint is kept as the best's (None before any ended; a
        #: resumed sweep's best so far otherwise, which a better trial's end then replaces).
        best = ledger.best()
        self.kept_best: str | None = best.trial_id if best is not None else None
        #: Bytes removed so far (shown nowhere; the tests read it).
        self.freed_bytes = 0

    def trial_completed(self, trial: TrialInfo) -> None:
        self._trial_ended(trial.trial_id)

    def trial_failed(self, trial: TrialInfo, error: TrialError) -> None:
        self._trial_ended(trial.trial_id)

    def _trial_ended(self, trial_id: str) -> None:
        best = self._ledger.best()
        best_id = best.trial_id if best is not None else None
        for ended in {trial_id, *([self.kept_best] if self.kept_best else [])}:
            if self._keep_pruned and self._outcome(ended) == Outcome.PRUNED:
                continue  # kept as Ray left them, best or not
            self._prune(ended, keep_last=ended == best_id)
        self.kept_best = best_id

    def _outcome(self, trial_id: str) -> str | None:
        record = self._ledger.trials.get(trial_id)
        return record.outcome if record is not None else None

    def _prune(self, trial_id: str, *, keep_last: bool) -> None:
        try:
            self.freed_bytes += prune_ended_trial(self._files, trial_id, keep_last=keep_last)
        except OSError as exc:  # a folder that cannot be listed: its checkpoints stay, the sweep goes on
            _logger.warning("Could not remove the checkpoints of ended trial %s: %s", trial_id, exc)
