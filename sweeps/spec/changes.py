"""Which spec changes a resumed sweep accepts.

A sweep's trials, its Optuna study and its MLflow runs are only comparable if they were
produced by the same search: same space, trainable, metric, sampler, scheduler and
tracking store. Those fields are frozen once a sweep has started; changing one needs a
new sweep (another name, or ``--overwrite``). Everything else (how many trials, how many
at once, retries, resources, checkpoint cadence, the sweep's limits) may change between runs, except that
``num_samples`` may not drop below the trials the sweep already has.
"""

from __future__ import annotations

from typing import Any

from sweeps.errors import SpecError
from sweeps.spec.models import SweepSpec

#: Top-level fields a resumed sweep may change.
HARMLESS_FIELDS = frozenset(
    {
        "num_samples",
        "max_concurrent",
        "resources",
        "failure",
        "checkpoint",
        "storage",
        "limits",
    }
)
#: Inside `tracking`, only whether the best model is uploaded may change.
HARMLESS_TRACKING_FIELDS = frozenset({"log_model"})


def check_resume_changes(old: SweepSpec, new: SweepSpec, source: str, trials_so_far: int) -> list[str]:
    """The harmless changes from ``old`` to ``new``, as ``field: old → new`` lines.

    Raises:
        SpecError: a field that shapes the search changed, or ``num_samples`` fell below
            the trials the sweep already has.
    """
    before, after = old.model_dump(mode="json"), new.model_dump(mode="json")
    harmless = []
    for path, was, now in _differences(before, after):
        top = path.split(".")[0]
        tracking_ok = (
            top == "tracking" and path.split(".")[1:2] and path.split(".")[1] in HARMLESS_TRACKING_FIELDS
        )
        if top not in HARMLESS_FIELDS and not tracking_ok:
            raise SpecError(
                f"{source}: field `{path}` changed from {was!r} to {now!r} since the sweep "
                f"`{old.name}` started. A resumed sweep must keep the search it began with "
                "(search space, trainable, metric, sampler, scheduler, tracking store), or "
                "its trials would not be comparable. Undo the change to resume, or start a new "
                "sweep with another `--name` (or `sweep run ... --overwrite`)."
            )
        if top != "storage":
            harmless.append(f"{path}: {was!r} → {now!r}")
    if new.num_samples < trials_so_far:
        raise SpecError(
            f"{source}: field `num_samples` is {new.num_samples}, but the sweep `{old.name}` "
            f"already has {trials_so_far} trials. Set `num_samples` to at least {trials_so_far}."
        )
    return harmless


def _differences(before: Any, after: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    if isinstance(before, dict) and isinstance(after, dict):
        found = []
        for key in sorted(set(before) | set(after), key=str):
            child = f"{path}.{key}" if path else str(key)
            if key not in before or key not in after:
                found.append((child, before.get(key), after.get(key)))
            else:
                found.extend(_differences(before[key], after[key], child))
        return found
    return [] if before == after else [(path, before, after)]
