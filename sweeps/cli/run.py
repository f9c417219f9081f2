"""``sweep run SPEC``: run a sweep and print the best trial and what ASHA saved."""

from __future__ import annotations

from pathlib import Path

import typer

from sweeps.cli.app import SET_HELP, app
from sweeps.cli.launch import announce, ray_backend, resume_existing, run_and_report
from sweeps.spec.loading import load_spec


def spec_overrides(set_: list[str] | None, name: str | None, storage: str | None) -> list[str]:
    overrides = list(set_ or [])
    if name is not None:  # `--name ''` is refused by the spec's rule, not ignored
        overrides.append(f"name={name}" if name else "name=''")
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
    resume: bool = typer.Option(
        False, "--resume", help="Continue the sweep of this name if it exists (see `sweep resume`)."
    ),
    as_json: bool = typer.Option(
        False,
        "--json",
        help="Print the summary as one JSON line, the only output on stdout (the rest goes to stderr).",
    ),
) -> None:
    """Run a sweep: Optuna samples, ASHA stops weak trials by iterations, Ray Tune schedules."""
    overrides = spec_overrides(set_, name, storage)
    if tracking_uri:
        overrides.append(f"tracking.uri={tracking_uri}")
    loaded = load_spec(spec, overrides)
    if resume and resume_existing(loaded, overwrite, address, as_json):
        return
    # The first line, before the runner's imports (Ray, then torch and MLflow): see console.py.
    lines = announce(loaded, address, as_json)
    from sweeps.runner.runner import RunOptions  # here: see sweeps/cli/launch.py

    run_and_report(
        loaded, RunOptions(ray_backend(loaded, address), address=address, overwrite=overwrite), as_json, lines
    )
