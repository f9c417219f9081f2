"""How a metric value is printed everywhere: :func:`compact`, and the test for a value
that is no number to plot or rank (:func:`is_finite_number`).

A metric of 3.97e24 printed with ``:.4f`` is a 30-digit number that crushes an 80-column
table, and MLflow stores an infinite value as 1.797e308 (the largest float), which a
plot that computes positions from it overflows on. Every table, summary and report
formats values through :func:`compact`, and every plot and ranking drops values that
:func:`is_finite_number` refuses.
"""

from __future__ import annotations

import math
from typing import Any

#: At or beyond this magnitude a value is taken for infinite: MLflow writes ``inf`` as
#: ``sys.float_info.max`` (1.797e308), so a value read back from MLflow is never ``inf``.
INFINITE_MAGNITUDE = 1e300

#: Values from 0.001 up to (not including) 100,000 keep the fixed four decimals that
#: accuracies and losses are read in (0.9840); the others switch to 3 significant digits
#: with an exponent (3.97e24, 1.2e-07 → 1.2e-7).
_FIXED_RANGE = (1e-3, 1e5)


def is_finite_number(value: Any) -> bool:
    """Whether ``value`` is a real, finite number (not NaN, not inf, not MLflow's 1.8e308)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) and abs(value) < INFINITE_MAGNITUDE


def compact(value: Any) -> str:
    """``value`` in at most about 10 characters: ``0.9840``, ``3.97e24``, ``nan``, ``inf``, ``-``.

    Example:
        >>> [compact(v) for v in (0.98401, 3.97e24, float("nan"), 1.797e308, None, 7)]
        ['0.9840', '3.97e24', 'nan', 'inf', '-', '7']
    """
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value) or abs(value) >= INFINITE_MAGNITUDE:
        return "inf" if value > 0 else "-inf"
    if isinstance(value, int) and abs(value) < _FIXED_RANGE[1]:
        return str(value)
    if value == 0 or _FIXED_RANGE[0] <= abs(value) < _FIXED_RANGE[1]:
        return f"{value:.4f}"
    mantissa, exponent = f"{value:.2e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
