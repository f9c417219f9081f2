"""Keep the driver's memory per finished trial small.

Ray Tune keeps every trial of a sweep in the driver until the end, and for each one a
running analysis of *every* numeric key of its results (max, min, avg, last, last-5 and
last-10 averages, plus a deque for each average), cached once more as indented JSON for
its experiment snapshots. With the dozen keys a trial reports (ours plus Tune's own
``time_*``, ``timestamp``, ``config/*``...), that made most of the driver's growth:
``python -m benchmarks.profiles memory`` (tracemalloc between the 200th and the 1,000th
trial of B1) measured 64.6 KiB allocated per finished trial, 41 KiB of it this analysis
and its JSON; with this callback, 24.7 KiB.

Nothing in a sweep reads the analysis of a finished trial except for its metric (Tune's
own ``get_best_result``), so :class:`ForgetFinishedTrialMetrics` keeps that one and drops
the rest when a trial ends. Running trials keep theirs: ASHA and Tune read them live.
"""

from __future__ import annotations

from typing import Any

from ray.tune import Callback

from sweeps.training.batching import HELD_KEY


# compat: trial-internals
def forget_other_metrics(trial: Any, metric: str) -> None:
    """Drop ``trial``'s running analysis of every key but ``metric`` (Ray 2.x attributes),
    and the held reports its last result carried (every consumer has seen them by now)."""
    last_result = getattr(trial, "last_result", None)
    if isinstance(last_result, dict):
        last_result.pop(HELD_KEY, None)
    run_metadata: Any = getattr(trial, "run_metadata", None)
    analysis = getattr(run_metadata, "metric_analysis", None)
    if not isinstance(analysis, dict):
        return  # another Ray version keeps it elsewhere: leave it alone
    # Assigning (not mutating) also invalidates the cached JSON snapshot of the trial.
    run_metadata.metric_analysis = {k: v for k, v in analysis.items() if k == metric}
    run_metadata.metric_n_steps = {k: v for k, v in run_metadata.metric_n_steps.items() if k == metric}


class ForgetFinishedTrialMetrics(Callback):
    def __init__(self, metric: str) -> None:
        self.metric = metric

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        forget_other_metrics(trial, self.metric)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        forget_other_metrics(trial, self.metric)
