"""``sweep best NAME --format spec``: the best trial's config as a runnable one-trial spec.

The sweep's own spec (as it ran, ``--set`` overrides included) with the search space
replaced by the best trial's values, fixed; one trial; no early stopping (a retrain runs
to the end). It is named ``<name>-best`` and stored beside the sweep, so ``sweep run`` of it
never collides with the sweep itself. The trial's checkpoint and MLflow model are comments:
``checkpoint`` is a field of the spec (its cadence), and writing the path there made the
file no spec at all.

Example::

    sweep best digits-mlp --format spec --output best.yaml
    sweep run best.yaml          # trains the best config again, from scratch
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def one_trial_spec(
    export: dict[str, Any], sweep_spec: dict[str, Any], spec_path: str | None, storage: Path
) -> dict[str, Any]:
    """The spec that trains ``export``'s config once (``export``: ``best_trial_export``)."""
    spec = dict(sweep_spec)
    spec["name"] = f"{export['sweep']}-best"
    spec["num_samples"] = 1
    spec["search_space"] = dict(export["search_space"])
    spec["scheduler"] = {"type": "none"}
    spec["storage"] = str(storage.resolve())
    spec["trainable"] = _absolute_reference(str(spec["trainable"]), spec_path)
    spec.pop("max_concurrent", None)  # one trial: nothing to cap
    return spec


def one_trial_spec_text(export: dict[str, Any], spec: dict[str, Any]) -> str:
    comments = [
        (
            f"# The best trial {export['trial_id']} of sweep {export['sweep']}: {export['metric']} = "
            f"{export['value']} after {export['iterations']} iterations."
        ),
        "# A one-trial spec of its config: `sweep run` of this file trains it again, from scratch.",
    ]
    if export.get("checkpoint"):
        comments.append(f"# Its last checkpoint: {export['checkpoint']}/state.pt")
    if export.get("model_uri"):
        comments.append(f"# Its model in MLflow: {export['model_uri']}")
    return "\n".join(comments) + "\n" + yaml.safe_dump(spec, sort_keys=False)


def _absolute_reference(reference: str, spec_path: str | None) -> str:
    """A trainable file given relative to the sweep's spec, as an absolute path: the new
    spec may be written anywhere. Built-ins and module references stay as they are."""
    file, sep, function = reference.rpartition(":")
    if not sep or not file.endswith(".py") or Path(file).is_absolute() or spec_path is None:
        return reference
    beside_spec = Path(spec_path).parent / file
    return f"{beside_spec.resolve()}:{function}" if beside_spec.is_file() else reference
