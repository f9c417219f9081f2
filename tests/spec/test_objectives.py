"""Several objectives (`metric: [a, b]`, `mode: [max, min]`) and `constraints`: each bad input
is a SpecError naming the file and the field (the CLI turns it into exit 2)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sweeps.cli import main
from sweeps.spec import load_spec
from tests.conftest import small_spec
from tests.spec.test_loading import rejected, write


def test_a_single_metric_is_one_objective_as_before(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, small_spec())).spec
    assert (spec.metric, spec.mode) == ("val_accuracy", "max")
    assert spec.objectives == (("val_accuracy", "max"),)
    assert not spec.multi_objective and spec.constraints == ()


def test_lists_make_several_objectives_the_first_is_the_metric(tmp_path: Path) -> None:
    spec = load_spec(
        write(tmp_path, small_spec(metric=["val_accuracy", "parameters"], mode=["max", "min"]))
    ).spec
    assert spec.multi_objective
    assert spec.objectives == (("val_accuracy", "max"), ("parameters", "min"))
    assert (spec.metric, spec.mode) == ("val_accuracy", "max")


def test_overrides_can_set_the_lists(tmp_path: Path) -> None:
    spec = load_spec(
        write(tmp_path, small_spec()), ["metric=[val_accuracy, parameters]", "mode=[max, min]"]
    ).spec
    assert spec.metrics == ("val_accuracy", "parameters")


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"metric": ["val_accuracy", "parameters"], "mode": ["max"]}, "mode", "exactly one mode"),
        ({"metric": ["val_accuracy", "val_accuracy"], "mode": ["max", "max"]}, "metric", "more than once"),
        ({"metric": ["val_accuracy", "parameters"], "mode": "max"}, "mode", "not a list"),
        ({"metric": "val_accuracy", "mode": ["max", "min"]}, "metric", "not a list"),
        ({"metric": [], "mode": []}, "metric", "empty list"),
        ({"metric": ["a", "b", "c", "d"], "mode": ["max"] * 4}, "metric", "at most 3"),
        ({"metric": ["val_accuracy", "parameters"], "mode": ["max", "down"]}, "mode", "`max` or `min`"),
        ({"metric": ["val_accuracy", 3], "mode": ["max", "min"]}, "metric", "name of a reported metric"),
        ({"metrics": ["val_accuracy"]}, "metrics", "not a spec field"),
        (
            {"metric": ["val_accuracy", "parameters"], "mode": ["max", "min"], "sampler": {"type": "cmaes"}},
            "sampler.type",
            "optimises one value",
        ),
        (
            {
                "metric": ["val_accuracy", "parameters"],
                "mode": ["max", "min"],
                "scheduler": {"type": "asha", "promotion": "ray"},
            },
            "scheduler.promotion",
            "non-dominated",
        ),
        ({"constraints": ["latency_ms < 5"]}, "constraints.0", "METRIC <= NUMBER"),
        ({"constraints": ["latency_ms <= fast"]}, "constraints.0", "METRIC <= NUMBER"),
        ({"constraints": ["ok <= 1", "latency_ms <= inf"]}, "constraints.1", "METRIC <= NUMBER"),
        ({"constraints": [5]}, "constraints.0", "valid string"),
    ],
    ids=[
        "lengths-differ",
        "repeated",
        "mode-not-list",
        "metric-not-list",
        "empty",
        "four",
        "bad-mode",
        "metric-not-name",
        "derived-field",
        "cmaes",
        "ray-rule",
        "strict-less",
        "bound-not-number",
        "infinite-bound",
        "not-a-string",
    ],
)
def test_bad_objectives_and_constraints_name_the_field(
    tmp_path: Path, changes: dict, field: str, words: str
) -> None:
    spec = small_spec()
    spec.update(changes)
    message = rejected(tmp_path, spec)
    assert f"`{field}`" in message
    assert words in message


def test_the_cli_exits_2_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, small_spec(metric=["val_accuracy", "parameters"], mode=["max"]))
    assert main(["plan", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "`mode`" in err and str(path) in err


def test_constraints_parse_and_measure_their_violation(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, small_spec(constraints=["latency_ms <= 5", "val_accuracy>=0.9"]))).spec
    at_most, at_least = spec.parsed_constraints
    assert (at_most.metric, at_most.operator, at_most.bound) == ("latency_ms", "<=", 5.0)
    assert at_most.holds(5.0) and not at_most.holds(5.5) and at_most.violation(6.0) == 1.0
    assert at_least.holds(0.95) and at_least.violation(0.8) == pytest.approx(0.1)
    assert at_most.violation(math.nan) == math.inf and not at_most.holds(math.nan)
