"""The spec's objectives (``metric`` and ``mode``, one or several) and its ``constraints``.

``metric: val_accuracy`` with ``mode: max`` is one objective, as always. Several are lists
of the same length, in the same order::

    metric: [val_accuracy, latency_ms]
    mode: [max, min]

The first objective is the one every single-valued view shows (``best`` in ``--json``,
the study's intermediate values): :class:`sweeps.spec.models.SweepSpec` keeps it in
``metric`` and ``mode`` and all of them in ``metrics`` and ``modes``.

``constraints`` are feasibility limits on reported metrics, such as ``latency_ms <= 5``:
a trial whose last report breaks one is infeasible, and never on the Pareto front (nor
the best of a single-objective sweep).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sweeps.spec.domains import domain_error

#: The most objectives a sweep may have: the report draws the front as one scatter (2) or
#: pairwise scatters (3); past 3 the pairs no longer show a front a reader can follow.
MAX_OBJECTIVES = 3
#: Samplers that cannot optimise several objectives (Optuna's CMA-ES raises on them; the
#: multi-fidelity sampler models one value per rung).
SINGLE_OBJECTIVE_SAMPLERS = ("cmaes", "multi_fidelity")

_OPERATORS: dict[str, Callable[[float, float], bool]] = {"<=": operator.le, ">=": operator.ge}
_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_./-]*)\s*(<=|>=)\s*(\S+)\s*$")


@dataclass(frozen=True)
class Constraint:
    """``metric op bound``: a trial is feasible when its reported ``metric`` satisfies it."""

    metric: str
    operator: str
    bound: float

    def violation(self, value: float) -> float:
        """How far ``value`` is from satisfying it: <= 0 when it does (Optuna's ``constraints_func``
        convention); infinity for a missing or NaN value."""
        if not math.isfinite(value):
            return math.inf
        return value - self.bound if self.operator == "<=" else self.bound - value

    def holds(self, value: float) -> bool:
        return math.isfinite(value) and _OPERATORS[self.operator](value, self.bound)

    def __str__(self) -> str:
        return f"{self.metric} {self.operator} {self.bound:g}"


def parse_constraint(text: Any, position: int) -> Constraint:
    """One ``constraints`` entry, e.g. ``"latency_ms <= 5"``."""
    field = f"constraints.{position}"
    match = _CONSTRAINT.match(text) if isinstance(text, str) else None
    bound = _number(match.group(3)) if match else None
    if match is None or bound is None:
        raise domain_error(
            str(position),
            (
                f"`{field}` is {text!r}, but a constraint is a string `METRIC <= NUMBER` or "
                "`METRIC >= NUMBER` "
                'on a metric the trainable reports, e.g. `"latency_ms <= 5"`'
            ),
        )
    return Constraint(match.group(1), match.group(2), bound)


def normalize_objectives(data: dict[str, Any]) -> dict[str, Any]:
    """The raw spec with ``metric``/``mode`` as the first objective and ``metrics``/``modes`` as all.

    Raises pydantic's custom error naming ``metric`` or ``mode`` for: lists of different
    lengths, a repeated metric, a ``mode`` that is not a list while ``metric`` is (or the
    reverse), an empty list, or more than :data:`MAX_OBJECTIVES` objectives."""
    for derived in ("metrics", "modes"):
        if derived in data:
            raise domain_error(
                derived,
                (
                    f"`{derived}` is not a spec field; several objectives are lists in `metric` and `mode`, "
                    "e.g. `metric: [val_accuracy, latency_ms]` with `mode: [max, min]`"
                ),
            )
    metric, mode = data.get("metric"), data.get("mode")
    if not isinstance(metric, list) and not isinstance(mode, list):
        if isinstance(metric, str) and isinstance(mode, str):
            return {**data, "metrics": [metric], "modes": [mode]}
        return data  # missing or mistyped: pydantic's own message names the field
    if not isinstance(metric, list):
        raise domain_error(
            "metric",
            (
                f"`mode` is the list {mode!r}, but `metric` is {metric!r}, not a list: several objectives "
                "name one metric per mode, e.g. `metric: [val_accuracy, latency_ms]`; for one objective "
                "write `mode: max` or `mode: min`"
            ),
        )
    if not isinstance(mode, list):
        raise domain_error(
            "mode",
            (
                f"`metric` lists {len(metric)} objectives, but `mode` is {mode!r}, not a list: give one mode "
                f"per metric, in the same order, e.g. `mode: [{', '.join(['max'] * len(metric))}]`"
            ),
        )
    _check_objective_lists(metric, mode)
    return {**data, "metric": metric[0], "mode": mode[0], "metrics": metric, "modes": mode}


def _check_objective_lists(metric: list[Any], mode: list[Any]) -> None:
    """Both lists given: the same length, distinct metric names, modes of max/min, not too many."""
    if not metric:
        raise domain_error(
            "metric", "`metric` is an empty list; name at least one metric the trainable reports"
        )
    if len(mode) != len(metric):
        raise domain_error(
            "mode",
            (
                f"`metric` lists {len(metric)} objectives ({', '.join(map(str, metric))}) but `mode` "
                f"lists {len(mode)} ({', '.join(map(str, mode))}); give exactly one mode (max or min) "
                "per metric, in order"
            ),
        )
    repeated = sorted({str(m) for m in metric if metric.count(m) > 1})
    if repeated:
        raise domain_error(
            "metric",
            (
                f"`metric` names {', '.join(repeated)} more than once; each objective is a different metric. "
                "Drop the repetition"
            ),
        )
    if not all(isinstance(m, str) and m for m in metric):
        raise domain_error(
            "metric", f"`metric` is {metric!r}, but each objective is the name of a reported metric"
        )
    if not all(m in ("max", "min") for m in mode):
        raise domain_error("mode", f"`mode` is {mode!r}, but each entry is `max` or `min`")
    if len(metric) > MAX_OBJECTIVES:
        raise domain_error(
            "metric",
            (
                f"`metric` lists {len(metric)} objectives, but a sweep has at most {MAX_OBJECTIVES}: `sweep "
                "report` draws the front as one scatter for 2 and pairwise scatters for 3. Drop objectives, "
                'or turn some into `constraints` (e.g. `"latency_ms <= 5"`)'
            ),
        )


def objectives_of(raw_spec: dict[str, Any]) -> list[tuple[str, str]]:
    """(metric, mode) of each objective of a stored spec (raw YAML: lists, or one metric)."""
    metric, mode = raw_spec.get("metric"), raw_spec.get("mode")
    if isinstance(metric, list) and isinstance(mode, list):
        return [(str(m), str(d)) for m, d in zip(metric, mode, strict=False)]
    return [(str(metric), str(mode))]


def objective_values(result: dict[str, Any] | None, metrics: Sequence[str]) -> list[float] | None:
    """Every objective's value in ``result``, in order; None unless all are there and finite."""
    if not result:
        return None
    values = [result.get(metric) for metric in metrics]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        return None
    return [float(v) for v in values]  # type: ignore[arg-type]  # checked above


def constraint_violations(result: dict[str, Any] | None, constraints: Sequence[Constraint]) -> list[float]:
    """Each constraint's violation on ``result`` (<= 0: satisfied; infinity: the metric is missing)."""
    found = result or {}
    return [
        c.violation(float(found[c.metric])) if isinstance(found.get(c.metric), (int, float)) else math.inf
        for c in constraints
    ]


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
