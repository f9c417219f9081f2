"""The known domains of the three core hyperparameters, checked at validation.

``learning_rate > 0``, ``batch_size >= 1`` and ``epochs >= 1`` hold for every trainable
this product runs, so a value outside them is rejected before Ray starts, whether it is a
fixed value, a range or one of a categorical's values. Found late, a fixed
``learning_rate: -0.01`` used to pass validation and abort the sweep after 18 s, its
reason visible only in ``sweep status``.

Each violation is a :class:`pydantic_core.PydanticCustomError` whose context carries the
parameter's name, so :mod:`sweeps.spec.loading` can name the field as
``search_space.<name>`` (a validator of the whole ``search_space`` is otherwise located at
``search_space`` only).
"""

from __future__ import annotations

import math
from typing import Any

from pydantic_core import PydanticCustomError

#: The error type :mod:`sweeps.spec.loading` reads the parameter's name from.
DOMAIN_ERROR = "hyperparameter_domain"

#: An example a message can give as the fix, per parameter.
_EXAMPLES = {"batch_size": "batch_size: 64", "epochs": "epochs: 5", "learning_rate": "learning_rate: 1.0e-3"}


def _kind(param: Any) -> str | None:
    """A distribution's ``type`` (``float``, ``int``, ``categorical``), or None for a fixed value.

    Read from the field rather than by ``isinstance`` on :mod:`sweeps.spec.models`' classes,
    which validate with this module: importing them here would make the two import each other.
    """
    kind = getattr(param, "type", None)
    return kind if isinstance(kind, str) else None


def domain_error(name: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(DOMAIN_ERROR, "{message}", {"parameter": name, "message": message})


def check_count(name: str, param: Any) -> None:
    """``batch_size`` and ``epochs`` count things: every value they can take is an int >= 1."""
    kind = _kind(param)
    if kind == "float":
        raise domain_error(
            name,
            (
                f"`{name}` takes whole numbers, but it is a float range (`type: float`, low {param.low}, "
                f"high {param.high}); use `type: int` or a categorical of whole numbers"
            ),
        )
    if kind == "int":
        if param.low < 1:
            raise domain_error(
                name,
                (
                    f"`{name}` must be at least 1, but its range starts at `low: {param.low}`; raise "
                    "its lower bound `low` to 1"
                ),
            )
        return
    values = param.values if kind == "categorical" else [param]
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int):
            raise domain_error(
                name,
                (
                    f"`{name}` takes whole numbers, but {value!r} is not one; write for example "
                    f"`{_EXAMPLES[name]}`"
                ),
            )
        if value < 1:
            raise domain_error(name, _below_one(name, value, categorical=kind == "categorical"))


def _below_one(name: str, value: int, categorical: bool) -> str:
    if categorical:
        return (
            f"`{name}` must be at least 1, but its `values` include {value}; remove it or "
            "replace it with 1 or more"
        )
    return (
        f"`{name}` must be at least 1, but it is fixed at {value}; set it to 1 or more, for "
        f"example `{_EXAMPLES[name]}`"
    )


def check_learning_rate(param: Any) -> None:
    """Every learning rate a trial can get is a finite number greater than 0."""
    name = "learning_rate"
    kind = _kind(param)
    if kind in ("float", "int"):
        # `low < high` was checked by the distribution itself, so `low > 0` covers the range.
        if not param.low > 0:
            raise domain_error(
                name,
                (
                    f"`{name}` must be greater than 0, but its range starts at `low: {param.low}`; "
                    "use a positive lower bound such as `low: 1.0e-5` (with `log: true`)"
                ),
            )
        return
    categorical = kind == "categorical"
    for value in param.values if categorical else [param]:
        where = f"its `values` include {value!r}" if categorical else f"it is fixed at {value!r}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise domain_error(name, f"`{name}` must be a number, but {where}; " + _number_hint(value))
        if not (math.isfinite(value) and value > 0):
            fix = (
                "remove it from `values`"
                if categorical
                else f"use a positive value, for example `{_EXAMPLES[name]}`"
            )
            raise domain_error(name, f"`{name}` must be a finite number greater than 0, but {where}; {fix}")


def _number_hint(value: Any) -> str:
    try:
        float(value)
    except (TypeError, ValueError):
        return f"write a number, for example `{_EXAMPLES['learning_rate']}`"
    # PyYAML follows YAML 1.1, where `1e-3` (no dot) is text, not a float.
    return f"YAML reads {value!r} as text; write it with a dot and a signed exponent, e.g. `1.0e-3`"


def check_scale(space: dict[str, Any]) -> None:
    """``scale`` belongs to ``learning_rate`` alone, and needs a ``batch_size`` to scale with.

    Checked before the required hyperparameters, so a scaled learning rate in a space
    without ``batch_size`` is told what its ``scale`` is missing.
    """
    for name, param in space.items():
        if getattr(param, "scale", None) is None or name == "learning_rate":
            continue
        raise domain_error(
            f"{name}.scale",
            (
                f"`scale` ties the learning rate to the batch size, so only `learning_rate` may have "
                f"one, but `{name}` has `scale`; remove it from `{name}`, and give it to `learning_rate` "
                "if that is what you meant (`scale: {rule: linear, reference_batch_size: 64}`)"
            ),
        )
    if getattr(space.get("learning_rate"), "scale", None) is not None and "batch_size" not in space:
        raise domain_error(
            "learning_rate.scale",
            (
                "`scale` multiplies the learning rate by a function of `batch_size`, but the search "
                "space has no `batch_size`; add one (searched, e.g. `batch_size: {type: categorical, "
                "values: [32, 64, 128]}`, or fixed, e.g. `batch_size: 64`), or remove `scale`"
            ),
        )
