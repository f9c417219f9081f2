"""``sweep run SPEC``: run a sweep and print the best trial and what ASHA saved."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from sweeps.cli.app import SET_HELP, app
from sweeps.spec.loading import load_spec


def spec_overrides(set_: list[str] | None, name: str | None, storage: str | None) -> list[str]:
    overrides = list(set_ or [])
    if name:
        overrides.append(f"name={name}")
    if storage:
        overrides.append(f"storage={storage}")
    return overrides


@app.command("run")
def run_command(
    spec: Path = typer.Argument(..., help="The sweep spec (YAML)."),
    set_: list[str] | None = typer.Option(None, "--set", help=SET_HELP),
    address: str | None = typer.Option(None, "--address", help="Join a Ray cluster: auto or HOST:PORT."),
    name: str | None = typer.Option(None, "--name", help="Override the sweep name."),
    storage: str | None = typer.Option(None, "--storage", help="Override the storage folder."),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help="MLflow tracking URI."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing sweep of this name."),
    resume: bool = typer.Option(False, "--resume", help="Continue the sweep of this name if it exists (see `sweep resume`)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON summary on the last line."),
) -> None:
    """Run a sweep: Optuna samples, ASHA stops weak trials by iterations, Ray Tune schedules."""
    from sweeps.runner.runner import RunOptions

    overrides = spec_overrides(set_, name, storage)
    if tracking_uri:
        overrides.append(f"tracking.uri={tracking_uri}")
    loaded = load_spec(spec, overrides)
    if resume:
        from sweeps.cli.lifecycle import resume_existing

        if resume_existing(loaded, overwrite, address, as_json):
            return
    run_and_report(loaded, RunOptions(address=address, overwrite=overwrite), as_json)


def run_and_report(loaded: Any, options: Any, as_json: bool) -> None:
    """Run (or resume) a sweep with the CLI's output settings, then report its outcome."""
    from sweeps.errors import SweepInterrupted
    from sweeps.runner.runner import run_sweep

    options.live = not as_json
    # In a log (a pipe, a file, `ray job logs`) the live view shows nothing until the end.
    options.progress_lines = not as_json and not _is_terminal(sys.stdout)
    # The summary and the exit code come before Ray's shut-down (about 1.4 s), not after it.
    options.on_summary = lambda summary: report_outcome(summary, loaded.spec.metric, as_json)
    try:
        run_sweep(loaded, options)
    except SweepInterrupted as exc:  # stopped at once; the message (how to resume) is printed
        # Here, not in main(): click turns any KeyboardInterrupt into a bare Abort (130).
        raise typer.Exit(exc.exit_code) from None


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def report_outcome(summary: Any, metric: str, as_json: bool) -> None:
    """Print a finished (or stopped) sweep's summary and exit with the code scripts rely on."""
    if as_json:
        print(json.dumps(summary.to_json(), default=str))
    else:
        print_summary(summary, metric)
    for warning in getattr(summary, "warnings", []):
        Console(stderr=True, soft_wrap=True).print(f"[bold yellow]warning:[/] {warning}", highlight=False)
    if summary.stopped:  # Ctrl-C, SIGTERM or `sweep stop`: not finished, and resumable
        from sweeps.runner.stopping import exit_code

        if as_json:  # stdout holds only the JSON; the way back goes to stderr
            Console(stderr=True).print(f"Stopped ({summary.stopped}). Continue with: {_resume_hint(summary)}")
        raise typer.Exit(exit_code(summary.stopped))  # 143 after SIGTERM, 130 otherwise
    if summary.aborted:  # too many trials failed: scripts must not take it for a result
        raise typer.Exit(1)


def _resume_hint(summary: Any) -> str:
    from sweeps.runner.state import sweep_paths
    from sweeps.runner.stopping import resume_command

    return resume_command(sweep_paths(Path(summary.storage).parent, summary.name))


def print_summary(summary: object, metric: str) -> None:
    from sweeps.runner.runner import SweepSummary

    assert isinstance(summary, SweepSummary)
    console = Console()
    trials = summary.trials
    console.print(
        f"\n[bold]Sweep {summary.name}[/] {'stopped' if summary.stopped else 'finished'} after {summary.wall_seconds:.1f} s: "
        f"{trials['completed']} completed, {trials['pruned']} pruned, "
        f"{trials['diverged']} diverged, {trials['failed']} failed."
    )
    if summary.aborted:
        console.print(f"[bold red]Aborted:[/] {summary.aborted}")
    if summary.stopped:
        console.print(f"[bold yellow]Stopped[/] ({summary.stopped}); the counts above are the trials done so far. "
                      f"Continue with: {_resume_hint(summary)}")
    best = summary.best
    if best:
        config = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in best["config"].items())
        console.print(
            f"Best trial {best['trial_id']}: {metric} = [bold green]{best['value']:.4f}[/] "
            f"after {best['iterations']:,} iterations ({config})"
        )
    used, worst = summary.iterations_used, summary.iterations_worst_case
    if worst:
        console.print(
            f"Iterations: {used:,} used of {worst:,} had every trial run to completion; "
            f"ASHA saved {worst - used:,} ({worst / max(used, 1):.1f}× fewer)."
        )
    console.print(f"Results: {summary.storage}")
    # Point to the two ways of looking at the results: the sweep-level report and the
    # run-by-run MLflow UI (both read the storage folder that holds `<name>/`).
    storage = shlex.quote(str(Path(summary.storage).parent))
    console.print(f"Report:  sweep report {summary.name} --storage {storage}  (plots, best trials, budget as HTML)")
    console.print(f"MLflow:  sweep ui --storage {storage}  (every trial's runs and curves)")
