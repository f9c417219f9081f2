"""Resolving a spec's `trainable` string, and the built-ins' declared sizes."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweeps.errors import TrainableError
from sweeps.training.registry import BUILTIN_TRAINABLES, resolve_trainable


def test_builtins_declare_their_sizes_without_loading_data() -> None:
    assert resolve_trainable("digits_mlp").dataset_size({}) == 1438
    assert resolve_trainable("synthetic_mlp").dataset_size({"n_samples": 10_000}) == 10_000
    assert set(BUILTIN_TRAINABLES) == {"digits_mlp", "synthetic_mlp"}


def test_module_function_reference() -> None:
    resolved = resolve_trainable("trainables.digits_mlp:train")
    assert resolved.reference == "trainables.digits_mlp:train"


def test_file_reference_relative_to_the_spec(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text(
        "from sweeps import trainable\n@trainable(dataset_size=lambda a: a['n'], drop_last=True)\n"
        "def train(config, ctx):\n    pass\n"
    )
    resolved = resolve_trainable("mine.py:train", base_dir=tmp_path)
    assert resolved.dataset_size({"n": 77}) == 77 and resolved.drop_last
    assert resolved.reference == f"{tmp_path / 'mine.py'}:train"


def test_undeclared_function_is_refused(tmp_path: Path) -> None:
    (tmp_path / "plain.py").write_text("def train(config, ctx):\n    pass\n")
    with pytest.raises(TrainableError, match="does not declare its training-set size"):
        resolve_trainable("plain.py:train", base_dir=tmp_path)


def test_file_that_fails_to_import_names_the_error(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import no_such_module_here\n")
    with pytest.raises(TrainableError, match="No module named 'no_such_module_here'"):
        resolve_trainable("broken.py:train", base_dir=tmp_path)


def test_missing_function_in_module() -> None:
    with pytest.raises(TrainableError, match="has no function `nope`"):
        resolve_trainable("trainables.digits_mlp:nope")


def test_reference_without_colon() -> None:
    with pytest.raises(TrainableError, match="neither a built-in"):
        resolve_trainable("trainables.digits_mlp")
