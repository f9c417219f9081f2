"""How a trainable must end: the one check of the contract a trial's function honours.

Used by every trial a backend runs (:mod:`sweeps.ray_backend.worker`) and by ``sweep
check``'s dry run (:mod:`sweeps.training.dry_run`), so that a trainable that passes the
check passes as a trial, with the same words.
"""

from __future__ import annotations

from typing import Any

from sweeps.errors import MetricNotReportedError, TrialEndedEarlyError
from sweeps.training.context import TrainContext


def check_trial_ended_properly(ctx: TrainContext, returned: Any, resumed: bool = False) -> None:
    """Turn a trainable that broke the contract by returning into one clear error.

    Called once the trainable returned by itself (not stopped, not diverged). Ray Tune
    would otherwise abort the whole sweep with its own traceback (a trial that never
    reported its metric), or count a trial that ran out of data as pruned. A trial
    ``resumed`` from a checkpoint that reports nothing more had reported everything
    before it.
    """
    total = ctx.shape.total_iterations
    if resumed and ctx.last_reported_iteration == 0:
        return
    if ctx.last_reported_iteration == 0:
        what = "returned a value" if returned is not None else "returned"
        raise MetricNotReportedError(
            f"the trainable {what} without ever calling ctx.report, so the "
            f"sweep has no `{ctx.metric}` for it (a return value is not a report). Report as it "
            f"trains: `ctx.report(iteration=i, {ctx.metric}=...)` when `ctx.should_report(i)`, "
            "or use `sweeps.fit`, which does."
        )
    last = ctx.last_reported_iteration
    cadence = last - ctx.previous_reported_iteration
    if last < total and total - last < cadence:
        # The loop most likely trained to the end on its own cadence and skipped the last
        # report: without it the trial would count as pruned, so say how to report it.
        raise TrialEndedEarlyError(
            f"the trainable reported last at iteration {last:,} of its {total:,} (every {cadence:,} "
            f"iterations), so its final iteration was never reported and the trial would count "
            "as stopped early. Report the final iteration too: "
            f"`if i % {cadence} == 0 or i == ctx.shape.total_iterations: ctx.report(...)`, or "
            "report when `ctx.should_report(i)`, which includes it."
        )
    if last < total:
        shape = ctx.shape
        raise TrialEndedEarlyError(
            f"the trainable returned after iteration {ctx.last_reported_iteration:,} "
            f"of the {total:,} its config implies (epochs={shape.epochs} × "
            f"{shape.iterations_per_epoch:,} iterations per epoch at batch_size={shape.batch_size}, "
            f"dataset_size={shape.dataset_size:,}, drop_last={shape.drop_last}). Either the "
            "trainable's `dataset_size` is not the size of the data it trains on, it runs fewer "
            "epochs than `config['epochs']`, or it drops the last partial batch without "
            "declaring drop_last=True. Fix the declaration, and report the final iteration."
        )
