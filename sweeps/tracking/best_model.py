"""The best trial's model in MLflow: a real MLflow PyTorch model when the trial kept its module.

``tracking.log_model: true`` (the default) gives the best trial's child run a ``model/``
artifact:

- the trial's last checkpoint, ``model/state.pt`` (``torch.load(...)["model"]`` holds the
  weights), always when there is one;
- and, when the trainable handed its module to the context (``fit`` does; an own loop calls
  ``ctx.set_model(model)``), the folder ``mlflow.pytorch.save_model`` writes (``MLmodel``,
  ``data/model.pth``, the requirements) around that checkpoint's module, so that
  ``mlflow.pytorch.load_model("runs:/<run_id>/model")`` returns the trained module.

The module comes from the checkpoint (its weights are the checkpoint's), pickled by the
trial, so the driver needs no code of the trainable beyond its importable classes. The
MLflow model is written once, into ``<storage>/<name>/best_model/``, then uploaded by the
tracking writer's thread with the run's other artifacts. ``mlflow.pytorch.log_model`` itself
is not called: it logs to the process-wide active run and tracking URI, while the sweep's
writer logs to its own client; the folder it uploads is what ``log_model`` would write.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from sweeps.ray_backend.worker import STATE_FILE
from sweeps.training.context import MODULE_KEY


@dataclass(frozen=True)
class BestModel:
    """What to upload for the best trial, and what to tell the user about it."""

    state_file: str | None = None
    mlflow_model: str | None = None  # a folder mlflow.pytorch.save_model wrote
    note: str | None = None  # a warning for the summary: why there is no (MLflow) model


def no_checkpoint_note(trial_id: str, every_epochs: int, trial_epochs: int | None = None) -> str:
    """Why the best trial left no checkpoint, and the one fix that applies."""
    if every_epochs == 0:
        fix = "`checkpoint.every_epochs` is 0 (never); set it to 1 or more"
    elif trial_epochs is not None and every_epochs > trial_epochs:
        fix = (
            f"`checkpoint.every_epochs` is {every_epochs}, more than its {trial_epochs} epochs, so `fit` "
            f"never reached a checkpoint; set it to {trial_epochs} or less"
        )
    else:
        fix = (
            "its trainable never saved one through `ctx`: `fit` saves every `checkpoint.every_epochs` "
            "epochs, and an own loop calls `ctx.save_checkpoint(state)` when "
            "`ctx.should_checkpoint(iteration)` is true, before that iteration's `ctx.report`"
        )
    return f"The best trial {trial_id} left no checkpoint, so no model was stored in MLflow: {fix}."


def prepare_best_model(
    trial_id: str, checkpoint: str | None, every_epochs: int, folder: Path, trial_epochs: int | None = None
) -> BestModel:
    """The best trial's model files, written under ``folder`` (replaced if there)."""
    state_file = os.path.join(checkpoint, STATE_FILE) if checkpoint else None
    if state_file is None or not os.path.exists(state_file):
        return BestModel(note=no_checkpoint_note(trial_id, every_epochs, trial_epochs))
    import torch

    state = torch.load(state_file, map_location="cpu", weights_only=False)
    module = state.get(MODULE_KEY) if isinstance(state, dict) else None
    if module is None:
        return BestModel(
            state_file=state_file,
            note=(
                f"The best trial {trial_id}'s checkpoint holds its weights but not its model, so MLflow got "
                "`model/state.pt` and no MLflow model: its trainable did not hand the model over with "
                "`ctx.set_model(model)` (`fit` does), or it trained while `tracking.log_model` was false."
            ),
        )
    import mlflow.pytorch

    shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Requirements given, not inferred: MLflow infers them by loading the model in a
    # subprocess, seconds of the sweep's end for one line.
    # Pickled, as the trial pickled it: MLflow 3.17's default, `pt2`, traces the model and
    # needs an input example, which the sweep does not have. MLflow warns on every pickled
    # save (a log line above the summary, outside the CLI's console); docs/tracking.md says it.
    quiet = logging.getLogger("mlflow.pytorch")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        mlflow.pytorch.save_model(
            module,
            str(folder),
            serialization_format="pickle",
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
        )
    finally:
        quiet.setLevel(level)
    return BestModel(state_file=state_file, mlflow_model=str(folder))
