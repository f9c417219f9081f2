"""Sampler options: checked against the Optuna sampler's own signature, through the real CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sweeps.cli import USAGE_ERROR_EXIT, main
from sweeps.search.multi_fidelity import MultiFidelityTPESampler
from sweeps.search.space import make_sampler
from sweeps.spec import load_spec
from sweeps.spec.sampler_options import sampler_class, settable_options

#: The options README documents per sampler; Optuna must keep offering each of them.
DOCUMENTED = {
    "tpe": {"n_startup_trials": 5, "multivariate": True, "group": True, "constant_liar": False},
    "cmaes": {"sigma0": 0.5, "n_startup_trials": 2, "popsize": 6},
    "gp": {"n_startup_trials": 4, "deterministic_objective": True},
    "qmc": {"qmc_type": "halton", "scramble": True},
    "random": {},
    "multi_fidelity": {"min_observations": 5, "n_startup_trials": 5, "multivariate": True},
}


def plan_exit(spec: Path, capsys: pytest.CaptureFixture[str], *overrides: str) -> tuple[int, str]:
    argv = ["plan", str(spec), "--json"]
    for override in overrides:
        argv += ["--set", override]
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.err


@pytest.mark.parametrize("kind", sorted(DOCUMENTED))
def test_the_documented_options_are_in_the_samplers_signature(kind: str) -> None:
    assert set(DOCUMENTED[kind]) <= set(settable_options(kind))
    assert "seed" not in settable_options(kind)  # the sweep's seed, not the spec's sampler


@pytest.mark.parametrize("kind", sorted(DOCUMENTED))
def test_a_sweep_accepts_its_samplers_documented_options_and_builds_the_sampler_with_them(
    kind: str,
    write_spec: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = write_spec(sampler={"type": kind, **DOCUMENTED[kind]})
    code, err = plan_exit(spec, capsys)
    assert code == 0, err
    sampler = make_sampler(load_spec(spec).spec)
    # TPE's is its failure-avoiding subclass by default (failure.avoid, sweeps/search/avoid_failures.py).
    if kind == "multi_fidelity":  # ours, which the spec knows by a declared signature
        assert type(sampler) is MultiFidelityTPESampler
    else:
        assert type(sampler) is sampler_class(kind) or (
            kind == "tpe" and type(sampler).__mro__[1] is sampler_class(kind)
        )
    # Optuna keeps each constructor argument as `_<name>`; compare those it keeps as given.
    for option, value in DOCUMENTED[kind].items():
        if hasattr(sampler, f"_{option}"):
            assert getattr(sampler, f"_{option}") == value, option


def test_tpe_keeps_the_constant_liar_unless_the_spec_turns_it_off(write_spec: Callable[..., Path]) -> None:
    assert make_sampler(
        load_spec(write_spec(sampler={"type": "tpe", "n_startup_trials": 3})).spec
    )._constant_liar
    off = load_spec(write_spec(sampler={"type": "tpe", "constant_liar": False})).spec
    assert not make_sampler(off)._constant_liar  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("sampler", "field", "words"),
    [
        (
            {"type": "tpe", "n_startup_trails": 3},
            "sampler.n_startup_trails",
            ["Did you mean `n_startup_trials`?"],
        ),
        ({"type": "cmaes", "sigma": 0.3}, "sampler.sigma", ["Did you mean `sigma0`?", "CmaEsSampler"]),
        (
            {"type": "gp", "n_starup_trials": 3},
            "sampler.n_starup_trials",
            ["Did you mean `n_startup_trials`?"],
        ),
        ({"type": "qmc", "qmc_typ": "sobol"}, "sampler.qmc_typ", ["Did you mean `qmc_type`?"]),
        ({"type": "random", "n_startup_trials": 3}, "sampler.n_startup_trials", ["takes no options"]),
        ({"type": "tpe", "seed": 3}, "sampler.seed", ["top-level `seed`"]),
        ({"type": "tpe", "gamma": 3}, "sampler.gamma", ["Python object"]),
        ({"type": "tpe", "n_startup_trials": "ten"}, "sampler.n_startup_trials", ["a whole number", "'ten'"]),
        ({"type": "tpe", "multivariate": 1}, "sampler.multivariate", ["true or false"]),
        ({"type": "cmaes", "sigma0": "wide"}, "sampler.sigma0", ["a number or null"]),
        ({"type": "qmc", "qmc_type": "bogus"}, "sampler.qmc_type", ["refuses", "halton"]),
        ({"type": "tpe", "group": True, "multivariate": False}, "sampler`", ["refuses", "multivariate"]),
        (
            {"type": "multi_fidelity", "milestones": [1, 3]},
            "sampler.milestones",
            ["ASHA rungs", "`scheduler`"],
        ),
        (
            {"type": "multi_fidelity", "min_observations": 0},
            "sampler.min_observations",
            ["min_observations >= 1"],
        ),
    ],
    ids=[
        "tpe-typo",
        "cmaes-typo",
        "gp-typo",
        "qmc-typo",
        "random-takes-none",
        "seed",
        "callable",
        "int-type",
        "bool-type",
        "float-type",
        "optuna-refuses-value",
        "optuna-refuses-combination",
        "multi-fidelity-milestones",
        "multi-fidelity-min-observations",
    ],
)
def test_a_bad_sampler_option_exits_2_naming_the_file_and_the_field(
    sampler: dict[str, Any],
    field: str,
    words: list[str],
    write_spec: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = write_spec(sampler=sampler)
    code, err = plan_exit(spec, capsys)
    assert code == USAGE_ERROR_EXIT
    assert str(spec) in err and f"field `{field}" in err
    for word in words:
        assert word in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("scheduler", "words"),
    [
        ({"type": "none"}, ["has no rungs", "scheduler: {type: asha}"]),
        (
            {"type": "asha", "budget": "epochs", "grace_period": 1},
            ["`scheduler.budget` is `epochs`", "samples"],
        ),
    ],
    ids=["no-scheduler", "epochs"],
)
def test_the_multi_fidelity_sampler_without_rungs_in_a_step_unit_exits_2_naming_the_field(
    scheduler: dict[str, Any],
    words: list[str],
    write_spec: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = write_spec(sampler={"type": "multi_fidelity"}, scheduler=scheduler)
    code, err = plan_exit(spec, capsys)
    assert code == USAGE_ERROR_EXIT
    assert str(spec) in err and "field `sampler.type`" in err and "Traceback" not in err
    for word in words:
        assert word in err


def test_the_multi_fidelity_sampler_models_the_plans_rungs(write_spec: Callable[..., Path]) -> None:
    from sweeps.search.multi_fidelity import MultiFidelityTPESampler

    spec = load_spec(write_spec(sampler={"type": "multi_fidelity"})).spec
    sampler = make_sampler(spec, milestones=[30, 10, 90])
    assert isinstance(sampler, MultiFidelityTPESampler) and sampler.milestones == [10, 30, 90]


def test_an_option_optuna_ignores_is_a_warning_in_the_plan(
    write_spec: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Optuna >= 4.4 takes `restart_strategy` but falls back to none: the user is told, in Optuna's words."""
    spec = write_spec(sampler={"type": "cmaes", "restart_strategy": "ipop"})
    assert main(["plan", str(spec)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "warning: sampler (CmaEsSampler): `restart_strategy` has been deprecated" in out


def test_a_spec_without_sampler_options_is_read_without_importing_optuna() -> None:
    """`sweep plan`, `list`, `status` and `best` read specs; Optuna costs 0.4 s to import."""
    import subprocess
    import sys

    from tests.conftest import EXAMPLES, REPO

    code = (
        "import sys; from sweeps.cli import main; code = main(['plan', sys.argv[1], '--json']); "
        "assert 'optuna' not in sys.modules, 'reading a spec imported optuna'; sys.exit(code)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(EXAMPLES / "digits_mlp.yaml")],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
