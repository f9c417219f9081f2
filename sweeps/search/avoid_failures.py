"""``failure.avoid``: TPE learns from failed trials to stop proposing the region that fails.

Optuna's TPE builds its two densities (good configs, bad configs) from COMPLETE and
PRUNED trials only; a FAIL trial is invisible to it. A sweep whose trainable raises
``CUDA out of memory`` for every batch size of 128 and more therefore keeps proposing
them: TPE has no trial there to call bad. Worse, while trials fail TPE stays in its
random start-up phase longer, since only COMPLETE and PRUNED trials count towards
``n_startup_trials``.

Optuna's answer for "this config is not allowed" is a constraint: ``TPESampler(
constraints_func=...)`` stores each trial's constraint values, and TPE puts infeasible
trials (a value > 0) into its bad density. But Optuna asks ``constraints_func`` only
for COMPLETE and PRUNED trials, so it never sees a FAIL one; and telling Optuna a failed
trial is COMPLETE or PRUNED would make the study lie. :class:`FailureAvoidingTPESampler`
keeps the study truthful (a failed trial stays FAIL, with its error) and lets TPE see,
in its own view of the study only, each FAIL trial as an infeasible one: a trial with
the constraint value ``1.0``, which TPE's own ``_split_trials`` sends to the bad density,
exactly where a ``constraints_func`` would have sent it. The trials also count towards
the start-up phase, as the failures they are.

Diverged trials (NaN or inf, also FAIL) count too: a learning rate that diverges is a
region to leave as much as a batch size that runs out of memory.
"""

from __future__ import annotations

import copy
from collections.abc import Container
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

#: Optuna's system attribute for a trial's constraint values (optuna.study._constrained_optimization).
CONSTRAINTS_KEY = "constraints"  # compat: optuna-constraints-key


class FailureAvoidingTPESampler(optuna.samplers.TPESampler):
    """A ``TPESampler`` that counts every FAIL trial as an infeasible one.

    Example:
        >>> sampler = FailureAvoidingTPESampler(seed=0)
        >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
        >>> study = optuna.create_study(sampler=sampler)
        >>> trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
        >>> _ = study.tell(trial, state=optuna.trial.TrialState.FAIL)
        >>> [t.state for t in _FailedAsInfeasible(study)._get_trials(states=(TrialState.PRUNED,))]
        [<TrialState.PRUNED: 2>]
    """

    #: Whether TPE's view shows FAIL trials as infeasible (False: only the direction fix below).
    failed_as_infeasible = True

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        view = _FailedAsInfeasible(study, self.failed_as_infeasible)
        return super().sample_relative(view, trial, search_space)  # type: ignore[arg-type]

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        view = _FailedAsInfeasible(study, self.failed_as_infeasible)
        return super().sample_independent(view, trial, param_name, param_distribution)  # type: ignore[arg-type]


class MultiObjectivePrunedTPESampler(FailureAvoidingTPESampler):
    """A ``TPESampler`` for a multi-objective study with PRUNED trials (``failure.avoid: false``).

    Optuna's TPE ranks a pruned trial by its last intermediate value in ``study.direction``,
    which raises on a multi-objective study (Optuna's pruners refuse such studies, so it
    never meets one, optuna/optuna#3450). Our study keeps the first objective as the
    intermediate value (:mod:`sweeps.search.truthful_study`), so the view ranks pruned
    trials in the first objective's direction; FailureAvoidingTPESampler does the same.
    """

    failed_as_infeasible = False


class _FailedAsInfeasible:  # compat: optuna-tpe-get-trials
    """A read-only view of a study in which each FAIL trial is a PRUNED, infeasible trial.

    TPE reads trials through ``study._get_trials`` (compat: optuna-tpe-get-trials) and
    everything else (direction, storage) from the study itself, which this view forwards.
    """

    def __init__(self, study: optuna.Study, failed_as_infeasible: bool = True) -> None:
        self._study = study
        self._failed_as_infeasible = failed_as_infeasible

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    @property
    def direction(self) -> optuna.study.StudyDirection:
        # A multi-objective study has no single direction; TPE asks for one only to rank
        # pruned trials by their intermediate values, which are the first objective's.
        return self._study.directions[0]

    def _get_trials(
        self, deepcopy: bool = True, states: Container[TrialState] | None = None, use_cache: bool = False
    ) -> list[FrozenTrial]:
        if not self._failed_as_infeasible:
            return self._study._get_trials(deepcopy=deepcopy, states=states, use_cache=use_cache)
        trials = self._study._get_trials(deepcopy=False, states=None, use_cache=use_cache)
        view = []
        for trial in trials:
            if trial.state == TrialState.FAIL and trial.params and _wanted(TrialState.PRUNED, states):
                view.append(_infeasible(trial))
            elif trial.state != TrialState.FAIL and _wanted(trial.state, states):
                view.append(copy.deepcopy(trial) if deepcopy else trial)
        return view


def _wanted(state: TrialState, states: Container[TrialState] | None) -> bool:
    return states is None or state in states


def _infeasible(trial: FrozenTrial) -> FrozenTrial:
    """A copy of the FAIL ``trial`` as TPE sees an infeasible one (the study keeps the original)."""
    shown = copy.copy(trial)
    shown.state = TrialState.PRUNED
    shown.intermediate_values = {}
    shown.system_attrs = {**trial.system_attrs, CONSTRAINTS_KEY: (1.0,)}
    return shown
