"""`checkpoint: {every_epochs, keep, keep_pruned}`: each bad value is exit 2 naming the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sweeps.cli import main
from sweeps.spec import load_spec
from tests.conftest import small_spec


def write(tmp_path: Path, checkpoint: dict[str, Any]) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(small_spec(checkpoint=checkpoint), sort_keys=False))
    return path


def test_keep_defaults_to_two_and_pruned_checkpoints_go(tmp_path: Path) -> None:
    settings = load_spec(write(tmp_path, {"every_epochs": 1})).spec.checkpoint
    assert (settings.keep, settings.keep_pruned) == (2, False)
    settings = load_spec(write(tmp_path, {"every_epochs": 1, "keep": 5, "keep_pruned": True})).spec.checkpoint
    assert (settings.keep, settings.keep_pruned) == (5, True)


@pytest.mark.parametrize(
    "keep", [0, -1, "two", "2", True, 1.5], ids=["zero", "negative", "word", "quoted", "bool", "fraction"]
)
def test_a_bad_keep_is_exit_2_naming_the_field_and_the_fix(tmp_path: Path, capsys: Any, keep: Any) -> None:
    assert main(["plan", str(write(tmp_path, {"every_epochs": 1, "keep": keep}))]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "spec.yaml" in err and "field `checkpoint.keep`" in err and f"(got {keep!r})" in err
    assert "at least 1 (e.g. `keep: 2`)" in err and "Traceback" not in err


def test_a_bad_keep_given_with_set_is_exit_2(tmp_path: Path, capsys: Any) -> None:
    assert main(["plan", str(write(tmp_path, {})), "--set", "checkpoint.keep=0"]) == 2
    assert "field `checkpoint.keep`" in capsys.readouterr().err


def test_keep_pruned_must_be_a_boolean(tmp_path: Path, capsys: Any) -> None:
    assert main(["plan", str(write(tmp_path, {"keep_pruned": "sometimes"}))]) == 2
    assert "field `checkpoint.keep_pruned`" in capsys.readouterr().err
