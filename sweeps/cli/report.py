"""``sweep report NAME``: a static HTML report of a sweep (plots, best trials, budget), read from MLflow."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sweeps.cli.app import DEFAULT_STORAGE, app


@app.command("report")
def report_command(
    name: str = typer.Argument(..., help="The sweep's name (or the path of its folder)."),
    storage: str = typer.Option(DEFAULT_STORAGE, "--storage", help="The folder holding the sweep."),
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        help="Where to write index.html and the PNGs (default <storage>/<name>/report).",
    ),
    tracking_uri: str | None = typer.Option(
        None, "--tracking-uri", help="MLflow tracking URI (default: the spec's, else <storage>/mlflow.db)."
    ),
) -> None:
    """Write a self-contained HTML report: learning curves, rung survival, importance, best trials, budget."""
    from sweeps.analysis.loading import load
    from sweeps.analysis.plots import ALL_PLOTS
    from sweeps.analysis.report import write_report

    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        reading = progress.add_task("reading trials from MLflow", total=None)

        def read(done: int, total: int) -> None:
            progress.update(reading, completed=done, total=total)

        data = load(name, storage=storage, tracking_uri=tracking_uri, progress=read)
        from sweeps.analysis.front_plot import has_front

        drawing = progress.add_task("plotting", total=len(ALL_PLOTS) + 1 + has_front(data))
        steps = 0

        def step(description: str) -> None:
            nonlocal steps
            progress.update(drawing, completed=steps, description=description)
            steps += 1

        if output is None:
            output = data.paths.directory / "report" if data.paths else Path(f"{data.name}-report")
        path = write_report(data, output, on_step=step)
        progress.update(drawing, completed=steps)
    snapshot = " (a snapshot: the sweep is still running)" if data.running else ""
    Console().print(f"Report of sweep [bold]{data.name}[/] ({len(data.trials)} trials){snapshot}: {path}")
