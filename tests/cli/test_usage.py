"""Command-line usage errors through the installed ``sweep`` script: exit 2, click's usage, no traceback.

typer 0.29 vendors click as ``typer._click``; an ``except click.ClickException`` stopped
matching and every one of these printed a traceback with exit 1 (issue 12, 1b).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from sweeps.cli import USAGE_ERROR_EXIT
from sweeps.cli.app import app
from sweeps.cli.usage import CLICK_EXCEPTIONS, VENDORED_CLICK


def sweep_script() -> str:
    """The console script installed beside this interpreter (the venv's bin), not a module run."""
    script = shutil.which("sweep", path=str(Path(sys.executable).parent))
    assert script is not None, f"no `sweep` script beside {sys.executable}: run `make install`"
    return script


@pytest.mark.parametrize(
    ("argv", "usage", "error"),
    [
        (["nosuch"], "Usage: sweep [OPTIONS] COMMAND", "No such command 'nosuch'"),
        (["run", "--bogus", "x"], "Usage: sweep run [OPTIONS]", "No such option: --bogus"),
        (["run"], "Usage: sweep run [OPTIONS]", "Missing argument"),
        (["plan"], "Usage: sweep plan [OPTIONS]", "Missing argument"),
        (["status"], "Usage: sweep status [OPTIONS]", "Missing argument"),
        (["check"], "Usage: sweep check [OPTIONS]", "Missing argument"),
        (
            ["check", "x.yaml", "--iterations", "0"],
            "Usage: sweep check [OPTIONS]",
            "Invalid value for '--iterations'",
        ),
    ],
    ids=[
        "unknown-command",
        "unknown-option",
        "run-without-spec",
        "plan-without-spec",
        "status-without-name",
        "check-without-spec",
        "check-zero-iterations",
    ],
)
def test_a_usage_error_exits_2_with_the_usage_and_no_traceback(
    argv: list[str], usage: str, error: str
) -> None:
    proc = subprocess.run([sweep_script(), *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == USAGE_ERROR_EXIT, proc.stderr
    assert usage in proc.stderr
    assert error in proc.stderr
    assert "--help' for help" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_the_usage_errors_our_app_raises_are_the_ones_main_catches() -> None:
    """Contract with typer: whatever click it runs on, its usage error is in CLICK_EXCEPTIONS."""
    command = typer.main.get_command(app)
    with pytest.raises(Exception) as raised:
        command.main(["nosuch"], prog_name="sweep", standalone_mode=False)
    assert isinstance(raised.value, CLICK_EXCEPTIONS), type(raised.value).__mro__


def test_the_vendored_click_is_named_where_typer_has_it() -> None:
    """typer >= 0.29 keeps its click at VENDORED_CLICK; if it moves, usage.py must follow."""
    major, minor = (int(part) for part in typer.__version__.split(".")[:2])
    if (major, minor) < (0, 29):
        pytest.skip(f"typer {typer.__version__} runs on the click package")
    vendored = __import__(VENDORED_CLICK, fromlist=["ClickException"])
    assert vendored.ClickException in CLICK_EXCEPTIONS
