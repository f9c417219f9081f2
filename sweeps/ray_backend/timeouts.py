"""Hung trials: ``failure.trial_timeout``, enforced on the driver.

A trial that stops reporting (a deadlock, a stuck data loader, an evaluation that never
returns) would hold its worker forever: Ray Tune has no timeout of its own for it. The
measure is *seconds since the trial's last result reached the driver*, counted from the
trial's start (or restart). Workers send their results at least every few seconds while
a trial keeps reporting (buffered reports are flushed on a timer), so a healthy but slow
trial never looks silent for long, and a silent one is hung.

A trial past its timeout is killed with ``ray.kill`` on its actor. That is the same
failure Ray Tune sees when a worker process or node dies, so everything downstream is
Tune's own failure path: the trial is retried from its last checkpoint up to
``failure.max_retries`` times, then it is ERROR in Ray, FAIL in Optuna and FAILED in
MLflow. A gentler stop would not do: Tune stops an actor by queueing ``stop`` behind the
call that hangs, and only force-kills it after ``TUNE_FORCE_TRIAL_CLEANUP_S`` (600 s).

Tune records the failure as "the actor died"; this callback appends the real reason,
``no report for N s``, to the trial's ``error.txt`` right after Tune writes its entry, so
the ledger (``sweep status``) and the MLflow ``error.txt`` that read that file show it.
It must therefore come *before* the ledger and the tracker in the callback list.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ray.tune import Callback

from sweeps.outcomes import SWEEP_REASON_PREFIX

logger = logging.getLogger(__name__)

#: How often running trials are checked; the timeout is honoured to within this.
_CHECK_SECONDS = 0.5


def timeout_message(silent_seconds: float, timeout: float) -> str:
    return (
        f"no report for {silent_seconds:.0f} s (failure.trial_timeout = {timeout:g} s), so the driver "
        "stopped the trial's worker. Look for a hang in the trainable (a stuck data loader or "
        "evaluation), or raise failure.trial_timeout if one report takes longer."
    )


class TrialTimeouts(Callback):
    """Kills the worker of any running trial silent for longer than ``timeout`` seconds."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        #: trial id → monotonic time its last result (or its start) reached the driver.
        self._heard: dict[str, float] = {}
        #: trial id → the reason it was killed, until Tune's failure entry has been written.
        self._killed: dict[str, str] = {}
        self._next_check = 0.0

    def __getstate__(self) -> dict[str, Any]:
        # Ray pickles callbacks into its experiment snapshot; times on this driver's
        # monotonic clock mean nothing to a resumed one, which builds its own.
        return {"timeout": self.timeout, "_heard": {}, "_killed": {}, "_next_check": 0.0}

    def silence(self, trial_id: str, now: float | None = None) -> float | None:
        """Seconds since ``trial_id`` was last heard from (None: not running)."""
        heard = self._heard.get(trial_id)
        return None if heard is None else (now or time.monotonic()) - heard

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._heard[trial.trial_id] = time.monotonic()

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        self._heard[trial.trial_id] = time.monotonic()

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._heard.pop(trial.trial_id, None)
        self._killed.pop(trial.trial_id, None)

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        # Requeued for a retry: its clock restarts when it starts again.
        self._heard.pop(trial.trial_id, None)
        self._note_reason(trial)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._heard.pop(trial.trial_id, None)
        self._note_reason(trial)

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + _CHECK_SECONDS
        for trial in trials:
            silent = self.silence(trial.trial_id, now)
            if silent is None or silent <= self.timeout or trial.trial_id in self._killed:
                continue
            if trial.status != "RUNNING":
                continue
            # compat: trial-internals
            actor = getattr(trial.temporary_state, "ray_actor", None)
            if actor is None:
                continue
            self._kill(trial, actor, timeout_message(silent, self.timeout))

    def _kill(self, trial: Any, actor: Any, reason: str) -> None:
        import ray

        self._killed[trial.trial_id] = reason
        logger.warning("trial %s: %s", trial.trial_id, reason)
        try:
            # Tune's pending call on this actor then fails with RayActorError, which Tune
            # handles as a dead worker: retry from the last checkpoint, or fail the trial.
            ray.kill(actor, no_restart=True)
        except Exception:  # an actor that died meanwhile fails the trial anyway
            logger.debug("ray.kill of trial %s's actor failed", trial.trial_id, exc_info=True)

    def reason_for(self, trial_id: str) -> str | None:
        """Why the driver stopped ``trial_id``'s worker, while its failure is being handled."""
        reason = self._killed.get(trial_id)
        return None if reason is None else f"{SWEEP_REASON_PREFIX}{reason}"

    def _note_reason(self, trial: Any) -> None:
        reason = self._killed.pop(trial.trial_id, None)
        path = getattr(trial, "error_file", None)
        if reason is None or not path:
            return
        try:
            # Marked as the sweep's reason: `sweep status` and the summary show it, not the
            # RayActorError the kill caused (sweeps.outcomes.error_headline).
            with open(path, "a") as stream:
                stream.write(f"{SWEEP_REASON_PREFIX}{reason}\n")
        except OSError:
            logger.debug("cannot append to %s", path, exc_info=True)
