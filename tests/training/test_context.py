"""The trainable contract: when the context asks for reports, and what a report must hold."""

from __future__ import annotations

import math

import pytest

from sweeps.errors import MetricNotReportedError
from sweeps.iterations import TrialShape
from sweeps.training.context import LocalContext, TrialDiverged


def context(**kwargs: object) -> LocalContext:
    return LocalContext(TrialShape(1000, 64, 3), metric="val_accuracy", **kwargs)  # 16 iterations per epoch


def test_reports_at_rungs_epoch_ends_and_the_final_iteration() -> None:
    ctx = context(report_iterations=frozenset({5, 20, 999}))
    assert sorted(ctx.report_iterations) == [5, 16, 20, 32, 48]  # 999 is beyond the trial
    assert ctx.should_report(48) and not ctx.should_report(47)


def test_a_trial_shorter_than_the_first_rung_still_reports_its_last_iteration() -> None:
    ctx = LocalContext(TrialShape(1500, 256, 1), metric="m", report_iterations=frozenset({20}))
    assert sorted(ctx.report_iterations) == [6]


def test_report_derives_epoch_and_samples() -> None:
    ctx = context()
    ctx.report(iteration=24, val_accuracy=0.5)
    result = ctx.results[-1]
    assert result["epoch"] == 1.5 and result["samples_seen"] == 1000 + 8 * 64
    assert (
        result["total_iterations"] == 48
        and result["iterations_per_epoch"] == 16
        and result["dataset_size"] == 1000
    )


def test_report_without_the_metric_names_it_and_what_was_reported() -> None:
    with pytest.raises(MetricNotReportedError, match=r"\['loss'\].*`val_accuracy`"):
        context().report(iteration=1, loss=0.3)


def test_report_without_every_objective_names_the_missing_one() -> None:
    ctx = LocalContext(
        TrialShape(1000, 64, 3), metric="val_accuracy", objectives=("val_accuracy", "latency_ms")
    )
    with pytest.raises(MetricNotReportedError, match=r"objective\(s\) `latency_ms`"):
        ctx.report(iteration=1, val_accuracy=0.3)
    ctx.report(iteration=1, val_accuracy=0.3, latency_ms=2.0)
    assert ctx.results[-1]["latency_ms"] == 2.0


def test_report_with_a_non_numeric_metric_names_the_key() -> None:
    with pytest.raises(MetricNotReportedError, match="`val_accuracy` = 'high'"):
        context().report(iteration=1, val_accuracy="high")


def test_reporting_a_derived_key_is_refused() -> None:
    with pytest.raises(MetricNotReportedError, match="`epoch`"):
        context().report(iteration=1, val_accuracy=0.1, epoch=3)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_values_stop_the_trial_after_reporting_it(bad: float) -> None:
    ctx = context()
    with pytest.raises(TrialDiverged, match="train_loss"):
        ctx.report(iteration=3, val_accuracy=0.1, train_loss=bad)
    assert ctx.results[-1]["diverged"] is True


def test_checkpoint_attaches_to_the_next_report() -> None:
    ctx = context()
    ctx.save_checkpoint({"iteration": 16})
    ctx.report(iteration=16, val_accuracy=0.2)
    ctx.report(iteration=20, val_accuracy=0.3)
    assert ctx.checkpoints == [(16, {"iteration": 16})]


def test_checkpoint_cadence_in_epochs() -> None:
    ctx = context(checkpoint_every_epochs=2)
    assert [i for i in range(1, 49) if ctx.should_checkpoint(i)] == [32]
    assert not any(context(checkpoint_every_epochs=0).should_checkpoint(i) for i in range(1, 49))


def test_a_0d_tensor_or_numpy_scalar_metric_is_taken_as_its_number() -> None:
    import numpy as np
    import torch

    ctx = context()
    ctx.report(iteration=torch.tensor(3), val_accuracy=torch.tensor(0.25), val_loss=np.float32(1.5))
    assert ctx.results[-1]["val_accuracy"] == 0.25 and ctx.results[-1]["val_loss"] == 1.5
    assert ctx.results[-1]["iteration"] == 3 and isinstance(ctx.results[-1]["val_accuracy"], float)


@pytest.mark.parametrize("value", ["torch.ones(3)", "True", "'0.5'", "1j"])
def test_a_metric_that_is_not_one_real_number_names_the_key_and_the_fix(value: str) -> None:
    import torch  # noqa: F401 - used by eval

    with pytest.raises(
        MetricNotReportedError, match=r"`val_accuracy` = .*at iteration 2.*real numbers.*\.item\(\)"
    ):
        context().report(iteration=2, val_accuracy=eval(value))


def test_a_report_without_iteration_says_to_pass_it() -> None:
    with pytest.raises(
        MetricNotReportedError, match=r"without `iteration=`.*ctx.report\(iteration=i, val_accuracy=...\)"
    ):
        context().report(val_accuracy=0.5)


def test_fit_refuses_a_training_set_of_another_size_than_declared() -> None:
    import torch

    from sweeps.errors import DatasetSizeError
    from sweeps.training.loop import fit

    ctx = LocalContext(TrialShape(4000, 100, 1), metric="val_accuracy")
    model = torch.nn.Linear(2, 2)
    data = (torch.zeros(3000, 2), torch.zeros(3000, dtype=torch.long))
    with pytest.raises(DatasetSizeError, match=r"dataset_size = 4,000.*3,000 samples.*dataset_size=3000"):
        fit(
            ctx,
            model,
            torch.optim.SGD(model.parameters(), lr=0.1),
            torch.nn.functional.cross_entropy,
            data,
            lambda: {"val_accuracy": 0.0},
        )
    assert ctx.results == []  # nothing trained, nothing reported


def test_report_without_a_constrained_metric_names_it_and_the_constraints_field() -> None:
    ctx = context(constraint_metrics=("latency_ms",))
    with pytest.raises(
        MetricNotReportedError,
        match=r"\[.val_accuracy.\] at iteration 1, but never `latency_ms`, which the spec.s `constraints`",
    ):
        ctx.report(iteration=1, val_accuracy=0.3)
    ctx.report(iteration=1, val_accuracy=0.3, latency_ms=2.0)
    assert ctx.results[-1]["latency_ms"] == 2.0
