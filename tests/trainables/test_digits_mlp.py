"""The digits trainable reads scikit-learn's bundled file itself (no sklearn import at start-up)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np


def test_digits_read_directly_equal_sklearn_load_digits() -> None:
    from sklearn.datasets import load_digits

    from trainables.digits_mlp import _read_digits

    images, labels = _read_digits()
    digits = load_digits()
    np.testing.assert_array_equal(images, digits.data)
    np.testing.assert_array_equal(labels, digits.target)


def test_loading_the_data_does_not_import_sklearn() -> None:
    # A fresh interpreter: what a new Ray worker pays before its first trial.
    code = (
        "import sys; from trainables.digits_mlp import load_data, TRAINING_SIZE; "
        "x, y, xv, yv = load_data(); assert len(x) == TRAINING_SIZE, len(x); "
        "assert 'sklearn' not in sys.modules, 'sklearn was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_it_reports_its_parameter_count_when_asked() -> None:
    from sweeps.iterations import TrialShape
    from sweeps.training.context import LocalContext
    from trainables.digits_mlp import TRAINING_SIZE, train

    def reports(args: dict[str, object]) -> list[dict[str, object]]:
        ctx = LocalContext(TrialShape(TRAINING_SIZE, 512, 1), metric="val_accuracy", args=args)
        train({"batch_size": 512, "epochs": 1, "learning_rate": 0.01, "hidden_size": 8}, ctx)
        return ctx.results

    # Two hidden layers of 8: 64×8+8, 8×8+8, 8×10+10 weights and biases.
    assert [r["parameters"] for r in reports({"report_parameters": True})] == [682.0]
    assert "parameters" not in reports({})[-1]
