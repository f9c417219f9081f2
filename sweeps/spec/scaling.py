"""Learning-rate scaling rules: a trial's learning rate follows its batch size.

A good learning rate at batch size 16 is a bad one at 256, so searching the two
independently wastes most of the space while the sampler learns their correlation.
With ``learning_rate.scale`` in the spec, Optuna samples the *base* learning rate (the one
at ``reference_batch_size``) under the name ``learning_rate_base``, and each trial trains
with the effective one:

- ``linear``: base × (batch_size / reference_batch_size), for SGD (Goyal et al., 2017,
  "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour", arXiv:1706.02677);
- ``sqrt``: base × sqrt(batch_size / reference_batch_size), for Adam (Malladi et al., 2022,
  "On the SDEs and Scaling Rules for Adaptive Gradient Algorithms", arXiv:2205.10287);
- ``none``: the sampled value itself, exactly as a spec without ``scale``.

The study keeps the base value, which is what its sampler models; the trial's config holds
both, ``learning_rate`` (effective, what the trainable reads) and ``learning_rate_base``,
so every consumer of a config (the MLflow params, ``sweep status``, ``sweep best``) has both.

Example:
    >>> from sweeps.spec.models import LearningRateScale
    >>> rule = LearningRateScale(rule="linear", reference_batch_size=64)
    >>> trial_config({"batch_size": 256, "learning_rate_base": 0.01}, {"epochs": 5}, rule)
    {'epochs': 5, 'batch_size': 256, 'learning_rate': 0.04, 'learning_rate_base': 0.01}
"""

from __future__ import annotations

import math
from typing import Any

from sweeps.spec.models import CategoricalParam, FloatParam, IntParam, LearningRateScale, SweepSpec

LEARNING_RATE = "learning_rate"
#: The name of the sampled (base) learning rate: in the study, and in every trial config.
BASE_LEARNING_RATE = "learning_rate_base"


def learning_rate_scale(spec: SweepSpec) -> LearningRateScale | None:
    """The spec's scaling rule, or None where the trial trains with the sampled value."""
    return active(getattr(spec.search_space[LEARNING_RATE], "scale", None))


def scale_from_raw(search_space: dict[str, Any] | None) -> LearningRateScale | None:
    """The rule of a spec stored as plain data (``sweep.json``), already validated once."""
    entry = (search_space or {}).get(LEARNING_RATE)
    raw = entry.get("scale") if isinstance(entry, dict) else None
    return active(LearningRateScale.model_validate(raw)) if raw else None


def active(scale: LearningRateScale | None) -> LearningRateScale | None:
    # `rule: none` is the same search as no `scale`: one name in the study, one in the config.
    return None if scale is None or scale.rule == "none" else scale


def scale_factor(scale: LearningRateScale | None, batch_size: float) -> float:
    """What the base learning rate is multiplied by at ``batch_size``."""
    if active(scale) is None:
        return 1.0
    assert scale is not None
    ratio = float(batch_size) / scale.reference_batch_size
    return ratio if scale.rule == "linear" else math.sqrt(ratio)


def effective_learning_rate(scale: LearningRateScale | None, base: float, batch_size: float) -> float:
    return float(base) * scale_factor(scale, batch_size)


def study_name_of(name: str, scale: LearningRateScale | None) -> str:
    """The name a search-space parameter has in the Optuna study."""
    return BASE_LEARNING_RATE if name == LEARNING_RATE and active(scale) is not None else name


def trial_config(
    params: dict[str, Any], fixed: dict[str, Any], scale: LearningRateScale | None
) -> dict[str, Any]:
    """A trial's config from the study's parameters and the spec's fixed values.

    Every place a config is made from Optuna parameters (the searcher's suggestion, a
    resumed sweep's rebuild from the study, ``sweep status``/``best``) goes through here,
    so the effective learning rate is computed by one rule everywhere.
    """
    config = {**fixed, **params}
    if active(scale) is None or BASE_LEARNING_RATE not in config:
        return config
    base = config.pop(BASE_LEARNING_RATE)
    config[LEARNING_RATE] = effective_learning_rate(scale, base, config["batch_size"])
    config[BASE_LEARNING_RATE] = base
    return config


def base_learning_rates(spec: SweepSpec) -> tuple[float, float]:
    """The lowest and highest learning rate the spec lets Optuna sample (the base values)."""
    param = spec.search_space[LEARNING_RATE]
    if isinstance(param, (FloatParam, IntParam)):
        return float(param.low), float(param.high)
    values = [float(v) for v in (param.values if isinstance(param, CategoricalParam) else [param])]
    return min(values), max(values)


def learning_rate_range(
    low: float, high: float, scale: LearningRateScale | None, batch_size: float
) -> tuple[float, float]:
    """The effective learning rates a trial at ``batch_size`` can get, from the base range."""
    factor = scale_factor(scale, batch_size)
    return float(low) * factor, float(high) * factor


def config_keys(spec: SweepSpec) -> list[str]:
    """The hyperparameters of a trial config, in the spec's order: ``learning_rate_base``
    comes right after ``learning_rate`` when the spec scales it."""
    keys = []
    for name in spec.search_space:
        keys.append(name)
        if name == LEARNING_RATE and learning_rate_scale(spec) is not None:
            keys.append(BASE_LEARNING_RATE)
    return keys
