"""``sweep plan SPEC``: the iteration budget of a sweep, before spending it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from sweeps.cli.app import SET_HELP, app
from sweeps.ray_backend.formats import ray_trial_files
from sweeps.spec.loading import load_spec
from sweeps.store.space import checkpoint_plan_line, planned_checkpoint_space
from sweeps.store.state import sweep_paths

if TYPE_CHECKING:  # imported where used: the planner brings NumPy (0.2 s; see cli/console.py)
    from sweeps.plan.planner import SweepPlan


@app.command("plan")
def plan_command(
    spec: Path = typer.Argument(..., help="The sweep spec (YAML)."),
    set_: list[str] | None = typer.Option(None, "--set", help=SET_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as one JSON object."),
) -> None:
    """Show what a sweep will cost in epochs, batches and iterations, without starting Ray."""
    from sweeps.plan.planner import plan_spec

    loaded = load_spec(spec, list(set_ or []))
    _, plan = plan_spec(loaded, reject_impossible=False)
    # The sweep's own checkpoints, when it has run (their size beats a `sweep check` measure).
    files = ray_trial_files(sweep_paths(Path(loaded.spec.storage).expanduser(), loaded.spec.name))
    if as_json:
        print(json.dumps({**plan.to_json(), "checkpoints": planned_checkpoint_space(loaded.spec, files)}))
        return
    print_plan(plan, loaded.spec.name)
    Console().print(checkpoint_plan_line(loaded.spec, files), highlight=False)


#: How the budget unit changes which batch sizes ASHA favours (printed with the plan).
UNIT_EXPLANATIONS = {
    "iterations": "Counting iterations, every rung comes after the same number of optimizer steps, so "
    "a large batch has seen more samples by then and tends to look better: ASHA favours large batches.",
    "samples": "Counting samples, every rung comes after the same amount of data, so a small batch has "
    "taken more optimizer steps by then: ASHA compares data efficiency, the fair unit when batch size "
    "is searched.",
    "epochs": "Counting epochs, every rung comes after the same number of passes over the data: like "
    "samples, but fractional epochs are easier to read; small batches take more steps per rung.",
}


def print_plan(plan: SweepPlan, name: str) -> None:
    console = Console()
    console.print(
        f"[bold]Sweep {name}[/]: training set N = {plan.dataset_size:,} samples, "
        f"{'drops' if plan.drop_last else 'keeps'} the last partial batch "
        f"(drop_last={plan.drop_last}); {plan.num_samples} trials; "
        f"epochs {min(plan.epochs)}–{max(plan.epochs)}."
    )
    if plan.workers > 1:
        console.print(
            f"Each trial trains data-parallel on [bold]{plan.workers} workers[/]: the batch size is the "
            f"global batch of one iteration, and each worker takes batch size / {plan.workers} of it."
        )
    console.print(batch_size_table(plan))
    scale = plan.learning_rate_scale
    if scale is not None:
        formula = "bs / ref" if scale["rule"] == "linear" else "sqrt(bs / ref)"
        console.print(
            f"The learning rate scales with the batch size (rule [bold]{scale['rule']}[/]): Optuna samples "
            f"the base learning rate at reference_batch_size ref = {scale['reference_batch_size']}, and a "
            f"trial trains with base × {formula}."
        )
    if plan.scheduler == "asha":
        console.print(asha_summary(plan))
        console.print(rungs_table(plan))
        if len(plan.brackets) > 1:
            console.print(brackets_table(plan))
        console.print(UNIT_EXPLANATIONS[plan.budget_unit])
    else:
        console.print("No early stopping (scheduler: none): every trial runs to completion.")
    console.print(budget_line(plan))
    for limit, coverage in plan.limits.items():
        unit = limit.removeprefix("max_")
        console.print(
            f"limits.{limit} = {coverage['limit']:,.0f} {unit}: enough for about "
            f"{coverage['expected_trials']:.1f} of the {plan.num_samples} trials at the expected "
            "cost per trial; then no new trial starts."
        )
    for warning in plan.warnings:
        console.print(f"[bold yellow]warning:[/] {warning}")


def batch_size_table(plan: SweepPlan) -> Table:
    """Each batch size's iterations per epoch and in total, and the learning rates it trains with."""
    distributed = plan.workers > 1
    table = Table(title="Iterations per batch size (one iteration = one optimizer step on one batch)")
    rate_column = "learning rate" if plan.learning_rate_scale is None else "effective learning rate"
    columns = [
        "batch size",
        *(["per-worker batch"] if distributed else []),
        "iterations/epoch",
        "samples/iteration",
        "total iterations",
        rate_column,
    ]
    for column in columns:
        table.add_column(column, justify="right")
    for row in plan.batch_sizes:
        low, high = row.learning_rate_range
        table.add_row(
            str(row.batch_size),
            *([str(row.per_worker_batch_size)] if distributed else []),
            f"{row.iterations_per_epoch:,}",
            str(row.samples_per_iteration),
            f"{row.min_total_iterations:,}–{row.max_total_iterations:,}",
            f"{low:.3g}" if low == high else f"{low:.3g}–{high:.3g}",
        )
    return table


def rungs_table(plan: SweepPlan) -> Table:
    """ASHA's rungs: each milestone, the iteration each batch size reaches it at, and the
    trials expected there."""
    rungs = Table(title="ASHA rungs")
    rungs.add_column(f"milestone ({plan.budget_unit})", justify="right")
    rungs.add_column("iterations by batch size")
    rungs.add_column("expected trials", justify="right")
    for rung in plan.rungs:
        by_batch = ", ".join(
            f"bs {b}: {i:,}" if i is not None else f"bs {b}: never"
            for b, i in rung.milestone_iterations_by_batch_size.items()
        )
        rungs.add_row(f"{rung.milestone:g}", by_batch, f"{rung.expected_trials:.1f}")
    return rungs


def budget_line(plan: SweepPlan) -> str:
    if plan.scheduler != "asha":
        return (
            f"Budget: {plan.worst_case_iterations:,.0f} iterations ({plan.worst_case_samples:,.0f} samples), "
            "every trial run to completion."
        )
    return (
        f"Budget: worst case {plan.worst_case_iterations:,.0f} iterations "
        f"({plan.worst_case_samples:,.0f} samples) if every trial ran to completion; "
        f"expected under ASHA {plan.expected_iterations:,.0f} iterations "
        f"({plan.expected_samples:,.0f} samples): {plan.saving_ratio:.1f}× less."
    )


def asha_summary(plan: SweepPlan) -> str:
    """One sentence: the unit, where the rungs fall and how the grace period was chosen."""
    assert plan.grace_period is not None and plan.max_t is not None and plan.reduction_factor is not None
    unit = plan.budget_unit
    stops = plan.decision_milestones
    rungs = (
        f"rungs at {', '.join(f'{m:,.4g}' for m in stops)} {unit}"
        if stops
        else "no rung below max_t, so ASHA stops no trial"
    )
    if plan.grace_period_auto:
        from sweeps.plan.asha import AUTO_GRACE_RUNGS  # here: see the TYPE_CHECKING import above

        grace = (
            f"grace_period: auto = {plan.grace_period:,.4g}, derived from max_t (max_t / "
            f"{plan.reduction_factor:g}^{AUTO_GRACE_RUNGS}, rounded up)"
        )
    else:
        grace = f"grace_period = {plan.grace_period:,.4g}"
    return (
        f"ASHA counts its budget in [bold]{unit}[/]: {rungs}; max_t {plan.max_t:,.4g}; {grace}; "
        f"reduction_factor = {plan.reduction_factor:g}."
    )


def brackets_table(plan: SweepPlan) -> Table:
    """Each Hyperband bracket's rungs, its share of the trials and of the expected budget."""
    unit = plan.budget_unit
    table = Table(
        title=f"{len(plan.brackets)} Hyperband brackets: each trial is drawn into one "
        f"(rungs in {unit}; trials and iterations expected)"
    )
    # Short headers: the table fits 80 columns unwrapped.
    for column in ("bracket", "rungs", "drawn", "trials", "iterations", "of budget"):
        table.add_column(column, justify="right")
    for bracket in plan.brackets:
        stops = [m for m in bracket.milestones if plan.max_t is None or m < plan.max_t]
        share = bracket.expected_iterations / plan.expected_iterations if plan.expected_iterations else 0.0
        table.add_row(
            str(bracket.bracket),
            ", ".join(f"{m:,.4g}" for m in stops) or "none: runs to max_t",
            f"{bracket.probability:.0%}",
            f"{bracket.expected_trials:.1f}",
            f"{bracket.expected_iterations:,.0f}",
            f"{share:.0%}",
        )
    return table
