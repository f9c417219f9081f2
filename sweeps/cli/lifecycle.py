"""A sweep's life after ``sweep run``: ``resume``, ``stop``, ``list``, ``status`` and ``best``.

Every command takes the sweep's name and ``--storage PATH`` (default ./sweep_results,
as ``sweep run``); everything else is read back from ``<storage>/<name>/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from sweeps.cli.app import DEFAULT_STORAGE, SET_HELP, app
from sweeps.cli.console import console
from sweeps.cli.launch import ray_backend, run_resumed
from sweeps.numbers import compact

STORAGE_HELP = "The storage folder the sweep was run with."


@app.command("resume")
def resume_command(
    name: str = typer.Argument(..., help="The sweep's name."),
    storage: str = typer.Option(DEFAULT_STORAGE, "--storage", help=STORAGE_HELP),
    set_: list[str] | None = typer.Option(
        None,
        "--set",
        help=SET_HELP + " Only fields that keep the search (num_samples, max_concurrent, failure, ...).",
    ),
    address: str | None = typer.Option(
        None, "--address", help="Join this Ray cluster instead of the one the sweep used."
    ),
    as_json: bool = typer.Option(
        False,
        "--json",
        help="Print the summary as one JSON line, the only output on stdout (the rest goes to stderr).",
    ),
    force: bool = typer.Option(False, "--force", help="Resume a sweep recorded as running on another host."),
) -> None:
    """Continue a sweep whose driver died, was stopped or whose machine rebooted."""
    from sweeps.runner.resume import prepare_resume  # here: see sweeps/cli/launch.py

    # Reading Ray's snapshot starts nothing; run_resumed builds the backend that runs the sweep.
    loaded, resumption = prepare_resume(
        storage, name, list(set_ or []), force=force, backend=ray_backend(None, address)
    )
    run_resumed(loaded, resumption, address, as_json, storage)


@app.command("stop")
def stop_command(
    name: str = typer.Argument(..., help="The sweep's name."),
    storage: str = typer.Option(DEFAULT_STORAGE, "--storage", help=STORAGE_HELP),
) -> None:
    """Stop a running sweep gracefully (as Ctrl-C once): trials checkpoint, then the driver exits."""
    from sweeps.errors import StateError
    from sweeps.runner.stopping import resume_command
    from sweeps.store.lifecycle import SweepState, driver_alive, recorded_state
    from sweeps.store.state import read_state, sweep_paths
    from sweeps.store.stop_request import request_stop

    paths = sweep_paths(storage, name)
    state = read_state(paths)
    if recorded_state(paths, state) is not SweepState.RUNNING:
        raise StateError(
            f"{paths.directory}: the sweep `{name}` is not running (its state is "
            f"`{state.get('state')}`), so there is nothing to stop."
        )
    if not driver_alive(state) and state.get("driver_host") in (None, __import__("socket").gethostname()):
        raise StateError(
            f"{paths.directory}: the sweep `{name}` has no live driver (pid {state.get('driver_pid')} "
            f"is gone: it crashed or was killed). Continue it with `{resume_command(paths)}`."
        )
    try:
        request_stop(paths, "sweep stop")
    except OSError as exc:
        raise StateError(f"{paths.directory}: cannot write the stop request ({exc.strerror}).") from None
    Console().print(
        f"Asked sweep [bold]{name}[/] to stop: running trials save a checkpoint, then its driver "
        f"exits. Continue it later with: {resume_command(paths)}"
    )


@app.command("list")
def list_command(
    storage: str = typer.Option(DEFAULT_STORAGE, "--storage", help="The storage folder."),
) -> None:
    """The sweeps under a storage folder: state, trials done, best value, start time."""
    from sweeps.ray_backend.formats import ray_trial_files
    from sweeps.store.catalog import list_sweeps

    table = Table(title=f"Sweeps in {Path(storage).expanduser().resolve()}")
    for column in ("name", "state", "trials done", "best", "started"):
        table.add_column(column, justify="right" if column in ("trials done", "best") else "left")
    for info in list_sweeps(storage, ray_trial_files):
        best = info.best()
        table.add_row(
            info.name,
            info.state,
            f"{info.done}/{info.num_samples}",
            f"{info.metric} {compact(best.value)}" if best and best.value is not None else "-",
            info.started_at or "-",
        )
    Console().print(table)


@app.command("status")
def status_command(
    name: str = typer.Argument(..., help="The sweep's name."),
    storage: str = typer.Option(DEFAULT_STORAGE, "--storage", help=STORAGE_HELP),
    wide: bool = typer.Option(False, "--wide", help="One line per trial, however wide (for grep and logs)."),
) -> None:
    """One sweep: its state and every trial with its outcome, value and iterations."""
    from sweeps.ray_backend.formats import ray_trial_files
    from sweeps.runner.front_reader import read_front
    from sweeps.runner.stopping import resume_command
    from sweeps.store.catalog import RESUMABLE, aborted_advice, describe_sweep
    from sweeps.store.space import checkpoint_status_line
    from sweeps.store.state import sweep_paths

    info = describe_sweep(storage, name, ray_trial_files)
    objectives, front = read_front(storage, name)
    # --wide: a console as wide as the widest row, so no cell wraps.
    console = Console(width=WIDE_COLUMNS) if wide else Console()
    best = info.best()
    if len(objectives) > 1:  # several objectives: the front, marked `*` in the table
        headline = f"; Pareto front: {len(front)} trials (marked *)" if front else "; no Pareto front yet"
    else:
        headline = (
            f"; best {info.metric} = {compact(best.value)} (trial {best.trial_id})"
            if best and best.value is not None
            else ""
        )
    console.print(
        f"[bold]Sweep {name}[/]: {info.state}, {info.done}/{info.num_samples} trials done, started "
        f"{info.started_at or '?'}" + headline,
        soft_wrap=wide,
    )
    console.print(trials_table(info, wrap=not wide, front={m.trial_id for m in front}))
    paths = sweep_paths(storage, name)
    console.print(checkpoint_status_line(paths, ray_trial_files(paths)), highlight=False)
    # Lines that carry a command are never broken by rich: a long path was cut mid-word,
    # and a command must paste whole (a terminal still wraps what is too long for it).
    if info.state in RESUMABLE:
        console.print(f"Continue it with: {resume_command(sweep_paths(storage, name))}", soft_wrap=True)
    elif info.state == "aborted":
        console.print(aborted_advice(info), highlight=False, markup=False, soft_wrap=True)


#: The width `sweep status --wide` lays its table out in: wider than any row.
WIDE_COLUMNS = 10_000


def trials_table(info: Any, wrap: bool, front: set[str] | frozenset[str] = frozenset()) -> RenderableType:
    """The trials of ``info`` (a SweepInfo), one row each; a failed trial's error under it.

    At 80 columns the config column is what gives way: it wraps between its `key=value`
    items and never cuts one (it used to end in "batch_size=6…"); identifiers, states and
    numbers never wrap. A failed trial's error follows its row on lines of its own, in
    full, wrapped at the terminal's width (an error column was cut to four characters at
    80 columns, or dropped): the rows between two errors are a table of their own, with
    the same column widths, so the columns line up across them. With ``wrap=False``
    (``--wide``) every trial stays on one line, its error in a last column.
    """
    configs = [
        ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.config.items())
        for trial in info.trials
    ]
    longest_item = max((len(item) + 1 for config in configs for item in config.split(", ")), default=6)
    # A member of a multi-objective sweep's Pareto front is marked `*` after its state.
    rows = [
        [
            str(trial.number),
            trial.trial_id,
            trial.state + (" *" if trial.trial_id in front else ""),
            compact(trial.value),
            "-"
            if trial.iteration is None
            else (
                f"{trial.iteration}/{trial.total_iterations}"
                if trial.total_iterations
                else str(trial.iteration)
            ),
            config,
        ]
        for trial, config in zip(info.trials, configs, strict=False)
    ]
    headers = ["#", "trial", "state", info.metric, "iterations", "config"]
    widths = [max([len(header), *(len(row[i]) for row in rows)]) for i, header in enumerate(headers[:-1])]
    with_errors = not wrap and any(trial.error for trial in info.trials)
    with_stops = any(trial.stopped or trial.bracket is not None for trial in info.trials)
    stops = [why_stopped(trial, info.mode, info.budget_unit) for trial in info.trials]

    def new_table(header: bool) -> Table:
        # No outer edge and no lines between columns: at 80 columns the config needs the room.
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, show_header=header)
        for column, width in zip(headers, widths, strict=False):
            table.add_column(column, no_wrap=True, min_width=width)
        table.add_column(
            "config", min_width=longest_item if wrap else None, overflow="fold", no_wrap=not wrap
        )
        if with_stops:
            table.add_column("why stopped", overflow="fold", no_wrap=not wrap)
        if with_errors:
            table.add_column("error", no_wrap=True)
        return table

    parts: list[RenderableType] = []
    table = new_table(header=True)
    for trial, row, stop in zip(info.trials, rows, stops, strict=False):
        table.add_row(*row, *([stop] if with_stops else []), *([trial.error or ""] if with_errors else []))
        if trial.error and wrap:
            parts.append(table)
            parts.append(Padding(Text(trial.error, style="red", overflow="fold"), (0, 0, 0, 4)))
            table = new_table(header=False)
    if table.row_count or not parts:
        parts.append(table)
    return Group(*parts)


def why_stopped(trial: Any, mode: str, unit: str) -> str:
    """ASHA's reason for a pruned trial: its rung, its value there and the cut-off it missed."""
    bracket = "" if trial.bracket is None else f"bracket {trial.bracket}"
    stop = trial.stopped
    if not stop:
        return bracket
    below = "<" if mode == "max" else ">"  # what failing the cut-off means in this mode
    if "rung_rank" in stop:  # several objectives (MOASHA): its Pareto rank among the rung's trials
        reason = (
            f"rung {stop['stopped_at_rung']:g} {unit}: Pareto rank {int(stop['rung_rank']) + 1}, "
            f"only the top {stop['rung_kept']} go on"
        )
    else:
        reason = (
            f"rung {stop['stopped_at_rung']:g} {unit}: {compact(stop['rung_value'])} {below} "
            f"cut-off {compact(stop['rung_cutoff'])}"
        )
    return f"{bracket}, {reason}" if bracket else reason


def _best_trial_text(name: str, storage: str, format_: str, export: dict[str, Any]) -> str:
    """The best trial as ``format_`` (yaml, json or a one-trial spec) says."""
    import yaml

    if format_ == "spec":
        from sweeps.cli.best_spec import one_trial_spec, one_trial_spec_text
        from sweeps.store.state import read_state, sweep_paths

        state = read_state(sweep_paths(storage, name))
        return one_trial_spec_text(
            export, one_trial_spec(export, state["spec"], state.get("spec_path"), Path(storage))
        )
    if format_ == "json":
        return json.dumps(export, indent=2) + "\n"
    scale = export.get("learning_rate_scale")
    scaled = (
        ""
        if scale is None
        else (
            f"# `learning_rate` is the effective value the trial trained with: learning_rate_base "
            f"{export['learning_rate_base']:.6g} scaled by rule `{scale['rule']}` from batch size "
            f"{scale['reference_batch_size']} to {export['search_space'].get('batch_size')}.\n"
        )
    )
    return (
        f"# Best trial {export['trial_id']} of sweep {name}: {export['metric']} = {export['value']}\n"
        "# `search_space` holds fixed values: paste it into a spec to train this config again.\n"
        + scaled
        + yaml.safe_dump(export, sort_keys=False)
    )


@app.command("best")
def best_command(
    name: str = typer.Argument(..., help="The sweep's name."),
    storage: str = typer.Option(DEFAULT_STORAGE, "--storage", help=STORAGE_HELP),
    format_: str | None = typer.Option(
        None,
        "--format",
        help="yaml | json | spec (a runnable one-trial spec of the config) | table (several objectives: "
        "the Pareto front, the default there; yaml is the default otherwise)",
    ),
    output: Path | None = typer.Option(None, "--output", help="Write to this file instead of printing."),
) -> None:
    """The best trial's config as fixed values for a spec's search_space, and its checkpoint.

    With several objectives: the Pareto front, as a table, or one config per member."""
    from sweeps.errors import SweepError
    from sweeps.ray_backend.formats import ray_trial_files
    from sweeps.runner.front_reader import read_front
    from sweeps.store.catalog import best_trial_export

    if format_ not in (None, "yaml", "json", "spec", "table"):
        raise SweepError(
            f"--format {format_!r}: choose `yaml`, `json` or `spec` (a spec that trains the best "
            "config again), or `table` for a sweep with several objectives."
        )
    objectives, front = read_front(storage, name)
    several = len(objectives) > 1
    format_ = format_ or ("table" if several else "yaml")
    if format_ == "table" and not several:
        raise SweepError(
            f"--format {format_!r}: choose `yaml`, `json` or `spec` (a spec that trains the best "
            "config again), or `table` for a sweep with several objectives."
        )
    if several and format_ != "spec":
        text = front_text(name, objectives, front, format_)
        if output is None:
            print(text, end="")
            return
        _write_output(output, text, f"the Pareto front of {name}")
        return
    export = best_trial_export(storage, name, ray_trial_files)
    text = _best_trial_text(name, storage, format_, export)
    if output is None:
        print(text, end="")
        return
    what = "a one-trial spec of the best config" if format_ == "spec" else "the best config"
    _write_output(
        output,
        text,
        f"{what} of {name}",
        f"; train it again with `sweep run {output}`" if format_ == "spec" else "",
    )


def _write_output(output: Path, text: str, what: str, hint: str = "") -> None:
    from sweeps.errors import SweepError

    try:
        output.write_text(text)
    except OSError as exc:
        raise SweepError(f"--output {output}: cannot write the file ({exc.strerror}).") from None
    console(stderr=True).print(f"Wrote {what} to {output}{hint}")


def front_text(name: str, objectives: list[tuple[str, str]], front: list[Any], format_: str) -> str:
    """A multi-objective sweep's front: a table, YAML documents (one config each) or JSON."""
    import yaml

    from sweeps.errors import StateError

    if not front:
        raise StateError(
            f"the sweep `{name}` has no completed, feasible trial with every objective yet, so no "
            f"Pareto front. See `sweep status {name}` for its trials."
        )
    members = [{"trial_id": m.trial_id, "values": m.values, "search_space": m.config} for m in front]
    if format_ == "json":
        return json.dumps(members, indent=2) + "\n"
    if format_ == "yaml":
        head = (
            f"# The Pareto front of sweep {name} ({len(front)} trials, best first by {objectives[0][0]}): "
            "one config per document; paste a `search_space` into a spec to train it again.\n"
        )
        return head + yaml.safe_dump_all(members, sort_keys=False)
    table = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        title=f"Pareto front of {name}: {len(front)} trials, best first by {objectives[0][0]}",
    )
    for column in ["#", "trial", *(f"{m} ({mode})" for m, mode in objectives), "config"]:
        table.add_column(column, overflow="fold")
    for member in front:
        config = ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in member.config.items()
        )
        table.add_row(
            str(member.number), member.trial_id, *(compact(member.values[m]) for m, _ in objectives), config
        )
    capture = console(stderr=False)
    with capture.capture() as captured:
        capture.print(table)
    return captured.get()
