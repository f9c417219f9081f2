"""The abort rule (sweeps/runner/abort.py): a contract error ends the sweep, known by its type (no Ray)."""

from __future__ import annotations

from pathlib import Path

from sweeps.backend import TrialError, TrialInfo
from sweeps.errors import DatasetSizeError, TrialEndedEarlyError
from sweeps.runner.abort import AbortRule
from sweeps.runner.ledger import TrialLedger
from sweeps.spec.loading import validate_spec
from tests.conftest import small_spec

MESSAGE = "the trainable returned after iteration 10 of the 20 its config implies (...)"


def rule_and_ledger(num_samples: int = 10, max_failed_fraction: float = 0.5) -> tuple[AbortRule, TrialLedger]:
    spec = validate_spec(
        small_spec(num_samples=num_samples, failure={"max_failed_fraction": max_failed_fraction}),
        Path("spec.yaml"),
    ).spec
    ledger = TrialLedger("val_accuracy", "max")
    return AbortRule(ledger, spec), ledger


def fail(ledger: TrialLedger, trial_id: str, error: TrialError) -> None:
    trial = TrialInfo(trial_id, {})
    ledger.trial_started(trial)
    ledger.trial_failed(trial, error)


def test_a_contract_error_ends_the_sweep_with_its_own_message() -> None:
    rule, ledger = rule_and_ledger()
    assert not rule.stop_all()
    fail(
        ledger,
        "t1",
        TrialError(
            f"Traceback ...\nsweeps.errors.TrialEndedEarlyError: {MESSAGE}\n", TrialEndedEarlyError, MESSAGE
        ),
    )
    assert rule.stop_all() and rule.contract_broken
    assert rule.reason == f"the trainable broke its contract in trial t1: {MESSAGE}"
    assert ledger.trials["t1"].error is not None and ledger.trials["t1"].error.startswith("Traceback")


def test_it_is_the_type_that_counts_not_words_in_the_traceback() -> None:
    rule, ledger = rule_and_ledger()
    # A trainable of the user's own that prints a contract error's name in its message.
    fail(
        ledger,
        "t1",
        TrialError("ValueError: not a DatasetSizeError: boom\n", ValueError, "not a DatasetSizeError: boom"),
    )
    fail(ledger, "t2", TrialError("the worker died\n"))  # no exception recovered
    assert not rule.stop_all() and not rule.contract_broken
    fail(ledger, "t3", TrialError("...", DatasetSizeError, "declared 100, saw 90"))
    assert rule.stop_all() and rule.reason is not None and rule.reason.endswith("t3: declared 100, saw 90")


def test_too_many_failures_end_the_sweep_without_a_broken_contract() -> None:
    rule, ledger = rule_and_ledger(num_samples=4, max_failed_fraction=0.25)
    fail(ledger, "t1", TrialError("RuntimeError: boom\n", RuntimeError, "boom"))
    assert not rule.stop_all()
    fail(ledger, "t2", TrialError("RuntimeError: boom\n", RuntimeError, "boom"))
    assert rule.stop_all() and not rule.contract_broken
    assert rule.reason is not None and rule.reason.startswith(
        "2 trials failed, more than failure.max_failed_fraction"
    )
