"""The sweep's compute limits (``limits``, :mod:`sweeps.spec.limits`) at run time.

:class:`SweepLimits` is a listener that counts what the sweep has spent, in iterations,
samples seen and wall time, resumed runs included, and a stop rule that says when no new
trial may start. Under ``on_exhausted: stop`` it also asks the graceful stop to stop the
running trials at their next checkpoint, so that the sweep can be resumed with a raised
limit. :attr:`SweepLimits.reason` names the limit that ended the sweep, for the summary.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

from sweeps.backend import SweepListener, TrialInfo
from sweeps.runner.stopping import GracefulStop
from sweeps.spec.limits import LimitsSpec


class SweepLimits(SweepListener):
    def __init__(
        self,
        limits: LimitsSpec,
        graceful: GracefulStop,
        spent_seconds: float = 0.0,
        progress: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """``progress``: each trial's last result before this run (a resumed sweep)."""
        self.limits = limits
        #: Fixed for the run: the checks below run at every step of the backend's loop.
        self._active = limits.any
        self._graceful = graceful
        self._started = time.monotonic() - spent_seconds
        self._last: dict[str, tuple[int, int]] = {}
        self.iterations = self.samples = 0
        for trial_id, result in (progress or {}).items():
            self._count(trial_id, result)
        self.reason: str | None = None

    @property
    def spent_seconds(self) -> float:
        return time.monotonic() - self._started

    def trial_reported(self, trial: TrialInfo, points: list[dict[str, Any]]) -> None:
        self._count(trial.trial_id, points[-1])

    def _count(self, trial_id: str, result: dict[str, Any]) -> None:
        # A trial restarted from a checkpoint reports iterations it had reached before:
        # only progress past its furthest point is spent anew.
        iterations, samples = int(result.get("iteration", 0)), int(result.get("samples_seen", 0))
        before_iterations, before_samples = self._last.get(trial_id, (0, 0))
        if iterations > before_iterations:
            self.iterations += iterations - before_iterations
            self.samples += max(0, samples - before_samples)
            self._last[trial_id] = (iterations, samples)

    def exhausted(self) -> str | None:
        """The first limit reached, in words (None while none is)."""
        limits = self.limits
        if limits.max_iterations is not None and self.iterations >= limits.max_iterations:
            return f"limits.max_iterations ({self.iterations:,} of {limits.max_iterations:,} iterations)"
        if limits.max_samples is not None and self.samples >= limits.max_samples:
            return f"limits.max_samples ({self.samples:,} of {limits.max_samples:,} samples)"
        if limits.max_time is not None and self.spent_seconds >= limits.max_time:
            return f"limits.max_time ({self.spent_seconds:,.0f} s of {limits.max_time:,.0f} s)"
        return None

    # -- the stop rule ----------------------------------------------------------------

    def observe(self, trial_id: str, result: dict[str, Any]) -> None:
        pass

    def allows_new_trials(self) -> bool:
        self._check()
        return self.reason is None

    def stop_all(self) -> bool:
        self._check()
        return False  # the running trials drain, or the graceful stop ends them

    def _check(self) -> None:
        if self.reason is None and self._active:
            self.reason = self.exhausted()
            if self.reason is not None and self.limits.on_exhausted == "stop":
                self._graceful.request(self.reason)


def spent_before(state: dict[str, Any], journal: Path) -> float:
    """Wall seconds the sweep ran before this run (``sweep.json``, read before a resume claims it).

    A run that ended by itself recorded its total (``spent_seconds``, through run
    ``spent_through_run``); a run killed before its end did not, so its time is counted
    from its start to the journal's last write, the last moment it is known to have worked.
    """
    spent = float(state.get("spent_seconds") or 0.0)
    if state.get("spent_through_run") == int(state.get("resumes", 0)):
        return spent
    began = state.get("resumed_at") or state.get("started_at")
    try:
        start = dt.datetime.fromisoformat(str(began)).timestamp()
        return spent + max(0.0, journal.stat().st_mtime - start)
    except (OSError, ValueError):
        return spent
