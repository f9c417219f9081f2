"""The learning-rate scaling rules, their arithmetic and the configs they make (no Ray)."""

from __future__ import annotations

import math

import pytest

from sweeps.search.space import optuna_distributions
from sweeps.spec.models import LearningRateScale, SweepSpec
from sweeps.spec.scaling import (
    BASE_LEARNING_RATE,
    base_learning_rates,
    config_keys,
    effective_learning_rate,
    learning_rate_range,
    learning_rate_scale,
    scale_from_raw,
    study_name_of,
    trial_config,
)
from tests.conftest import small_spec


def scaled_spec(rule: str, reference: int = 64, **learning_rate: object) -> SweepSpec:
    spec = small_spec()
    spec["search_space"]["learning_rate"].update(
        scale={"rule": rule, "reference_batch_size": reference}, **learning_rate
    )
    return SweepSpec.model_validate(spec)


@pytest.mark.parametrize(
    ("rule", "batch_size", "factor"),
    [
        ("linear", 64, 1.0),
        ("linear", 256, 4.0),
        ("linear", 16, 0.25),
        ("sqrt", 64, 1.0),
        ("sqrt", 256, 2.0),
        ("sqrt", 16, 0.5),
        ("sqrt", 128, math.sqrt(2)),
        ("none", 256, 1.0),
    ],
)
def test_the_effective_learning_rate_follows_the_rule(rule: str, batch_size: int, factor: float) -> None:
    scale = LearningRateScale(rule=rule, reference_batch_size=64)  # type: ignore[arg-type]
    assert effective_learning_rate(scale, 0.01, batch_size) == pytest.approx(0.01 * factor, rel=1e-15)


def test_a_trial_config_holds_the_effective_and_the_base_learning_rate() -> None:
    scale = LearningRateScale(rule="linear", reference_batch_size=32)
    config = trial_config({"batch_size": 128, BASE_LEARNING_RATE: 0.003}, {"epochs": 4}, scale)
    assert config == {
        "epochs": 4,
        "batch_size": 128,
        "learning_rate": 0.003 * (128 / 32),
        BASE_LEARNING_RATE: 0.003,
    }


def test_a_fixed_batch_size_scales_too() -> None:
    scale = LearningRateScale(rule="sqrt", reference_batch_size=16)
    config = trial_config({BASE_LEARNING_RATE: 0.02}, {"batch_size": 64, "epochs": 1}, scale)
    assert config["learning_rate"] == 0.02 * math.sqrt(64 / 16) and config[BASE_LEARNING_RATE] == 0.02


@pytest.mark.parametrize("scale", [None, LearningRateScale(rule="none", reference_batch_size=64)])
def test_without_a_rule_the_config_is_the_sampled_one(scale: LearningRateScale | None) -> None:
    params = {"batch_size": 128, "learning_rate": 0.01}
    assert trial_config(params, {"epochs": 2}, scale) == {"epochs": 2, **params}


def test_the_study_samples_the_base_learning_rate_under_its_own_name() -> None:
    spec = scaled_spec("linear")
    distributions = optuna_distributions(spec)
    assert "learning_rate" not in distributions and BASE_LEARNING_RATE in distributions
    assert (distributions[BASE_LEARNING_RATE].low, distributions[BASE_LEARNING_RATE].high) == (1e-3, 1e-1)
    assert config_keys(spec) == ["batch_size", "epochs", "learning_rate", BASE_LEARNING_RATE]
    unscaled = SweepSpec.model_validate(small_spec())
    assert "learning_rate" in optuna_distributions(unscaled) and config_keys(unscaled) == list(
        unscaled.search_space
    )
    assert study_name_of("learning_rate", None) == "learning_rate"


def test_rule_none_is_the_same_search_as_no_scale() -> None:
    spec = scaled_spec("none")
    assert learning_rate_scale(spec) is None and "learning_rate" in optuna_distributions(spec)


def test_the_range_per_batch_size_scales_the_base_range() -> None:
    spec = scaled_spec("linear", reference=64)
    scale = learning_rate_scale(spec)
    assert base_learning_rates(spec) == (1e-3, 1e-1)
    assert learning_rate_range(1e-3, 1e-1, scale, 128) == (1e-3 * 2.0, 1e-1 * 2.0)
    categorical = small_spec()
    categorical["search_space"]["learning_rate"] = {"type": "categorical", "values": [0.1, 0.01]}
    assert base_learning_rates(SweepSpec.model_validate(categorical)) == (0.01, 0.1)


def test_a_stored_spec_gives_back_its_rule() -> None:
    raw = scaled_spec("sqrt", reference=32).model_dump(mode="json")["search_space"]
    assert scale_from_raw(raw) == LearningRateScale(rule="sqrt", reference_batch_size=32)
    assert scale_from_raw(small_spec()["search_space"]) is None and scale_from_raw(None) is None
