"""``sweep check SPEC``: one trial's trainable run in this process, before a sweep spends a cluster.

What it runs and measures is :mod:`sweeps.training.dry_run`; this module turns the result
into the report (or ``--json``) and sets the exit code. It imports neither Ray nor MLflow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from sweeps.cli.app import SET_HELP, app
from sweeps.numbers import compact
from sweeps.spec.loading import load_spec
from sweeps.spec.models import SweepSpec
from sweeps.store.disk_errors import human_bytes
from sweeps.store.space import expected_checkpoint_bytes, record_checkpoint_size

if TYPE_CHECKING:  # imported where used: the planner brings NumPy (0.2 s; see cli/console.py)
    from sweeps.plan.planner import SweepPlan
    from sweeps.training.dry_run import DryRunResult

MIB = 1024 * 1024


@app.command("check")
def check_command(
    spec: Path = typer.Argument(..., help="The sweep spec (YAML)."),
    set_: list[str] | None = typer.Option(
        None, "--set", help=SET_HELP + " Fix the checked config with --set search_space.batch_size=64."
    ),
    iterations: int | None = typer.Option(
        None, "--iterations", min=1, help="Run this many iterations instead of up to the first milestone."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the measurements as one JSON object."),
) -> None:
    """Dry-run one trial in this process (no Ray, no MLflow): contract, speed, memory, projected time."""
    from sweeps.plan.planner import plan_spec
    from sweeps.training.dry_run import dry_run

    loaded = load_spec(spec, list(set_ or []))
    resolved, plan = plan_spec(loaded)
    device, device_note = _device(loaded.spec.resources.gpu)
    result = dry_run(loaded.spec, resolved, plan.dataset_size, plan.milestones(), iterations, device)
    if result.checkpoint_bytes is not None:  # for `sweep plan` and `sweep run` (sweeps.store.space)
        record_checkpoint_size(loaded.spec.storage, loaded.spec.name, result.checkpoint_bytes, result.config)
    if as_json:
        print(
            json.dumps(
                to_json(result, plan, device) | {"checkpoints": checkpoint_json(loaded.spec, result)},
                default=str,
            )
        )
    else:
        print_check(
            result,
            plan,
            loaded.spec.trainable,
            loaded.spec.metric,
            device,
            device_note,
            str(spec),
            checkpoint_line(loaded.spec, result),
        )


def _device(gpus: float) -> tuple[str, str]:
    """Where a trial would train: the first GPU when the spec gives trials one and there is one."""
    if gpus <= 0:
        return "cpu", ""
    import torch

    if torch.cuda.is_available():
        return "cuda:0", ""
    return "cpu", " (the spec gives each trial a GPU, but this machine has none: checked on the CPU)"


def projected_seconds(result: DryRunResult, plan: SweepPlan) -> dict[str, float | None]:
    """The sweep's budgets from `sweep plan`, at this trial's rate, one trial at a time."""
    rate = result.steady_iterations_per_second or result.iterations_per_second
    if not rate:
        return {"worst_case": None, "expected": None}
    return {"worst_case": plan.worst_case_iterations / rate, "expected": plan.expected_iterations / rate}


def to_json(result: DryRunResult, plan: SweepPlan, device: str) -> dict[str, Any]:
    return {
        "ok": True,
        "device": device,
        "config": result.config,
        "total_iterations": result.total_iterations,
        "iterations_run": result.iterations_run,
        "target_iterations": result.target_iterations,
        "seconds": round(result.seconds, 4),
        "setup_seconds": result.setup_seconds,
        "iterations_per_second": result.iterations_per_second,
        "steady_iterations_per_second": result.steady_iterations_per_second,
        "reported_iterations": [int(r["iteration"]) for r in result.reports],
        "last_report": result.reports[-1],
        "milestone_iterations": result.milestone_iterations,
        "missed_milestones": result.missed_milestones,
        "declared_dataset_size": result.declared_dataset_size,
        "seen_dataset_size": result.seen_dataset_size,
        "peak_memory_bytes": result.peak_memory_bytes,
        "memory_growth_bytes": result.memory_growth_bytes,
        "gpu_peak_memory_bytes": result.gpu_peak_memory_bytes,
        "diverged": result.diverged,
        "worst_case_iterations": plan.worst_case_iterations,
        "expected_iterations": plan.expected_iterations,
        "projected_seconds": projected_seconds(result, plan),
        "warnings": check_warnings(result),
    }


def check_warnings(result: DryRunResult) -> list[str]:
    warnings = []
    if result.missed_milestones:
        warnings.append(
            "no report at ASHA's milestone iteration(s) "
            f"{', '.join(f'{i:,}' for i in result.missed_milestones)} (reports came at "
            f"{', '.join(str(int(r['iteration'])) for r in result.reports[:8])}): in a sweep ASHA "
            "would decide late, at the next report. Report when `ctx.should_report(i)` is true, or "
            "train with `sweeps.fit`."
        )
    if result.seen_dataset_size is None:
        warnings.append(
            "the trainable never told its context the size of its training set (`fit` does, through "
            "`ctx.check_dataset_size(len(data))`), so whether `dataset_size` is right was not checked; "
            "a wrong one makes trials end before or after the iterations the plan counts."
        )
    if result.diverged:
        warnings.append(
            f"this config diverged (a NaN or infinite value at iteration {result.iterations_run:,}): the "
            "trainable keeps the contract, and a sweep records such a trial as diverged; check another "
            "config with --set, e.g. a smaller learning_rate."
        )
    return warnings


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def print_check(
    result: DryRunResult,
    plan: SweepPlan,
    trainable: str,
    metric: str,
    device: str,
    device_note: str,
    spec_path: str,
    checkpoints: str | None = None,
) -> None:
    console = Console(highlight=False)
    config = ", ".join(f"{k}={v}" for k, v in result.config.items())
    console.print(
        f"[bold]Checked[/] trainable {trainable} in this process (no Ray, no MLflow) on "
        f"{device}{device_note}, with {config} (each parameter's first value; change one with "
        "--set search_space.NAME=VALUE)."
    )
    steady = result.steady_iterations_per_second
    setup = (
        f" of which {result.setup_seconds:.2f} s before the first iteration ended (imports, data, model)"
        if result.setup_seconds is not None
        else ""
    )
    console.print(
        f"Ran {result.iterations_run:,} of the trial's {result.total_iterations:,} iterations, up to "
        f"{result.target_reason}, in {result.seconds:.2f} s{setup}: "
        + (
            f"{steady:,.1f} iterations/s once training"
            if steady
            else f"{result.iterations_per_second:,.1f} iterations/s with the set-up"
        )
        + f"; first report after {result.first_report_seconds:.2f} s."
    )
    console.print(_projection_line(result, plan))
    last = result.reports[-1]
    console.print(
        f"Reports: {len(result.reports)}, at iterations "
        f"{', '.join(str(int(r['iteration'])) for r in result.reports[:12])}"
        f"{', ...' if len(result.reports) > 12 else ''}; last {metric} = {compact(last[metric])}. "
        + (
            f"ASHA milestones reached: {', '.join(f'{i:,}' for i in result.milestone_iterations)}: "
            + ("every one reported." if not result.missed_milestones else "some missed (see the warning).")
            if result.milestone_iterations
            else "No ASHA milestone within these iterations."
        )
    )
    if result.seen_dataset_size is not None:
        console.print(
            f"dataset_size: declared {result.declared_dataset_size:,}; fit() was handed "
            f"{result.seen_dataset_size:,} samples: they match."
        )
    console.print(f"Peak memory: {_memory(result)}.")
    if checkpoints:
        console.print(checkpoints)
    for warning in check_warnings(result):
        console.print(f"[bold yellow]warning:[/] {warning}")
    console.print(
        f"[bold green]OK[/]: the trainable keeps the contract. Run the sweep with: sweep run {spec_path}"
    )


def _projection_line(result: DryRunResult, plan: SweepPlan) -> str:
    """What the sweep would take at the dry run's rate, worst case and under ASHA."""
    projected = projected_seconds(result, plan)
    expected = (
        f"; expected under ASHA {plan.expected_iterations:,.0f} iterations ≈ "
        f"{_duration(projected['expected'])}"
        if plan.scheduler == "asha"
        else ""
    )
    return (
        "Projected at this rate, one trial at a time: the sweep's worst case "
        f"{plan.worst_case_iterations:,.0f} iterations ≈ {_duration(projected['worst_case'])}{expected} "
        "(budgets from `sweep plan`). Training time only: other batch sizes run at other rates, "
        "trials side by side divide it, and each trial's set-up and Ray's start (seconds) come on top."
    )


def checkpoint_json(spec: SweepSpec, result: DryRunResult) -> dict[str, Any]:
    size = result.checkpoint_bytes
    if size is None:
        return {"checkpoint_bytes": None, "expected_bytes": None}
    space = expected_checkpoint_bytes(spec, size)
    return {
        "checkpoint_bytes": size,
        "expected_bytes": space.total_bytes,
        "expected_checkpoints": space.checkpoints,
    }


def checkpoint_line(spec: SweepSpec, result: DryRunResult) -> str:
    """One checkpoint's size, and what the sweep's checkpoints take at once (as `sweep plan` says)."""
    size = result.checkpoint_bytes
    if spec.checkpoint.every_epochs == 0:
        return "Checkpoints: none (`checkpoint.every_epochs: 0`)."
    if size is None:
        return (
            "Checkpoints: not measured, the trainable saved none in these iterations "
            "(`ctx.save_checkpoint`); `sweep plan` cannot tell the space they will take."
        )
    space = expected_checkpoint_bytes(spec, size)
    return (
        f"Checkpoints: one takes {human_bytes(size)}; the sweep's take at most {space.describe()} "
        f"(`checkpoint.keep` = {spec.checkpoint.keep} per running trial, {space.concurrency} at once, "
        "plus the best trial's). Recorded for `sweep plan`."
    )


def _memory(result: DryRunResult) -> str:
    if result.peak_memory_bytes is None:
        return "unknown on this system"
    text = f"{result.peak_memory_bytes / MIB:,.0f} MiB resident"
    if result.memory_growth_bytes is not None:
        text += f" (+{result.memory_growth_bytes / MIB:,.0f} MiB during the run)"
    else:
        text += " (the process's peak so far)"
    if result.gpu_peak_memory_bytes is not None:
        text += f"; GPU {result.gpu_peak_memory_bytes / MIB:,.0f} MiB allocated at the peak"
    return text
