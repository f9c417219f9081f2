"""A finished (or running) multi-objective sweep's Pareto front, read back from its study.

``sweep best``, ``sweep status`` and :func:`sweeps.analysis.pareto_front` read the front
here, from the study the sweep wrote (:mod:`sweeps.search.front` computes it the way the
run's summary did: feasible COMPLETE trials that no other one dominates, best first by the
first objective), with no backend running.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweeps.spec.objectives import objectives_of
from sweeps.store.state import read_state, sweep_paths
from sweeps.store.study_records import backend_trial_id


@dataclass(frozen=True)
class FrontMember:
    trial_id: str
    number: int
    config: dict[str, Any]
    #: Metric → the trial's final value, in the spec's order of objectives.
    values: dict[str, float]


def read_front(storage: str | Path, name: str) -> tuple[list[tuple[str, str]], list[FrontMember]]:
    """The sweep's objectives and its front (empty for a single-objective sweep)."""
    paths = sweep_paths(storage, name)
    objectives = objectives_of(read_state(paths)["spec"])
    if len(objectives) < 2 or not paths.study_file.exists():
        return objectives, []
    import optuna

    from sweeps.search.front import front_trials
    from sweeps.store.catalog import describe_sweep
    from sweeps.store.checkpoints import NoTrialFiles

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=name, storage=paths.optuna_url)
    configs = {
        trial.trial_id: trial.config
        for trial in describe_sweep(storage, name, lambda _: NoTrialFiles()).trials
    }  # configs only: no files
    members = []
    for trial in front_trials(study.get_trials(deepcopy=False), [mode for _, mode in objectives]):
        trial_id = backend_trial_id(trial) or str(trial.number)
        members.append(
            FrontMember(
                trial_id,
                trial.number,
                configs.get(trial_id, dict(trial.params)),
                {metric: float(v) for (metric, _), v in zip(objectives, trial.values, strict=True)},
            )
        )
    return objectives, members
