"""Search space and sampler: the spec's distributions as Optuna objects."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna

from sweeps.search.avoid_failures import FailureAvoidingTPESampler, MultiObjectivePrunedTPESampler
from sweeps.search.multi_fidelity import MultiFidelityTPESampler
from sweeps.spec.models import CategoricalParam, FloatParam, IntParam, SweepSpec
from sweeps.spec.sampler_options import sampler_arguments, sampler_class
from sweeps.spec.scaling import learning_rate_scale, study_name_of


def optuna_distributions(spec: SweepSpec) -> dict[str, optuna.distributions.BaseDistribution]:
    """The searched (non-fixed) parameters of the spec as Optuna distributions.

    A scaled learning rate is sampled as ``learning_rate_base`` (see
    :mod:`sweeps.spec.scaling`): the study holds the base value its sampler models.
    """
    distributions: dict[str, optuna.distributions.BaseDistribution] = {}
    scale = learning_rate_scale(spec)
    for spec_name, param in spec.search_space.items():
        name = study_name_of(spec_name, scale)
        if isinstance(param, FloatParam):
            distributions[name] = optuna.distributions.FloatDistribution(
                param.low, param.high, log=param.log, step=param.step
            )
        elif isinstance(param, IntParam):
            distributions[name] = optuna.distributions.IntDistribution(
                param.low, param.high, log=param.log, step=param.step
            )
        elif isinstance(param, CategoricalParam):
            distributions[name] = optuna.distributions.CategoricalDistribution(param.values)
    if not distributions:
        # Every hyperparameter fixed (a smoke run): the study gets the fixed values as
        # one-choice categoricals, so its trials still carry their whole config. (Written
        # when Ray's OptunaSearch refused an empty space; our own searcher would not.)
        distributions = {
            name: optuna.distributions.CategoricalDistribution([value])
            for name, value in fixed_values(spec).items()
        }
    return distributions


def fixed_values(spec: SweepSpec) -> dict[str, Any]:
    """Parameters given as a fixed value (e.g. ``epochs: 5``) rather than a distribution."""
    return {
        name: param
        for name, param in spec.search_space.items()
        if not isinstance(param, (FloatParam, IntParam, CategoricalParam))
    }


def make_sampler(
    spec: SweepSpec, trials_so_far: int = 0, milestones: Sequence[float] = ()
) -> optuna.samplers.BaseSampler:
    """The spec's sampler, always seeded from ``seed`` so a sweep is reproducible.

    A resumed sweep passes the number of trials its study holds: a sampler re-seeded with
    the original seed would replay the random draws that produced those trials (the
    random start-up phase of TPE, random, QMC), proposing configs the study already has.
    ``milestones`` are the ASHA rungs in the study's step unit, which the multi-fidelity
    sampler models (:mod:`sweeps.search.multi_fidelity`).
    """
    seed = spec.seed + trials_so_far
    kind = spec.sampler.type
    # `failure.avoid` (on by default for TPE): failed trials count as infeasible configs.
    avoid = kind == "tpe" and spec.failure.avoid is not False
    constructor = (
        FailureAvoidingTPESampler
        if avoid
        else MultiObjectivePrunedTPESampler
        if kind == "tpe" and spec.multi_objective
        else MultiFidelityTPESampler
        if kind == "multi_fidelity"
        else sampler_class(kind)
    )
    # The options were checked against this constructor when the spec was validated.
    arguments = sampler_arguments(kind, spec.sampler.options)
    if kind == "multi_fidelity":
        arguments["milestones"] = list(milestones)
    sampler: optuna.samplers.BaseSampler = constructor(seed=seed, **arguments)
    return sampler
