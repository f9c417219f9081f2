"""The ``sweep`` CLI. ``main()`` turns every :class:`SweepError` into exit code 2, no traceback."""

from __future__ import annotations

import sys

import click
from rich.console import Console

from sweeps.cli import plan as _plan  # noqa: F401 - registers `sweep plan`
from sweeps.cli import report as _report  # noqa: F401 - registers `sweep report`
from sweeps.cli import run as _run  # noqa: F401 - registers `sweep run`
from sweeps.cli import trainables as _trainables  # noqa: F401 - registers `sweep trainables`
from sweeps.cli import ui as _ui  # noqa: F401 - registers `sweep ui`
from sweeps.cli.app import app
from sweeps.errors import SweepError

USAGE_ERROR_EXIT = 2


def main(argv: list[str] | None = None) -> int:
    try:
        app(args=argv, standalone_mode=False)
    except SweepError as exc:
        Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
        return USAGE_ERROR_EXIT
    except click.exceptions.Abort:
        return 130
    except click.ClickException as exc:
        exc.show()
        return USAGE_ERROR_EXIT
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return 0


def entry_point() -> None:
    sys.exit(main())
