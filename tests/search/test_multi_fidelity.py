"""The multi-fidelity sampler: which rung it models, how the view re-labels trials, and that
the study itself stays truthful. Plain Optuna in memory, no Ray."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from sweeps.search.multi_fidelity import MultiFidelityTPESampler, relabelled_at, rung_to_model, value_at

X = {"x": FloatDistribution(0.0, 1.0)}
MILESTONES = [10, 30, 90]


def trial(
    state: TrialState, x: float, curve: dict[int, float], value: float | None = None
) -> optuna.trial.FrozenTrial:
    return optuna.trial.create_trial(
        state=state, value=value, params={"x": x}, distributions=X, intermediate_values=curve
    )


def pruned(x: float, *values: float) -> optuna.trial.FrozenTrial:
    """A trial that reported ``values`` at the first rungs and was stopped at the last of them."""
    return trial(TrialState.PRUNED, x, dict(zip(MILESTONES, values, strict=False)))


def test_value_at_is_the_first_value_at_or_past_the_milestone() -> None:
    t = trial(TrialState.PRUNED, 0.5, {5: 0.1, 12: 0.2, 40: 0.3})
    assert (
        value_at(t, 10) == 0.2
        and value_at(t, 12) == 0.2
        and value_at(t, 30) == 0.3
        and value_at(t, 41) is None
    )


def test_the_model_is_fitted_on_the_highest_rung_with_enough_values_and_falls_back() -> None:
    trials = [pruned(0.1, 1.0)] * 6 + [pruned(0.2, 1.0, 2.0)] * 3 + [pruned(0.3, 1.0, 2.0, 3.0)]
    assert rung_to_model(trials, MILESTONES, min_observations=4) == 30  # 4 values at 30, 1 at 90
    assert rung_to_model(trials, MILESTONES, min_observations=1) == 90
    assert rung_to_model(trials, MILESTONES, min_observations=5) == 10  # falls back to the first rung
    assert rung_to_model(trials, MILESTONES, min_observations=11) is None  # plain TPE
    complete = [trial(TrialState.COMPLETE, 0.4, {10: 1.0, 30: 2.0, 90: 3.0, 100: 4.0}, 4.0)] * 3
    assert (
        rung_to_model(trials + complete, MILESTONES, min_observations=3) == math.inf
    )  # the trials' own ends
    running = [trial(TrialState.RUNNING, 0.5, {10: 1.0, 30: 2.0, 90: 3.0})] * 5
    assert (
        rung_to_model(trials + running, MILESTONES, min_observations=2) == 30
    )  # running trials are not counted


def test_the_view_relabels_each_trial_at_the_rung() -> None:
    at_rung = relabelled_at(pruned(0.1, 1.0, 2.0), 30)
    assert at_rung is not None and at_rung.state == TrialState.COMPLETE and at_rung.value == 2.0
    assert at_rung.intermediate_values == {10: 1.0, 30: 2.0}
    below = relabelled_at(pruned(0.1, 1.0), 30)
    assert below is not None and below.state == TrialState.PRUNED and below.intermediate_values == {10: 1.0}
    running = relabelled_at(trial(TrialState.RUNNING, 0.2, {10: 1.0, 30: 2.0}), 30)
    assert running is not None and running.state == TrialState.RUNNING  # constant liar: still pending
    assert relabelled_at(trial(TrialState.FAIL, 0.3, {10: 1.0}), 10) is None
    short = relabelled_at(trial(TrialState.COMPLETE, 0.4, {10: 5.0}, 5.0), 30)  # ended before the rung
    assert short is not None and short.state == TrialState.PRUNED


def study_whose_rungs_disagree(min_observations: int) -> tuple[optuna.Study, MultiFidelityTPESampler]:
    """At rung 10 small x looks best; at rung 30 (where the trials that went on show it) large x is.

    Every trial reached rung 10 and was stopped there or at rung 30 (minimised)."""
    sampler = MultiFidelityTPESampler(
        milestones=MILESTONES, min_observations=min_observations, n_startup_trials=5, seed=0
    )
    study = optuna.create_study(sampler=sampler)
    xs = [i / 20 for i in range(20)]
    for x in xs:
        early = x  # small x is good at rung 10
        curve = {10: early} if x < 0.5 else {10: early, 30: 1.0 - x}  # large x is good at rung 30
        study.add_trial(trial(TrialState.PRUNED, x, curve))
    return study, sampler


def asked(study: optuna.Study, n: int) -> list[float]:
    proposals = []
    for _ in range(n):
        t = study.ask(X)
        proposals.append(float(t.params["x"]))
        study.tell(t, state=TrialState.FAIL)  # left out of the model: each proposal sees the same data
    return proposals


def test_the_sampler_proposes_what_the_highest_rung_with_enough_values_favours() -> None:
    study, sampler = study_whose_rungs_disagree(min_observations=10)  # 10 trials reached rung 30
    proposals = asked(study, 20)
    assert sampler.last_rung == 30
    assert sum(x > 0.5 for x in proposals) >= 15, proposals


def test_with_too_few_values_at_the_high_rung_it_falls_back_to_the_lower_one() -> None:
    study, sampler = study_whose_rungs_disagree(min_observations=11)  # only rung 10 has 11 values
    proposals = asked(study, 20)
    assert sampler.last_rung == 10
    assert sum(x < 0.5 for x in proposals) >= 15, proposals


def test_plain_tpe_would_favour_the_survivors_by_their_step_alone() -> None:
    """Why a view: Optuna's TPE ranks pruned trials by the step they reached, then by value."""
    study, sampler = study_whose_rungs_disagree(min_observations=100)  # no rung has enough: plain TPE
    asked(study, 1)
    assert sampler.last_rung is None


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_the_study_keeps_every_trials_real_state_and_intermediate_values(direction: str) -> None:
    sampler = MultiFidelityTPESampler(milestones=[1, 3, 9], min_observations=3, n_startup_trials=3, seed=1)
    study = optuna.create_study(
        direction=direction,
        sampler=sampler,
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
    )
    sign = 1.0 if direction == "minimize" else -1.0

    def objective(t: optuna.Trial) -> float:
        x = t.suggest_float("x", -2, 2)
        if x > 1.8:
            raise ValueError("diverged")
        for step in (1, 3, 9, 27):
            value = sign * (x**2 + 1 / step)
            t.report(value, step)
            if t.should_prune():
                raise optuna.TrialPruned()
        return value

    study.optimize(objective, n_trials=30, catch=(ValueError,))
    states = {t.state for t in study.trials}
    assert TrialState.PRUNED in states and TrialState.COMPLETE in states
    for t in study.trials:
        if t.state != TrialState.FAIL:
            assert t.intermediate_values and 1 in t.intermediate_values
        if t.state == TrialState.COMPLETE:
            assert 27 in t.intermediate_values and t.value == t.intermediate_values[27]
    assert sampler.last_rung is not None  # it modelled a rung by the end
    assert abs(study.best_params["x"]) < 0.5


def test_min_observations_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="min_observations >= 1"):
        MultiFidelityTPESampler(min_observations=0)


def test_the_spec_checks_the_options_against_this_samplers_own_signature() -> None:
    # The spec sits below the search layer, so it declares this constructor's signature
    # (sweeps.spec.sampler_options.multi_fidelity_options) instead of importing it.
    import inspect

    from sweeps.spec.sampler_options import multi_fidelity_options

    declared = inspect.signature(multi_fidelity_options).parameters
    real = inspect.signature(MultiFidelityTPESampler).parameters
    assert [(p.name, p.default, p.kind) for p in declared.values()] == [
        (p.name, p.default, p.kind) for p in real.values()
    ]
    assert [str(p.annotation) for p in declared.values() if p.name != "milestones"] == [
        str(p.annotation) for p in real.values() if p.name != "milestones"
    ]
