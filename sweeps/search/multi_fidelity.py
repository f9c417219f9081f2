"""A TPE that models the highest rung with enough observations (``sampler: {type: multi_fidelity}``).

BOHB (Falkner, Klein and Hutter, "BOHB: Robust and Efficient Hyperparameter Optimization
at Scale", ICML 2018) fits its density model on the observations of the largest budget
that has enough of them (N_b ≥ N_min), falling back to smaller budgets while the larger
ones are sparse. Under ASHA most trials stop at a low rung, so a plain TPE sees a few
COMPLETE trials and many PRUNED ones, which it ranks by the step they reached first and
only then by value (Optuna's ``_get_pruned_trial_score``): two trials stopped at the first
rung compete on their value there, but any trial that survived one more rung counts as
better than every trial that did not, and the complete trials, however few, fill the
"good" group first. The model learns where trials *survive*, late, and from few points.

This sampler gives Optuna's own :class:`~optuna.samplers.TPESampler` a *view* of the
study, re-labelled at one rung (the highest with at least ``min_observations`` values):

- a trial with a value at that rung (its first intermediate value at or past the
  milestone, the value ASHA recorded there) is COMPLETE with that value;
- a trial stopped (or ended) before the rung is PRUNED with its intermediate values, so
  TPE ranks it below every trial that reached the rung, among its peers by value;
- a trial still running stays RUNNING (TPE's constant liar counts it as bad).

With no rung yet holding ``min_observations`` values, the sampler is plain TPE on the
study itself; once enough trials ran to their end, the "rung" is ``max_t`` (their final
values). The view is built in memory for each ask and never written: the sweep's study
keeps every trial's real state (COMPLETE, PRUNED or FAIL) and intermediate values.

The rungs are given in the study's step unit (the budget unit: iterations or samples;
``budget: epochs`` keys steps by iteration, so the spec refuses this sampler with it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, TPESampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

#: BOHB's N_min is d + 1 for a model on d parameters; TPE on fewer than its own
#: ``n_startup_trials`` (10 by default) finished trials samples at random anyway, so a rung
#: is trusted from as many values as TPE needs to start modelling.
DEFAULT_MIN_OBSERVATIONS = 10


def value_at(trial: FrozenTrial, milestone: float) -> float | None:
    """The trial's first intermediate value at or past ``milestone`` (what ASHA recorded there)."""
    steps = [step for step in trial.intermediate_values if step >= milestone]
    return trial.intermediate_values[min(steps)] if steps else None


def rung_to_model(
    trials: Sequence[FrozenTrial], milestones: Sequence[float], min_observations: int
) -> float | None:
    """The highest milestone at which at least ``min_observations`` finished trials have a value.

    ``math.inf`` stands for the trials' own ends (the COMPLETE trials' final values); None
    means no rung has enough values yet (plain TPE on the study).
    """
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    if sum(t.state == TrialState.COMPLETE for t in finished) >= min_observations:
        return float("inf")
    for milestone in sorted(milestones, reverse=True):
        if sum(value_at(t, milestone) is not None for t in finished) >= min_observations:
            return milestone
    return None


def relabelled_at(trial: FrozenTrial, milestone: float) -> FrozenTrial | None:
    """``trial`` as the view at ``milestone`` shows it (None: left out, as TPE leaves out FAIL)."""
    if trial.state not in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING):
        return None
    if milestone == float("inf"):
        return trial  # the study's own labels
    value = value_at(trial, milestone)
    if trial.state != TrialState.RUNNING and value is not None:
        state, final = TrialState.COMPLETE, value
    elif trial.state == TrialState.RUNNING:
        state, final = TrialState.RUNNING, None
    else:  # ended before the rung: below every trial that reached it
        state, final = TrialState.PRUNED, None
    return optuna.trial.create_trial(
        state=state,
        value=final,
        params=trial.params,
        distributions=trial.distributions,
        intermediate_values=trial.intermediate_values,
        system_attrs=trial.system_attrs,
    )


class MultiFidelityTPESampler(BaseSampler):
    """Optuna's TPE, fitted on the highest rung that has ``min_observations`` values.

    Args:
        milestones: the rungs, in the study's step unit (set by the sweep from its plan).
        min_observations: values a rung needs before the model is fitted on it (BOHB's N_min).
        n_startup_trials, n_ei_candidates, multivariate, group, constant_liar: as for
            :class:`optuna.samplers.TPESampler`, which does the sampling.
        seed: the TPE's seed.

    Example::

        sampler = MultiFidelityTPESampler(milestones=[10, 30, 90], seed=0)
        study = optuna.create_study(sampler=sampler)
    """

    def __init__(
        self,
        *,
        milestones: Sequence[float] = (),
        min_observations: int = DEFAULT_MIN_OBSERVATIONS,
        n_startup_trials: int = 10,
        n_ei_candidates: int = 24,
        multivariate: bool | None = None,
        group: bool = False,
        constant_liar: bool = True,
        seed: int | None = None,
    ) -> None:
        if min_observations < 1:
            raise ValueError(
                f"The value of `min_observations` is {min_observations}, but must be `min_observations >= 1`"
            )
        self.milestones = sorted(float(m) for m in milestones)
        self.min_observations = min_observations
        self.tpe = TPESampler(
            n_startup_trials=n_startup_trials,
            n_ei_candidates=n_ei_candidates,
            multivariate=multivariate,
            group=group,
            constant_liar=constant_liar,
            seed=seed,
        )
        #: The rung the last view was built at (None: plain TPE), for tests and logs.
        self.last_rung: float | None = None
        self._view: tuple[int, Study, FrozenTrial] | None = None  # (trial number, its view, it there)

    def reseed_rng(self) -> None:
        self.tpe.reseed_rng()

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self.tpe.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        view, as_seen = self.view(study, trial)
        params = self.tpe.sample_relative(view, as_seen, search_space)
        if view is not study:
            # TPE's constant liar shares the relative params of a running trial through its
            # system attributes, which it wrote to the view's copy: the other asks read them
            # from the study.
            # compat: optuna-storage-internals
            written = view._storage.get_trial(as_seen._trial_id).system_attrs
            for key, value in written.items():
                if key not in trial.system_attrs:
                    study._storage.set_trial_system_attr(trial._trial_id, key, value)
        return params

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        view, as_seen = self.view(study, trial)
        return self.tpe.sample_independent(view, as_seen, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self.tpe.before_trial(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self.tpe.after_trial(study, trial, state, values)

    def view(self, study: Study, trial: FrozenTrial) -> tuple[Study, FrozenTrial]:
        """The study as TPE should see it for ``trial``, re-labelled at the rung to model, and
        the trial being sampled as it appears there (TPE's liar leaves it out by number)."""
        if self._view is not None and self._view[0] == trial.number:
            return self._view[1], self._view[2]  # one view per ask (TPE may sample each parameter apart)
        others = [t for t in study.get_trials(deepcopy=False) if t.number != trial.number]
        rung = rung_to_model(others, self.milestones, self.min_observations)
        self.last_rung = rung
        if rung is None or rung == float("inf"):
            view, as_seen = study, trial  # plain TPE: the study's own labels are the ones to model
        else:
            view = optuna.create_study(directions=study.directions, storage=optuna.storages.InMemoryStorage())
            view.add_trials([r for r in (relabelled_at(t, rung) for t in others) if r is not None])
            view.add_trial(
                optuna.trial.create_trial(
                    state=TrialState.RUNNING, params=trial.params, distributions=trial.distributions
                )
            )
            as_seen = view.get_trials(deepcopy=False)[-1]
        self._view = (trial.number, view, as_seen)
        return view, as_seen
