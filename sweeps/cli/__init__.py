"""The ``sweep`` CLI. ``main()`` turns every :class:`SweepError` into exit code 2, no traceback."""

from __future__ import annotations

from rich.markup import escape

from sweeps.cli import check as _check  # noqa: F401 - registers `sweep check`
from sweeps.cli import lifecycle as _lifecycle  # noqa: F401 - registers resume, stop, list, status, best
from sweeps.cli import logs as _logs  # noqa: F401 - registers `sweep logs`
from sweeps.cli import plan as _plan  # noqa: F401 - registers `sweep plan`
from sweeps.cli import report as _report  # noqa: F401 - registers `sweep report`
from sweeps.cli import run as _run  # noqa: F401 - registers `sweep run`
from sweeps.cli import trainables as _trainables  # noqa: F401 - registers `sweep trainables`
from sweeps.cli import ui as _ui  # noqa: F401 - registers `sweep ui`
from sweeps.cli.app import app
from sweeps.cli.console import console
from sweeps.cli.usage import ABORT, CLICK_EXCEPTIONS, EXIT
from sweeps.errors import SweepError

__all__ = ["USAGE_ERROR_EXIT", "entry_point", "main"]

USAGE_ERROR_EXIT = 2


def main(argv: list[str] | None = None) -> int:
    try:
        # Without standalone mode, click returns (not raises) the code of `typer.Exit(code)`.
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int) and code:
            return code
    except SweepError as exc:
        # Escaped: a message quotes YAML (`values: [sgd, adam]`) that rich would read as markup.
        console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}", markup=True)
        return USAGE_ERROR_EXIT
    except KeyboardInterrupt as exc:  # Ctrl-C twice (SweepInterrupted says how to resume)
        console(stderr=True).print(str(exc) or "interrupted", markup=False)
        return 130
    except ABORT:
        return 130
    # The click that typer runs on (vendored since typer 0.29, see sweeps/cli/usage.py):
    # `show()` prints click's usage line, the `--help` hint and the error.
    except CLICK_EXCEPTIONS as exc:
        exc.show()  # type: ignore[attr-defined]
        return USAGE_ERROR_EXIT
    except EXIT as exc:
        return int(exc.exit_code)  # type: ignore[attr-defined]
    return 0


def entry_point() -> None:
    from sweeps.cli.launch import end_process

    end_process(main())
