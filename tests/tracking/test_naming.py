"""Run names: ``t007 bs=64 lr=3.2e-03 ep=8``."""

from __future__ import annotations

import pytest

from sweeps.tracking.naming import format_value, run_name


@pytest.mark.parametrize(
    ("index", "config", "name"),
    [
        (7, {"batch_size": 64, "learning_rate": 0.0032, "epochs": 8}, "t007 bs=64 lr=3.2e-03 ep=8"),
        (1, {"epochs": 2, "learning_rate": 1.0, "batch_size": 16}, "t001 bs=16 lr=1.0e+00 ep=2"),
        (123, {"batch_size": 8, "learning_rate": 0.5, "epochs": 1}, "t123 bs=8 lr=5.0e-01 ep=1"),
        (1000, {"batch_size": 8, "learning_rate": 0.5, "epochs": 1}, "t1000 bs=8 lr=5.0e-01 ep=1"),
    ],
)
def test_run_name_shows_the_hyperparameters_in_a_fixed_order(index: int, config: dict, name: str) -> None:
    assert run_name(index, config) == name


def test_extra_hyperparameters_follow_under_their_initials() -> None:
    config = {"batch_size": 32, "learning_rate": 0.1, "epochs": 2, "weight_decay": 1e-5, "dropout": 0.25}
    assert run_name(12, config) == "t012 bs=32 lr=1.0e-01 ep=2 wd=1.0e-05 dropout=2.5e-01"


def test_clashing_initials_fall_back_to_the_full_name() -> None:
    config = {"batch_size": 32, "learning_rate": 0.1, "epochs": 2, "hidden_size": 64, "head_size": 8}
    assert run_name(3, config) == "t003 bs=32 lr=1.0e-01 ep=2 hidden_size=64 head_size=8"


def test_an_extra_may_not_borrow_a_reserved_abbreviation() -> None:
    config = {"batch_size": 32, "learning_rate": 0.1, "epochs": 2, "loss_rate": 0.5}
    assert run_name(3, config).endswith("loss_rate=5.0e-01")


@pytest.mark.parametrize(
    ("value", "text"), [(0.0032, "3.2e-03"), (64, "64"), (True, "True"), ("adam", "adam")]
)
def test_format_value(value: object, text: str) -> None:
    assert format_value(value) == text


@pytest.mark.parametrize("index", [0, -1])
def test_index_must_be_positive(index: int) -> None:
    with pytest.raises(ValueError, match="index >= 1"):
        run_name(index, {"batch_size": 1, "learning_rate": 0.1, "epochs": 1})
