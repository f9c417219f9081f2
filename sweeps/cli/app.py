"""The ``sweep`` command-line application object; commands register themselves on it."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup


def _show_flags_plainly(params: list[Any]) -> None:
    # typer 0.29's rich help prints a `<bool>` type beside every flag (`--overwrite <bool>`,
    # even `--help <bool>`), as if it took a value; typer until 0.28 and click print none.
    # An empty metavar is what its help shows as no type; parsing ignores a flag's metavar.
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""


class SweepGroup(TyperGroup):
    """The ``sweep`` group: typer's, with flags shown as plain flags in every ``--help``."""

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)
        _show_flags_plainly(params)
        return params

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:  # its options, and the help option it caches
            _show_flags_plainly(command.get_params(ctx))
        return command


app = typer.Typer(
    name="sweep",
    cls=SweepGroup,
    help="Hyperparameter sweeps of PyTorch trainables: Optuna samples, ASHA stops early "
    "(counting iterations), Ray Tune schedules, MLflow records.",
    no_args_is_help=True,
    # `sweep --install-completion` (bash, zsh, fish, PowerShell) and `--show-completion`.
    add_completion=True,
    pretty_exceptions_enable=False,
)

SET_HELP = "Override a spec field, e.g. --set num_samples=8 --set scheduler.grace_period=10."
DEFAULT_STORAGE = "./sweep_results"
