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
    loaded = load_spec(
        write(tmp_path, small_spec()), ["num_samples=8", "scheduler.grace_period=10", "search_space.epochs=5"]
    )
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


# -- the core hyperparameters' domains, fixed or as distributions (issue 12, 3) ---------------


@pytest.mark.parametrize(
    ("name", "param", "expected"),
    [
        ("learning_rate", -0.01, "fixed at -0.01"),
        ("learning_rate", 0, "fixed at 0"),
        ("learning_rate", {"type": "float", "low": 0.0, "high": 0.1}, "`low: 0.0`"),
        ("learning_rate", {"type": "float", "low": -0.1, "high": 0.1}, "`low: -0.1`"),
        ("learning_rate", {"type": "categorical", "values": [0.01, -0.001]}, "`values` include -0.001"),
        ("batch_size", 0, "fixed at 0"),
        ("batch_size", {"type": "int", "low": 0, "high": 64}, "`low: 0`"),
        ("batch_size", {"type": "categorical", "values": [0, 32]}, "`values` include 0"),
        ("epochs", -1, "fixed at -1"),
        ("epochs", {"type": "categorical", "values": [2, 0]}, "`values` include 0"),
    ],
    ids=[
        "lr-fixed-negative",
        "lr-fixed-zero",
        "lr-range-from-zero",
        "lr-range-negative",
        "lr-categorical",
        "bs-fixed-zero",
        "bs-range-from-zero",
        "bs-categorical",
        "epochs-fixed-negative",
        "epochs-categorical",
    ],
)
def test_a_core_hyperparameter_outside_its_domain_is_rejected(
    tmp_path: Path,
    name: str,
    param: object,
    expected: str,
) -> None:
    spec = small_spec()
    spec["search_space"][name] = param
    message = rejected(tmp_path, spec)
    assert f"field `search_space.{name}`" in message and expected in message
    bound = "greater than 0" if name == "learning_rate" else "at least 1"
    assert f"`{name}` must be" in message and bound in message


def test_a_fixed_epochs_of_zero_says_to_set_it_not_to_raise_a_bound(tmp_path: Path) -> None:
    spec = small_spec()
    spec["search_space"]["epochs"] = 0
    message = rejected(tmp_path, spec)
    assert "fixed at 0" in message and "set it to 1 or more" in message
    assert "lower bound" not in message


def test_a_learning_rate_yaml_reads_as_text_says_how_to_write_it(tmp_path: Path) -> None:
    # PyYAML follows YAML 1.1: `1e-3` (no dot) is the string '1e-3'.
    message = rejected(tmp_path, small_spec(), "search_space.learning_rate=1e-3")
    assert "field `search_space.learning_rate`" in message and "'1e-3'" in message and "1.0e-3" in message


def test_a_float_range_for_batch_size_names_the_fix(tmp_path: Path) -> None:
    spec = small_spec()
    spec["search_space"]["batch_size"] = {"type": "float", "low": 16, "high": 64}
    message = rejected(tmp_path, spec)
    assert "field `search_space.batch_size`" in message and "`type: int`" in message


# -- wording of messages about a file or field that is not what a spec needs ------------------


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n"], ids=["empty", "blank", "comment"])
def test_an_empty_file_says_it_is_empty_and_what_a_spec_needs(tmp_path: Path, text: str) -> None:
    message = rejected(tmp_path, text)
    assert "the spec file is empty" in message and "NoneType" not in message
    for needed in ("name", "trainable", "metric", "mode", "num_samples", "search_space", "learning_rate"):
        assert f"`{needed}" in message


def test_a_file_holding_a_list_says_so_and_what_a_spec_needs(tmp_path: Path) -> None:
    message = rejected(tmp_path, "- name: x\n- trainable: y\n")
    assert "holds a list" in message and "`trainable: digits_mlp`" in message


def test_an_unknown_scheduler_key_on_a_spec_without_scheduler_suggests_the_key(tmp_path: Path) -> None:
    spec = small_spec()
    del spec["scheduler"]
    message = rejected(tmp_path, spec, "scheduler.grace=10")
    assert "discriminator" not in message
    assert "unknown key `grace` in scheduler" in message and "Did you mean `grace_period`" in message
    assert "defaults to `asha`" in message


def test_a_scheduler_override_without_type_means_the_default_asha(tmp_path: Path) -> None:
    spec = small_spec()
    del spec["scheduler"]
    loaded = load_spec(write(tmp_path, spec), ["scheduler.grace_period=10"])
    assert loaded.spec.scheduler.type == "asha" and loaded.spec.scheduler.grace_period == 10


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("scheduler", "field `scheduler` has `type: asah`"),
        ("learning_rate", "field `search_space.learning_rate` has no `type`"),
    ],
)
def test_a_missing_or_unknown_type_names_the_valid_types(tmp_path: Path, entry: str, expected: str) -> None:
    spec = small_spec()
    if entry == "scheduler":
        spec["scheduler"]["type"] = "asah"
        valid = "`asha` or `none`"
    else:
        del spec["search_space"]["learning_rate"]["type"]
        valid = "`float`, `int` or `categorical`"
    message = rejected(tmp_path, spec)
    assert expected in message and valid in message and "discriminator" not in message


def test_grace_period_defaults_to_auto_and_brackets_to_one(tmp_path: Path) -> None:
    spec = small_spec()
    spec["scheduler"] = {"type": "asha"}
    scheduler = load_spec(write(tmp_path, spec)).spec.scheduler
    assert scheduler.grace_period == "auto" and scheduler.brackets == 1


@pytest.mark.parametrize("grace", ["sometext", 0, -5, True, [10]])
def test_grace_period_neither_auto_nor_positive_names_the_field_and_the_fix(
    tmp_path: Path, grace: object
) -> None:
    spec = small_spec()
    spec["scheduler"]["grace_period"] = grace
    message = rejected(tmp_path, spec)
    assert "field `scheduler.grace_period`" in message and "`grace_period: auto`" in message
    assert message.count("field `") == 1, "one sentence, not one per member of the union"


@pytest.mark.parametrize("brackets", [0, -2, 1.5, "two", True])
def test_brackets_below_one_or_not_whole_names_the_field_and_the_fix(
    tmp_path: Path, brackets: object
) -> None:
    spec = small_spec()
    spec["scheduler"]["brackets"] = brackets
    message = rejected(tmp_path, spec)
    assert "field `scheduler.brackets`" in message and "at least 1" in message and "`brackets: 1`" in message


@pytest.mark.parametrize(
    "name, says",
    [
        ("", "is empty"),
        ("a" * 101, "is 101 characters long"),
        ("my/sweep", "is not a valid sweep name"),
        (".hidden", "is not a valid sweep name"),
    ],
)
def test_a_bad_sweep_name_states_the_rule_in_words(tmp_path: Path, name: str, says: str) -> None:
    message = rejected(tmp_path, small_spec(name=name))
    assert "field `name`" in message and says in message
    assert "1 to 100 characters: letters, digits, `_`, `.` and `-`" in message
    assert "[A-Za-z" not in message and "pattern" not in message  # no raw regex
    assert len(message) < 500  # a long name is shortened in the message


def test_a_name_of_100_characters_is_valid(tmp_path: Path) -> None:
    assert load_spec(write(tmp_path, small_spec(name="a" * 100))).spec.name == "a" * 100


@pytest.mark.parametrize(
    "values",
    [
        [{"name": "sgd", "momentum": 0.9}, {"name": "adam"}],
        [[1, 2], [3]],
    ],
)
def test_conditional_parameters_as_dict_choices_are_refused_with_the_workaround(
    tmp_path: Path, values: list
) -> None:
    spec = small_spec()
    spec["search_space"]["optimizer"] = {"type": "categorical", "values": values}
    message = rejected(tmp_path, spec)
    assert "field `search_space.optimizer.values`" in message
    assert "conditional parameters are not supported" in message and "let the trainable ignore" in message


def test_promotion_names_the_field_and_the_rules(tmp_path: Path) -> None:
    spec = small_spec()
    spec["scheduler"]["promotion"] = "optuna"
    message = rejected(tmp_path, spec)
    assert "field `scheduler.promotion`" in message and "`strict`" in message and "`ray`" in message
