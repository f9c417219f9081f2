"""Each bad `learning_rate.scale` through the real CLI: exit 2, one paragraph naming the field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from sweeps.cli import main
from tests.conftest import small_spec

RULE = {"rule": "linear", "reference_batch_size": 64}


def without_batch_size(space: dict[str, Any]) -> None:
    del space["batch_size"]
    space["learning_rate"]["scale"] = RULE


BAD_SCALES: dict[str, tuple[Callable[[dict[str, Any]], None], str, str]] = {
    # case: (how the search space goes wrong, the field named, words of the fix)
    "no batch_size": (without_batch_size, "search_space.learning_rate.scale", "has no `batch_size`"),
    "reference_batch_size 0": (
        lambda space: space["learning_rate"].update(scale={"rule": "linear", "reference_batch_size": 0}),
        "search_space.learning_rate.scale.reference_batch_size",
        "must be at least 1",
    ),
    "reference_batch_size -8": (
        lambda space: space["learning_rate"].update(scale={"rule": "sqrt", "reference_batch_size": -8}),
        "search_space.learning_rate.scale.reference_batch_size",
        "must be at least 1",
    ),
    "unknown rule": (
        lambda space: space["learning_rate"].update(scale={"rule": "quadratic", "reference_batch_size": 64}),
        "search_space.learning_rate.scale.rule",
        "not one of linear, sqrt or none",
    ),
    "scale on epochs": (
        lambda space: space["epochs"].update(scale=RULE),
        "search_space.epochs.scale",
        "only `learning_rate` may have one",
    ),
    "scale on batch_size": (
        lambda space: space["batch_size"].update(scale=RULE),
        "search_space.batch_size.scale",
        "only `learning_rate` may have one",
    ),
    "scale on an extra parameter": (
        lambda space: space.update(
            weight_decay={"type": "float", "low": 1e-6, "high": 1e-3, "log": True, "scale": RULE}
        ),
        "search_space.weight_decay.scale",
        "only `learning_rate` may have one",
    ),
    "scale not a mapping": (
        lambda space: space["learning_rate"].update(scale="linear"),
        "search_space.learning_rate.scale",
        "is a mapping of `rule` and `reference_batch_size`",
    ),
    "misspelt key": (
        lambda space: space["learning_rate"].update(scale={"rule": "linear", "reference_batchsize": 64}),
        "search_space.learning_rate.scale",
        "Did you mean `reference_batch_size`",
    ),
}


@pytest.mark.parametrize("command", ["plan", "run"])
@pytest.mark.parametrize("case", sorted(BAD_SCALES))
def test_a_bad_scale_is_exit_2_naming_the_field(case: str, command: str, tmp_path: Path, capsys: Any) -> None:
    spoil, field, fix = BAD_SCALES[case]
    spec = small_spec(storage=str(tmp_path / "results"))
    spoil(spec["search_space"])
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main([command, str(path)]) == 2
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert str(path) in err and field in err and fix in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "results").exists(), "a bad spec must be refused before anything starts"
