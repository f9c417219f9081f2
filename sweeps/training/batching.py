"""Report batching: a report crosses to the driver only when a decision needs it.

Every report a trial makes through Ray Tune blocks the training thread for a round trip
to the driver (about 18 ms on a 2-core machine, ``benchmarks/SCALING.md``), and the
driver spends CPU on each one, taken from the workers. A hand-written loop that reports
every 10 iterations made 1.95× the wall time of the same configs reporting only at the
rungs. So the worker holds the reports no one has to act on, and sends them with the
next one someone does.

A report is sent at once (a *decision point*) when it is:

- the first report at or beyond an ASHA milestone not yet passed (the milestones are
  given in this trial's iterations, ``TrialShape.first_iteration_reaching``), so ASHA
  decides at the exact milestone iteration when the loop reports there, and as early
  as the loop allows when it does not;
- at or beyond the trial's final iteration;
- ``urgent``: it carries a checkpoint Ray must persist, or the sweep is being stopped;
- diverged (NaN or infinite), which ends the trial;
- or the first one :data:`FLUSH_SECONDS` after the last send, so the live view and the
  MLflow curves stay live.

The sent result is the latest report itself, carrying the held ones, oldest first,
under :data:`HELD_KEY`; :func:`points_in` unpacks it on the driver. A worker that dies
loses only held reports, which all come after its last checkpoint (a checkpoint is
always sent at once, with everything held before it): the retry recomputes them.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterable
from typing import Any

#: Longest time a report is held. A flush costs one round trip to the driver, measured at
#: about 20 ms a report on 2 cores (``make bench``, B2: ms blocked in each report), so one
#: per 2 s costs a worker 1 % of its time, while the live view and MLflow stay within 2 s
#: of the trial. (In B2R, trials last 0.2-2 s, so the timer rarely fires there at all.)
FLUSH_SECONDS = 2.0
#: Result key under which a sent report carries the reports held before it.
HELD_KEY = "sweeps_held_reports"


class ReportBatcher:
    """Holds a trial's reports until one of them is a decision point (see the module doc).

    Args:
        milestone_iterations: The trial's iterations at which ASHA decides.
        total_iterations: The trial's final iteration.
        flush_seconds: Longest time a report is held.
        clock: Monotonic seconds (tests pass a fake one).

    Example:
        >>> batcher = ReportBatcher([20], total_iterations=40, clock=lambda: 0.0)
        >>> batcher.offer({"iteration": 10}) is None
        True
        >>> sent = batcher.offer({"iteration": 20})
        >>> sent["iteration"], [p["iteration"] for p in sent[HELD_KEY]]
        (20, [10])
    """

    def __init__(
        self,
        milestone_iterations: Iterable[int],
        total_iterations: int,
        flush_seconds: float = FLUSH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._decisions = sorted(
            {int(i) for i in milestone_iterations if 0 < i <= total_iterations} | {int(total_iterations)}
        )
        self._next_decision = 0  # index of the first decision iteration no sent report reached
        self._flush_seconds = flush_seconds
        self._clock = clock
        self._held: list[dict[str, Any]] = []
        self._last_sent = clock()

    @property
    def held(self) -> int:
        return len(self._held)

    def offer(self, report: dict[str, Any], urgent: bool = False) -> dict[str, Any] | None:
        """The result to send now (``report`` carrying the held ones), or None if held."""
        iteration = report["iteration"]
        reaches_decision = (
            self._next_decision < len(self._decisions) and iteration >= self._decisions[self._next_decision]
        )
        if not (
            urgent
            or reaches_decision
            or report.get("diverged")
            or self._clock() - self._last_sent >= self._flush_seconds
        ):
            self._held.append(report)
            return None
        self._next_decision = bisect.bisect_right(self._decisions, iteration)
        return self._release(report)

    def drain(self) -> dict[str, Any] | None:
        """Everything held, as one result to send (the trial is ending), or None."""
        if not self._held:
            return None
        return self._release(self._held.pop())

    def _release(self, report: dict[str, Any]) -> dict[str, Any]:
        if self._held:
            report = {**report, HELD_KEY: self._held}
            self._held = []
        self._last_sent = self._clock()
        return report


def points_in(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every report a result delivers, in the order reported: the held ones, then itself.

    The held reports carry only what the trial reported (metrics and the derived
    ``iteration``, ``epoch``...); Ray's own keys (``done``, ``checkpoint_dir_name``...)
    belong to the result that crossed, the last point.
    """
    held = result.get(HELD_KEY)
    if not held:
        return [result]
    return [*held, {k: v for k, v in result.items() if k != HELD_KEY}]
