"""Each bad input to the spec gets its own test: a SpecError naming file, field and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sweeps.errors import SpecError
from sweeps.spec import load_spec
from tests.conftest import EXAMPLES, small_spec


def write(tmp_path: Path, spec: dict | str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(spec if isinstance(spec, str) else yaml.safe_dump(spec))
    return path


def rejected(tmp_path: Path, spec: dict | str, *overrides: str) -> str:
    path = write(tmp_path, spec)
    with pytest.raises(SpecError) as info:
        load_spec(path, list(overrides))
    message = str(info.value)
    assert str(path) in message, "the error must name the file"
    assert "\n" not in message.strip(), "the error is one paragraph"
    return message


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_spec_is_valid(example: Path) -> None:
    assert load_spec(example).spec.num_samples >= 1


def test_overrides_set_nested_fields_with_yaml_types(tmp_path: Path) -> None:
    loaded = load_spec(write(tmp_path, small_spec()), ["num_samples=8", "scheduler.grace_period=10", "search_space.epochs=5"])
    assert loaded.spec.num_samples == 8
    assert loaded.spec.scheduler.grace_period == 10
    assert loaded.spec.search_space["epochs"] == 5


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    message = rejected(tmp_path, "name: x\nsearch_space:\n  batch_size: [16, 32\nmetric: a\n")
    assert "malformed YAML" in message and "line 4" in message


def test_unknown_key_suggests_the_closest(tmp_path: Path) -> None:
    spec = small_spec()
    spec["scheduler"]["grace_peroid"] = 5
    message = rejected(tmp_path, spec)
    assert "grace_peroid" in message and "Did you mean `grace_period`" in message


def test_unknown_top_level_key_suggests_the_closest(tmp_path: Path) -> None:
    spec = small_spec()
    spec["num_sample"] = 5
    assert "Did you mean `num_samples`" in rejected(tmp_path, spec)


def test_unknown_key_inside_a_distribution(tmp_path: Path) -> None:
    spec = small_spec()
    spec["search_space"]["learning_rate"]["hihg"] = 1
    message = rejected(tmp_path, spec)
    assert "search_space.learning_rate" in message and "Did you mean `high`" in message


def test_wrong_type(tmp_path: Path) -> None:
    message = rejected(tmp_path, small_spec(num_samples="many"))
    assert "num_samples" in message and "'many'" in message


def test_low_not_below_high(tmp_path: Path) -> None:
    spec = small_spec()
    spec["search_space"]["learning_rate"] = {"type": "float", "low": 0.1, "high": 0.01}
    message = rejected(tmp_path, spec)
    assert "search_space.learning_rate" in message and "`low` must be smaller than `high`" in message


def test_log_with_non_positive_low(tmp_path: Path) -> None:
    spec = small_spec()
    spec["search_space"]["learning_rate"] = {"type": "float", "low": 0, "high": 0.1, "log": True}
    message = rejected(tmp_path, spec)
    assert "`log: true` needs `low > 0`" in message


def test_empty_categorical(tmp_path: Path) -> None:
    spec = small_spec()
    spec["search_space"]["batch_size"] = {"type": "categorical", "values": []}
    assert "is empty" in rejected(tmp_path, spec)


def test_epochs_below_one(tmp_path: Path) -> None:
    spec = small_spec()
    spec["search_space"]["epochs"] = {"type": "int", "low": 0, "high": 3}
    message = rejected(tmp_path, spec)
    assert "`epochs` must be at least 1" in message


def test_num_samples_below_one(tmp_path: Path) -> None:
    message = rejected(tmp_path, small_spec(num_samples=0))
    assert "num_samples" in message and "greater than or equal to 1" in message


def test_mode_not_min_or_max(tmp_path: Path) -> None:
    message = rejected(tmp_path, small_spec(mode="maximize"))
    assert "mode" in message and "'max'" in message and "'min'" in message


@pytest.mark.parametrize("missing", ["batch_size", "epochs", "learning_rate"])
def test_missing_required_hyperparameter(tmp_path: Path, missing: str) -> None:
    spec = small_spec()
    del spec["search_space"][missing]
    assert f"missing the required hyperparameter(s) {missing}" in rejected(tmp_path, spec)


def test_grace_period_beyond_max_t(tmp_path: Path) -> None:
    spec = small_spec()
    spec["scheduler"] = {"type": "asha", "grace_period": 50, "max_t": 10}
    assert "grace_period <= max_t" in rejected(tmp_path, spec)


def test_bad_override_is_reported_as_coming_from_set(tmp_path: Path) -> None:
    message = rejected(tmp_path, small_spec(), "num_samples=0")
    assert "--set num_samples=0" in message


def test_override_without_equals(tmp_path: Path) -> None:
    assert "key.path=value" in rejected(tmp_path, small_spec(), "num_samples")


def test_fixed_values_are_accepted(tmp_path: Path) -> None:
    spec = small_spec()
    spec["search_space"]["epochs"] = 2
    spec["search_space"]["batch_size"] = 64
    loaded = load_spec(write(tmp_path, spec))
    assert loaded.spec.search_space["epochs"] == 2
