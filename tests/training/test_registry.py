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


# -- a trainable that cannot be called as fn(config, ctx) is refused when resolved (issue 12, 3) --


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        ("def train(config):", "too many positional arguments"),
        ("def train():", "too many positional arguments"),
        ("def train(config, ctx, extra):", "missing a required argument: 'extra'"),
        ("def train(*, config, ctx):", "too many"),
    ],
    ids=["config-only", "no-arguments", "a-third-required", "keyword-only"],
)
def test_a_trainable_with_the_wrong_signature_is_refused(
    tmp_path: Path, definition: str, expected: str
) -> None:
    (tmp_path / "wrong.py").write_text(
        f"from sweeps import trainable\n@trainable(dataset_size=10)\n{definition}\n    pass\n"
    )
    with pytest.raises(TrainableError) as info:
        resolve_trainable("wrong.py:train", base_dir=tmp_path, source="spec.yaml")
    message = str(info.value)
    assert message.startswith("spec.yaml: field `trainable` is 'wrong.py:train'")
    assert str(tmp_path / "wrong.py") in message and "cannot be called as `train(config, ctx)`" in message
    assert expected in message and "def train(config, ctx):" in message


@pytest.mark.parametrize(
    "definition",
    ["def train(config, ctx, extra=1):", "def train(config, *args, **kwargs):", "def train(*args):"],
    ids=["a-default-third", "varargs", "only-varargs"],
)
def test_a_trainable_that_accepts_config_and_ctx_is_accepted(tmp_path: Path, definition: str) -> None:
    (tmp_path / "fine.py").write_text(
        f"from sweeps import trainable\n@trainable(dataset_size=10)\n{definition}\n    pass\n"
    )
    assert resolve_trainable("fine.py:train", base_dir=tmp_path).dataset_size({}) == 10


@pytest.mark.parametrize(
    "definition",
    ["async def train(config, ctx):", "def train(config, ctx):\n    yield"],
    ids=["async", "generator"],
)
def test_a_trainable_whose_body_would_not_run_is_refused(tmp_path: Path, definition: str) -> None:
    (tmp_path / "lazy.py").write_text(
        f"from sweeps import trainable\n@trainable(dataset_size=10)\n{definition}\n    pass\n"
    )
    with pytest.raises(TrainableError, match="whose body would not run"):
        resolve_trainable("lazy.py:train", base_dir=tmp_path)


def test_sweep_plan_refuses_a_one_argument_trainable_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    from sweeps.cli import main
    from tests.conftest import small_spec

    (tmp_path / "arity.py").write_text(
        "from sweeps import trainable\n@trainable(dataset_size=1000)\ndef train(config):\n    pass\n"
    )
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(small_spec(trainable="arity.py:train")))
    assert main(["plan", str(tmp_path / "spec.yaml")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "cannot be called as `train(config, ctx)`" in err and "Traceback" not in err
