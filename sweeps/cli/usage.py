"""The exceptions of the click that the CLI actually runs on.

typer up to 0.2x ran on the ``click`` package; typer 0.29 vendors its own copy as
``typer._click`` and raises that copy's exceptions, which are not subclasses of
``click.ClickException``. ``except click.ClickException`` then missed every usage error
(`sweep nosuch`, a missing SPEC) and they surfaced as tracebacks with exit 1. So the CLI
catches the classes resolved here, and ``tests/cli/test_usage.py`` checks that a real
usage error raised by our app is one of them, whatever typer's layout becomes.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import typer

# The one place that names typer's private module: its vendored click (typer >= 0.29).
VENDORED_CLICK = "typer._click"


def _click_modules() -> list[ModuleType]:
    """The click of typer (vendored or not) first, the ``click`` package where installed."""
    modules: list[ModuleType] = []
    for name in (VENDORED_CLICK, "click"):
        try:
            modules.append(importlib.import_module(name))
        except ImportError:
            continue
    return modules


def _click_exceptions() -> tuple[type[Exception], ...]:
    found: list[type[Exception]] = []
    for module in _click_modules():
        exc = getattr(module, "ClickException", None)
        if isinstance(exc, type) and exc not in found:
            found.append(exc)
    return tuple(found)


#: Errors in how the command was typed (unknown command or option, missing argument...):
#: each has ``show()``, which prints click's usage message, and ``exit_code``.
CLICK_EXCEPTIONS: tuple[type[Exception], ...] = _click_exceptions()
# typer re-exports the Abort and Exit of the click it runs on, vendored or not.
ABORT: type[Exception] = typer.Abort
EXIT: type[Exception] = typer.Exit

__all__ = ["ABORT", "CLICK_EXCEPTIONS", "EXIT", "VENDORED_CLICK"]
