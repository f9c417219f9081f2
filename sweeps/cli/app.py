"""The ``sweep`` command-line application object; commands register themselves on it."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="sweep",
    help="Hyperparameter sweeps of PyTorch trainables: Optuna samples, ASHA stops early "
    "(counting iterations), Ray Tune schedules, MLflow records.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

SET_HELP = "Override a spec field, e.g. --set num_samples=8 --set scheduler.grace_period=10."
DEFAULT_STORAGE = "./sweep_results"
