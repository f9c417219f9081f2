"""The best trial's model as an MLflow PyTorch model, from a checkpoint an own loop saved.

No Ray: an own training loop runs in a LocalContext, hands its model with
``ctx.set_model`` and checkpoints; the checkpoint is written as the Ray trial writes it
(``torch.save`` to ``state.pt``), and ``prepare_best_model`` turns it into the MLflow model
folder the tracking writer uploads. ``mlflow.pytorch.load_model`` must load it. The path
through ``fit`` and a real sweep is in test_callback.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sweeps.iterations import TrialShape
from sweeps.store.state import sweep_paths
from sweeps.tracking.best_model import no_checkpoint_note, prepare_best_model
from sweeps.training.context import MODULE_KEY, LocalContext


class TwoLayers(torch.nn.Module):
    """A model class of the trainable's own, at a module's top level (so it pickles)."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden, self.out = torch.nn.Linear(4, 8), torch.nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(x)))


def _own_loop(ctx: LocalContext, hand_model: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    model = TwoLayers()
    if hand_model:
        ctx.set_model(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(40, 4), torch.randint(0, 2, (40,))
    for iteration in range(1, ctx.shape.total_iterations + 1):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        if ctx.should_report(iteration):
            if ctx.should_checkpoint(iteration):
                ctx.save_checkpoint({"model": model.state_dict(), "iteration": iteration})
            ctx.report(iteration=iteration, val_accuracy=0.5)
    return model


def _checkpoint_folder(ctx: LocalContext, folder: Path) -> str:
    folder.mkdir()
    torch.save(ctx.checkpoints[-1][1], folder / "state.pt")  # as RayTrialContext stores it
    return str(folder)


def test_a_model_handed_to_ctx_is_logged_as_an_mlflow_model_that_loads(tmp_path: Path) -> None:
    import mlflow.pytorch
    from mlflow.tracking import MlflowClient

    ctx = LocalContext(TrialShape(40, 10, 2), metric="val_accuracy", keep_model=True)
    trained = _own_loop(ctx, hand_model=True)
    assert MODULE_KEY in ctx.checkpoints[-1][1]
    best = prepare_best_model(
        "t1", _checkpoint_folder(ctx, tmp_path / "checkpoint"), 1, tmp_path / "best_model"
    )
    assert best.note is None and best.mlflow_model is not None and best.state_file is not None

    # Uploaded as the tracking writer does (log_artifacts into the run's `model/`), then
    # loaded with plain MLflow from the run, as docs/tracking.md shows.
    client = MlflowClient(sweep_paths(tmp_path, "s").embedded_tracking_uri)
    run = client.create_run(client.create_experiment("e", artifact_location=(tmp_path / "art").as_uri()))
    client.log_artifacts(run.info.run_id, best.mlflow_model, "model")
    mlflow.set_tracking_uri(client.tracking_uri)
    try:
        loaded = mlflow.pytorch.load_model(f"runs:/{run.info.run_id}/model")
    finally:
        mlflow.set_tracking_uri("")
    x = torch.randn(5, 4)
    assert torch.equal(loaded(x), trained(x))  # the trained weights, not the initial ones


def test_a_model_never_handed_to_ctx_keeps_the_weights_and_says_how_to_get_a_model(tmp_path: Path) -> None:
    ctx = LocalContext(TrialShape(40, 10, 2), metric="val_accuracy", keep_model=True)
    _own_loop(ctx, hand_model=False)
    best = prepare_best_model(
        "t1", _checkpoint_folder(ctx, tmp_path / "checkpoint"), 1, tmp_path / "best_model"
    )
    assert best.mlflow_model is None and best.state_file is not None
    assert best.note is not None and "ctx.set_model(model)" in best.note


def test_without_log_model_checkpoints_keep_no_module() -> None:
    ctx = LocalContext(TrialShape(40, 10, 2), metric="val_accuracy")
    _own_loop(ctx, hand_model=True)
    assert MODULE_KEY not in ctx.checkpoints[-1][1] and "model" in ctx.checkpoints[-1][1]


def test_a_model_that_cannot_be_pickled_keeps_the_weights_and_says_why(
    capsys: pytest.CaptureFixture[str],
) -> None:
    class Local(torch.nn.Linear):  # defined in a function: pickle cannot find it by name
        pass

    ctx = LocalContext(TrialShape(40, 10, 2), metric="val_accuracy", keep_model=True)
    ctx._store_checkpoint = lambda state: torch.save(state, "/dev/null")  # type: ignore[method-assign]
    ctx.set_model(Local(4, 2))
    ctx.save_checkpoint({"model": {}})
    assert not ctx.keep_model and "cannot be saved whole" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("every_epochs", "trial_epochs", "cause"),
    [
        (1, 5, "its trainable never saved one through `ctx`"),
        (3, 5, "its trainable never saved one through `ctx`"),
        (3, None, "its trainable never saved one through `ctx`"),
        (
            4,
            3,
            (
                "`checkpoint.every_epochs` is 4, more than its 3 epochs, so `fit` never reached a "
                "checkpoint; set it to 3 or less"
            ),
        ),
        (0, 5, "`checkpoint.every_epochs` is 0 (never); set it to 1 or more"),
    ],
)
def test_the_no_checkpoint_hint_names_the_one_cause_that_applies(
    every_epochs: int, trial_epochs: int | None, cause: str
) -> None:
    note = no_checkpoint_note("abc", every_epochs, trial_epochs)
    assert cause in note and note.count("checkpoint.every_epochs") == 1  # one hint, once
    assert ">= 1" not in note


def test_no_checkpoint_gives_no_files_and_the_note(tmp_path: Path) -> None:
    best = prepare_best_model("abc", None, 1, tmp_path / "best_model")
    assert best.state_file is None and best.mlflow_model is None
    assert best.note == no_checkpoint_note("abc", 1)
