"""The compact numeric format every table, summary and report uses, and the finiteness test."""

from __future__ import annotations

import math

import pytest

from sweeps.numbers import compact, is_finite_number


@pytest.mark.parametrize(
    "value, shown",
    [
        (0.98401, "0.9840"),
        (0.0, "0.0000"),
        (-0.5, "-0.5000"),
        (12.5, "12.5000"),
        (7, "7"),
        (3.97e24, "3.97e24"),
        (123456.0, "1.23e5"),
        (1.2e-7, "1.2e-7"),
        (-2.5e10, "-2.5e10"),
        (10**30, "1e30"),
        (float("nan"), "nan"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
        (1.7976931348623157e308, "inf"),  # MLflow's stored inf
        (None, "-"),
        ("0.9", "0.9"),
    ],
)
def test_compact_keeps_every_value_short(value: object, shown: str) -> None:
    assert compact(value) == shown
    assert len(compact(value)) <= 10  # 3.97e24 with `:.4f` was a 30-digit number


@pytest.mark.parametrize(
    "value, finite",
    [
        (0.5, True),
        (3, True),
        (3.97e24, True),
        (float("nan"), False),
        (math.inf, False),
        (1.7976931348623157e308, False),
        (None, False),
        (True, False),
        ("1", False),
    ],
)
def test_is_finite_number(value: object, finite: bool) -> None:
    assert is_finite_number(value) is finite
