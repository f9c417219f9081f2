"""How the CLI tells the outcome of a sweep: the summary (or one JSON line) and the exit code."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import typer
from rich.markup import escape

from sweeps.cli.console import console as terminal_console
from sweeps.cli.console import warn
from sweeps.numbers import compact
from sweeps.runner.stopping import exit_code, resume_command
from sweeps.runner.summary import SweepSummary
from sweeps.store.state import sweep_paths

if TYPE_CHECKING:
    from rich.console import Console


def report_outcome(
    summary: SweepSummary, metric: str, as_json: bool, scheduler: str = "asha", stdout: TextIO | None = None
) -> None:
    """Print a finished (or stopped) sweep's summary and exit with the code scripts rely on.

    ``stdout`` is where the JSON line goes: the CLI's own stdout, held from before the run
    diverted everything else printed to stderr.
    """
    if as_json:
        # The warnings (on stderr, and in the JSON too) first: a script that reads the JSON
        # line and then sends Ctrl-C must find the summary's exit code decided, and printing
        # them after the line left that window open (130 on a finished sweep).
        for warning in summary.warnings:
            warn(warning)
        print(json.dumps(summary.to_json(), default=str), file=stdout or sys.stdout, flush=True)
    else:
        print_summary(summary, metric, scheduler)
        for warning in summary.warnings:
            warn(warning)
    if summary.limit and summary.stopped:  # `limits.on_exhausted: stop`: ended as configured
        terminal_console(stderr=as_json).print(f"Raise the limit and continue with: {_resume_hint(summary)}")
        return
    if summary.stopped:  # Ctrl-C, SIGTERM or `sweep stop`: not finished, and resumable
        if as_json:  # stdout holds only the JSON; the way back goes to stderr
            terminal_console(stderr=True).print(
                f"Stopped ({summary.stopped}). Continue with: {_resume_hint(summary)}"
            )
        raise typer.Exit(exit_code(summary.stopped))  # 143 after SIGTERM, 130 otherwise
    if summary.aborted:  # too many trials failed: scripts must not take it for a result
        raise typer.Exit(1)


def _resume_hint(summary: SweepSummary) -> str:
    return resume_command(sweep_paths(Path(summary.storage).parent, summary.name))


def print_summary(summary: SweepSummary, metric: str, scheduler: str = "asha") -> None:
    console = terminal_console()
    trials = summary.trials
    ended = "aborted" if summary.aborted else "stopped" if summary.stopped else "finished"
    console.print(
        f"\n[bold]Sweep {summary.name}[/] {ended} after {summary.wall_seconds:.1f} s: "
        f"{trials['completed']} completed, {trials['pruned']} pruned, "
        f"{trials['diverged']} diverged, {trials['failed']} failed."
    )
    if summary.aborted:
        console.print(f"[bold red]Aborted:[/] {summary.aborted}")
    if summary.failures:  # the most common errors first, with what their configs share
        console.print("Failed trials by error:")
        for line in summary.failures:
            console.print(f"  {escape(line)}", highlight=False)
    if summary.limit:
        ran = sum(trials.values())
        how = (
            "stopped the running trials at their checkpoint"
            if summary.stopped
            else "let the running trials finish"
        )
        console.print(
            f"[bold]Ended by {summary.limit}[/]: no trial started after it ({ran} trials ran), and it {how}."
        )
    elif summary.stopped:
        console.print(
            f"[bold yellow]Stopped[/] ({summary.stopped}); the counts above are the trials done so far. "
            f"Continue with: {_resume_hint(summary)}"
        )
    best = summary.best
    if best:
        config = ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in best["config"].items()
        )
        console.print(
            f"Best trial {best['trial_id']}: {metric} = [bold green]{compact(best['value'])}[/] "
            f"after {best['iterations']:,} iterations ({config})"
        )
    _print_iterations(console, summary, ended, scheduler)
    console.print(f"Results: {summary.storage}")
    # Point to the two ways of looking at the results: the sweep-level report and the
    # run-by-run MLflow UI (both read the storage folder that holds `<name>/`).
    storage = shlex.quote(str(Path(summary.storage).parent))
    console.print(
        f"Report:  sweep report {summary.name} --storage {storage}  (plots, best trials, budget as HTML)"
    )
    console.print(f"MLflow:  sweep ui --storage {storage}  (every trial's runs and curves)")


def _print_iterations(console: Console, summary: SweepSummary, ended: str, scheduler: str) -> None:
    """The iterations line: what the trials used and, when ASHA ran a whole sweep, what it saved."""
    trials = summary.trials
    used, worst = summary.iterations_used, summary.iterations_worst_case
    if summary.stopped or summary.aborted:  # trials were cut by the stop, not by ASHA
        console.print(
            f"Iterations: {used:,} so far; the sweep {ended} before its trials ended, "
            f"so there is no saving to count{' yet' if summary.stopped else ''}."
        )
    elif scheduler != "asha":  # `scheduler: none`: nothing was stopped early, nothing saved
        cut = trials["failed"] + trials["diverged"]
        console.print(
            f"Iterations: {used:,} (no early stopping: "
            + (
                "every trial ran to completion)."
                if not cut
                else f"every trial ran until it completed, failed or diverged; {cut} failed or diverged)."
            )
        )
    elif worst:
        console.print(
            f"Iterations: {used:,} used of {worst:,} had every trial run to completion; "
            f"ASHA saved {worst - used:,} ({worst / max(used, 1):.1f}× fewer)."
        )
