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
