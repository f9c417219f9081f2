"""How a trial's function may end (fast: a LocalContext, no Ray)."""

from __future__ import annotations

import pytest

from sweeps.errors import MetricNotReportedError, TrialEndedEarlyError
from sweeps.iterations import TrialShape
from sweeps.training.context import LocalContext
from sweeps.training.contract import check_trial_ended_properly


def context(*reported: int) -> LocalContext:
    ctx = LocalContext(TrialShape(100, 10, 2), metric="val_accuracy")  # 20 iterations
    for iteration in reported:
        ctx.report(iteration=iteration, val_accuracy=0.5)
    return ctx


def test_a_trial_that_reported_its_final_iteration_ended_properly() -> None:
    check_trial_ended_properly(context(10, 20), None)


def test_a_trial_that_never_reported_is_a_contract_error_unless_it_resumed_from_a_checkpoint() -> None:
    with pytest.raises(MetricNotReportedError, match="returned a value without ever calling ctx.report"):
        check_trial_ended_properly(context(), {"val_accuracy": 0.9})
    # Restarted from the checkpoint of its final iteration: nothing was left to report.
    check_trial_ended_properly(context(), None, resumed=True)


@pytest.mark.parametrize(
    "reported, says",
    [
        ((6, 12, 18), "reported last at iteration 18 of its 20 (every 6 iterations)"),
        ((5, 10), "returned after iteration 10 of the 20 its config implies"),
    ],
)
def test_a_trial_that_returned_before_its_total_names_the_cause(reported: tuple[int, ...], says: str) -> None:
    with pytest.raises(TrialEndedEarlyError, match=says.replace("(", r"\(").replace(")", r"\)")):
        check_trial_ended_properly(context(*reported), None)
    with pytest.raises(TrialEndedEarlyError):  # resuming excuses no missing iterations
        check_trial_ended_properly(context(*reported), None, resumed=True)
