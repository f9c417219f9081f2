"""The Pareto front of a multi-objective sweep as a DataFrame.

Example:
    >>> from sweeps.analysis import pareto_front
    >>> front = pareto_front("digits-tradeoff", storage="./sweep_results")  # doctest: +SKIP
    >>> front[["trial_id", "val_accuracy", "parameters", "batch_size"]]  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sweeps.errors import SweepError
from sweeps.runner.front_reader import read_front

DEFAULT_STORAGE = "./sweep_results"


def pareto_front(name: str, storage: str | Path = DEFAULT_STORAGE) -> pd.DataFrame:
    """One row per trial on the sweep's Pareto front, best first by the first objective.

    Columns: ``trial_id``, ``number`` (the Optuna trial number), each objective's final
    value (named by its metric, in the spec's order), then the trial's config. The front
    is read from the sweep's study, as ``sweep best`` reads it: feasible COMPLETE trials
    that no other one dominates (:mod:`sweeps.search.front`). Empty while there is none.

    Raises:
        SweepError: the sweep has one objective (its best trial is ``load(name).best()``).
    """
    objectives, front = read_front(storage, name)
    if len(objectives) < 2:
        raise SweepError(
            f"the sweep `{name}` has one objective (`metric: {objectives[0][0]}`), so no Pareto front: "
            f"use `sweeps.analysis.load({name!r}).best()` for its best trial."
        )
    columns = ["trial_id", "number", *(metric for metric, _ in objectives)]
    rows = [{"trial_id": m.trial_id, "number": m.number, **m.values, **m.config} for m in front]
    frame = pd.DataFrame(rows)
    return frame if rows else pd.DataFrame(columns=columns)
