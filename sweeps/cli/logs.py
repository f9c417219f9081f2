"""``sweep logs NAME TRIAL``: the last lines a trial printed (its stdout and stderr).

Each trial's output is kept in its folder while it runs (:mod:`sweeps.store.trial_output`);
this command finds the folder from the trial's id (or its number in ``sweep status``) and
prints the last lines of each file, verbatim.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from sweeps.cli.app import DEFAULT_STORAGE, app
from sweeps.cli.console import console


@app.command("logs")
def logs_command(
    name: str = typer.Argument(..., help="The sweep's name."),
    trial: str = typer.Argument(..., help="The trial: its id (as in `sweep status`) or its number (#)."),
    storage: str = typer.Option(
        DEFAULT_STORAGE, "--storage", help="The storage folder the sweep was run with."
    ),
    lines: int = typer.Option(20, "--lines", "-n", min=1, help="How many of the last lines of each stream."),
) -> None:
    """The last lines a trial printed to stdout and stderr (kept in its trial folder)."""
    from sweeps.errors import StateError
    from sweeps.ray_backend.formats import ray_trial_files
    from sweeps.store.catalog import describe_sweep
    from sweeps.store.state import sweep_paths
    from sweeps.store.trial_output import last_lines, output_files

    info = describe_sweep(storage, name, ray_trial_files)
    found = [t for t in info.trials if trial in (t.trial_id, str(t.number))]
    if not found:
        known = ", ".join(t.trial_id for t in info.trials[:5]) + (", ..." if len(info.trials) > 5 else "")
        raise StateError(
            f"{info.directory}: the sweep `{name}` has no trial `{trial}` "
            f"(its trials: {known or 'none yet'}). Pass a trial id or number as "
            f"`sweep status {name}` lists them."
        )
    trial_id = found[0].trial_id
    folder = sweep_paths(storage, name).trials_directory / trial_id
    files = output_files(folder) if folder.is_dir() else []
    out = console()
    if not files:
        out.print(
            f"Trial {trial_id} of sweep {name} printed nothing (its output would be in {folder}).",
            markup=False,
        )
        return
    for path in files:
        shown = last_lines(path, lines)
        total = _count_lines(path)
        which = (
            f"its last {len(shown)} of {total} lines"
            if total > len(shown)
            else "its one line"
            if total == 1
            else f"all {total} lines"
        )
        out.print(f"[bold]==> {path.name}[/] of trial {trial_id}, {which} ({path})")
        # The trial's own text, as it was written: not wrapped, not read as markup.
        sys.stdout.write("".join(f"{line}\n" for line in shown))
        sys.stdout.flush()


def _count_lines(path: Path) -> int:
    with open(path, "rb") as stream:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: stream.read(1 << 20), b""))
